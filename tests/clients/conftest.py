"""Fixtures for driving real OpenStack clients against a real yunji-scheduler.

One scheduler per session serves HTTPS with the certificate it makes itself (its
CA at DIR/tls/api-ca.crt); a second one, started only when a test asks for it,
issues tokens that live 3 seconds. Everything listens on 127.0.0.1 only.

Besides the CLI, tests reach the cloud with openstacksdk (`sdk`, `member_sdk`): for
what the CLI cannot express, for the standard's response elements, and to poll for
state changes cheaply (the CLI's own `--wait` polls every five seconds). A few
session-wide resources serve several modules: a public image, an external network,
a routed private network and a server on it (`guest`).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("YUNJI_BIN_DIR") or REPO / "target" / "debug")
SCHEDULER = BIN_DIR / "yunji-scheduler"
# The CLI of the virtualenv pytest runs in (run.sh runs pytest with the venv's python).
OPENSTACK = Path(sys.executable).parent / "openstack"

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
CLI_TIMEOUT = 120.0

# Variables that would make a client talk to another cloud, or trust another CA.
_SCRUBBED_PREFIXES = ("OS_",)
_SCRUBBED = {
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
}


def pytest_configure(config):
    # openstacksdk's warnings about its own future, not about the cloud.
    for category in ("DeprecationWarning", "PendingDeprecationWarning"):
        config.addinivalue_line("filterwarnings", f"ignore::{category}:openstack")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any OpenStack/CA/proxy settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Cloud:
    """A running yunji-scheduler and how to reach it."""

    data_dir: Path
    port: int
    admin_password: str = field(repr=False)
    # Sim agents the scheduler starts on this machine (nodes node-1, node-2, …).
    local_agents: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    log_path: Path | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/identity/v3"

    @property
    def cacert(self) -> Path:
        return self.data_dir / "tls" / "api-ca.crt"

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def admin_env(self) -> dict[str, str]:
        """Environment for `openstack` as the first admin, through clouds.yaml."""
        return clean_env(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD="yunji")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no scheduler log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # -- lifecycle -------------------------------------------------------------

    def start(self, config: Path | None = None) -> None:
        cmd = [
            str(SCHEDULER),
            "--data-dir", str(self.data_dir),
            "--listen", f"{HOST}:{self.port}",
            "--local-agents", str(self.local_agents),
            "--driver", "sim",
        ]  # fmt: skip
        if config is not None:
            cmd += ["--config", str(config)]
        env = {
            k: v
            for k, v in clean_env().items()
            if not k.startswith("YUNJI_") or k == "YUNJI_BIN_DIR"
        }
        env["YUNJI_ADMIN_PASSWORD"] = self.admin_password
        env.setdefault("RUST_BACKTRACE", "1")
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-scheduler.log"
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        """Polls GET /identity/v3 over HTTPS, trusting only the cloud's own CA."""
        deadline = time.monotonic() + READY_TIMEOUT
        last_error: object = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"yunji-scheduler exited with {self.proc.returncode} before it was "
                    f"ready:\n{self.log_tail()}"
                )
            if self.cacert.exists() and self.clouds_yaml.exists():
                try:
                    r = requests.get(self.auth_url, verify=str(self.cacert), timeout=2)
                    if r.status_code == 200:
                        return
                    last_error = f"HTTP {r.status_code}: {r.text[:200]}"
                except requests.RequestException as e:
                    last_error = e
            time.sleep(0.1)
        raise RuntimeError(
            f"yunji-scheduler not ready after {READY_TIMEOUT}s (last: {last_error}):\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _start_cloud(tmp_path_factory, name: str, config_text: str | None = None, local_agents: int = 0):
    """Starts a scheduler; retries on another port if the chosen one was taken."""
    base = tmp_path_factory.mktemp(name)
    config = None
    if config_text is not None:
        config = base / "yunji.toml"
        config.write_text(config_text)
    last: Exception | None = None
    for attempt in range(3):
        cloud = Cloud(
            data_dir=base / f"data{attempt}",
            port=free_port(),
            admin_password="pw-" + secrets.token_urlsafe(12),
            local_agents=local_agents,
        )
        cloud.data_dir.mkdir()
        cloud.start(config)
        try:
            cloud.wait_ready()
            return cloud
        except BaseException as e:
            cloud.stop()
            last = e
            if not isinstance(e, RuntimeError) or "in use" not in str(e).lower():
                raise
    raise RuntimeError(f"could not start yunji-scheduler: {last}")


@pytest.fixture(scope="session")
def cloud(tmp_path_factory):
    """One HTTPS (self-signed) scheduler with two sim nodes for the whole session; its
    image service may web-download from 127.0.0.1 (where the tests serve files)."""
    if not SCHEDULER.exists():
        pytest.fail(f"{SCHEDULER} missing: run `cargo build --bins`")
    config = "[images]\nweb_download_allow_private = true\n"
    c = _start_cloud(tmp_path_factory, "yunji", config, local_agents=2)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def short_ttl_cloud(tmp_path_factory):
    """A second scheduler whose tokens expire after 3 seconds."""
    if not SCHEDULER.exists():
        pytest.fail(f"{SCHEDULER} missing: run `cargo build --bins`")
    c = _start_cloud(tmp_path_factory, "yunji-ttl", "[identity]\ntoken_ttl_secs = 3\n")
    try:
        yield c
    finally:
        c.stop()


# -- the CLI -------------------------------------------------------------------


class CliError(AssertionError):
    pass


@dataclass
class Cli:
    """Runs the real `openstack` CLI with a given environment."""

    env: dict[str, str]
    cloud: Cloud | None = None

    def __repr__(self) -> str:  # keep the environment out of failure reports
        cfg = self.env.get("OS_CLIENT_CONFIG_FILE", "no clouds.yaml")
        return f"Cli({cfg})"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(OPENSTACK), *args]
        p = subprocess.run(
            cmd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and p.returncode != 0:
            tail = self.cloud.log_tail(15) if self.cloud else ""
            raise CliError(
                f"`openstack {shlex.join(args)}` exited {p.returncode}\n"
                f"stdout: {p.stdout}\nstderr: {p.stderr}\nscheduler log tail:\n{tail}"
            )
        return p

    def json(self, *args: str):
        """Runs a command with `-f json` and returns the parsed output."""
        p = self.run(*args, "-f", "json")
        try:
            return json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise CliError(f"`openstack {shlex.join(args)}` printed no JSON: {p.stdout!r}") from e

    def fails(self, *args: str) -> str:
        """Runs a command that must fail; returns its stdout+stderr."""
        p = self.run(*args, check=False)
        if p.returncode == 0:
            raise CliError(
                f"`openstack {shlex.join(args)}` succeeded but should have failed:\n{p.stdout}"
            )
        return p.stdout + p.stderr


@pytest.fixture(scope="session")
def admin_env(cloud) -> dict[str, str]:
    """Environment for `openstack` as admin: OS_CLIENT_CONFIG_FILE + OS_CLOUD=yunji."""
    return cloud.admin_env()


@pytest.fixture(scope="session")
def openstack(cloud, admin_env) -> Cli:
    """The `openstack` CLI as the first admin, configured by the cloud's clouds.yaml."""
    return Cli(admin_env, cloud)


@pytest.fixture(scope="session")
def bare_cli(cloud) -> Cli:
    """The `openstack` CLI with no clouds.yaml and no OS_* variables: pass flags."""
    return Cli(clean_env(), cloud)


@pytest.fixture(scope="session")
def admin_token_info(openstack):
    """`token issue` as admin, once: ids of the admin user and project."""
    return openstack.json("token", "issue")


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def wait_for(check, what: str, timeout: float = 90.0, interval: float = 0.25):
    """Polls `check` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


# -- openstacksdk ----------------------------------------------------------------


def _connect(**kwargs):
    """An openstacksdk connection that ignores OS_* variables and proxies."""
    import openstack

    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith(_SCRUBBED_PREFIXES):
                mp.delenv(k)
        if "cloud" in kwargs:
            mp.setenv("OS_CLIENT_CONFIG_FILE", kwargs.pop("config_file"))
        conn = openstack.connect(**kwargs)
    # Only the cloud's own CA (keystoneauth passes it with every request), no proxy.
    conn.session.session.trust_env = False
    return conn


@pytest.fixture(scope="session")
def sdk(cloud):
    """openstacksdk as the first admin, through the cloud's clouds.yaml.

    `sdk.<service>.get/post/…(path, raise_exc=False)` are raw requests against the
    catalog endpoint (e.g. `sdk.network.get("/publicips")`); no microversion header
    unless one is given, so compute answers at 2.1 and block storage at 3.0."""
    conn = _connect(cloud="yunji", config_file=str(cloud.clouds_yaml))
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def member_sdk(cloud, sdk):
    """openstacksdk as a user with only the `member` role, in a project of its own."""
    project = sdk.identity.create_project(name=unique("member-proj"), domain_id="default")
    password = "pw-" + secrets.token_urlsafe(12)
    user = sdk.identity.create_user(
        name=unique("member"), password=password, domain_id="default", default_project_id=project.id
    )
    sdk.identity.assign_project_role_to_user(project, user, sdk.identity.find_role("member"))
    conn = _connect(
        auth_url=cloud.auth_url,
        username=user.name,
        password=password,
        user_domain_name="Default",
        project_id=project.id,
        region_name="RegionOne",
        cacert=str(cloud.cacert),
        identity_api_version="3",
    )
    yield conn
    conn.close()
    sdk.identity.delete_user(user, ignore_missing=True)
    sdk.identity.delete_project(project, ignore_missing=True)


def server_status(sdk, server: str) -> str:
    return sdk.compute.get_server(server).status


def wait_server(sdk, server: str, status: str, timeout: float = 90.0):
    """Polls until the server has `status` (fails at once on ERROR); returns it."""

    def check():
        s = sdk.compute.get_server(server)
        assert s.status == status or s.status != "ERROR", f"server {server} ERROR: {s.fault}"
        return s if s.status == status and not s.task_state else None

    return wait_for(check, f"server {server} {status}", timeout)


def wait_server_gone(sdk, server: str, timeout: float = 90.0):
    wait_for(
        lambda: sdk.compute.get(f"/servers/{server}", raise_exc=False).status_code == 404,
        f"server {server} deleted",
        timeout,
    )


# -- resources several modules share ----------------------------------------------


@pytest.fixture(scope="session")
def image(openstack: Cli, sdk, tmp_path_factory) -> str:
    """A small public raw image, uploaded with `image create --file`."""
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * (1 << 20))
    created = openstack.json(
        "image", "create", "--file", str(data), "--disk-format", "raw",
        "--container-format", "bare", "--public", unique("cli-image"),
    )  # fmt: skip
    assert created["status"] == "active"
    yield created["id"]
    sdk.image.delete_image(created["id"], ignore_missing=True)


@pytest.fixture(scope="session")
def external(sdk):
    """The external network (198.51.100.0/24): (network id, subnet id). Public IPs come
    from it, the only external network when no `[network] default_external_network`."""
    net = sdk.network.create_network(name=unique("public"), is_router_external=True)
    sub = sdk.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="198.51.100.0/24", name=unique("public-sub")
    )
    yield net.id, sub.id
    for fip in sdk.network.ips(floating_network_id=net.id):
        sdk.network.delete_ip(fip, ignore_missing=True)
    sdk.network.delete_subnet(sub, ignore_missing=True)
    sdk.network.delete_network(net, ignore_missing=True)


@pytest.fixture(scope="session")
def routed(sdk, external):
    """A private network 10.77.0.0/24 behind a router to `external`:
    dict(network, subnet, router, cidr)."""
    ext, _ = external
    net = sdk.network.create_network(name=unique("priv"))
    sub = sdk.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.77.0.0/24", name=unique("priv-sub")
    )
    router = sdk.network.create_router(
        name=unique("router"), external_gateway_info={"network_id": ext}
    )
    sdk.network.add_interface_to_router(router, subnet=sub.id)
    yield {"network": net.id, "subnet": sub.id, "router": router.id, "cidr": "10.77.0.0/24"}
    for fip in sdk.network.ips(router_id=router.id):
        sdk.network.delete_ip(fip, ignore_missing=True)
    sdk.network.remove_interface_from_router(router, subnet=sub.id)
    sdk.network.delete_router(router, ignore_missing=True)
    for port in sdk.network.ports(network_id=net.id):
        sdk.network.delete_port(port, ignore_missing=True)
    sdk.network.delete_subnet(sub, ignore_missing=True)
    sdk.network.delete_network(net, ignore_missing=True)


@pytest.fixture(scope="session")
def nodes_up(sdk):
    """Both sim nodes up (and their storage reported): the first test to place a
    server or a volume may otherwise run before they have joined."""
    wait_for(
        lambda: [h.state for h in sdk.compute.hypervisors()] == ["up", "up"],
        "both sim nodes up",
    )


@pytest.fixture(scope="session")
def guest(sdk, image, routed, nodes_up):
    """An ACTIVE server on `routed` for the tests that only need one to exist (volumes,
    public IPs, load-balancer nodes, security groups): dict(id, name, host, address)."""
    name = unique("guest")
    server = sdk.compute.create_server(
        name=name, flavor_id="1", image_id=image, networks=[{"uuid": routed["network"]}]
    )
    shown = wait_server(sdk, server.id, "ACTIVE")
    address = next(iter(shown.addresses.values()))[0]["addr"]
    yield {"id": server.id, "name": name, "host": shown.compute_host, "address": address}
    sdk.compute.delete_server(server.id, ignore_missing=True)
    wait_server_gone(sdk, server.id)
