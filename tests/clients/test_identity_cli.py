"""Identity (standard clauses B.1.1 鉴权 and B.1.2 数据中心) through real clients.

Every test drives the real `openstack` CLI (python-openstackclient) or openstacksdk
against a yunji-scheduler serving HTTPS with its own CA; see conftest.py.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone

import pytest
import requests

from conftest import Cli, clean_env, unique

SERVICE_TYPES = {"identity", "compute", "image", "network", "block-storage", "load-balancer"}


def assert_unauthorized(output: str) -> None:
    low = output.lower()
    assert "401" in output or "authentication" in low or "unauthorized" in low, output


def auth_flags(cloud, *, project: str | None = "admin") -> list[str]:
    """Explicit HTTPS flags that replace clouds.yaml (auth URL and the cloud's CA)."""
    flags = ["--os-auth-url", cloud.auth_url, "--os-cacert", str(cloud.cacert)]
    if project is not None:
        flags += ["--os-project-name", project, "--os-project-domain-name", "Default"]
    return flags


def password_flags(cloud, user: str, password: str, project: str | None = "admin") -> list[str]:
    return [
        "--os-auth-type", "password",
        "--os-username", user,
        "--os-password", password,
        "--os-user-domain-name", "Default",
        "--os-identity-api-version", "3",
        *auth_flags(cloud, project=project),
    ]  # fmt: skip


def token_flags(cloud, token: str, project_id: str) -> list[str]:
    return [
        "--os-auth-type", "token",
        "--os-token", token,
        "--os-auth-url", cloud.auth_url,
        "--os-cacert", str(cloud.cacert),
        "--os-project-id", project_id,
    ]  # fmt: skip


def parse_expires(value: str) -> datetime:
    # The CLI prints e.g. 2026-11-28T02:18:30+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


# -- fixtures ------------------------------------------------------------------


@pytest.fixture
def project_user(sdk):
    """A fresh project and a user holding `member` on it; removed afterwards."""
    password = "pw1-" + secrets.token_hex(6)
    p = sdk.identity.create_project(name=unique("proj"), description="client test", domain_id="default")
    u = sdk.identity.create_user(
        name=unique("user"), password=password, default_project_id=p.id, domain_id="default"
    )
    sdk.identity.assign_project_role_to_user(p, u, sdk.identity.find_role("member"))
    yield {
        "project": p.name,
        "project_id": p.id,
        "user": u.name,
        "user_id": u.id,
        "password": password,
    }
    sdk.identity.delete_user(u, ignore_missing=True)
    sdk.identity.delete_project(p, ignore_missing=True)


# -- B.1.1 authentication --------------------------------------------------------


def test_b_1_1_token_issue(openstack: Cli, cloud):
    before = datetime.now(timezone.utc)
    tok = openstack.json("token", "issue")
    assert set(tok) >= {"id", "expires", "project_id", "user_id"}, tok
    assert tok["id"] and tok["project_id"] and tok["user_id"]
    assert parse_expires(tok["expires"]) > before
    # The token is scoped to the admin project named in clouds.yaml.
    admin = openstack.json("project", "show", "admin")
    assert tok["project_id"] == admin["id"]
    # And it is valid for the server: GET /v3/auth/tokens validates it.
    r = requests.get(
        cloud.auth_url + "/auth/tokens",
        headers={"X-Auth-Token": tok["id"], "X-Subject-Token": tok["id"]},
        verify=str(cloud.cacert),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["token"]["project"]["id"] == tok["project_id"]


def test_b_1_1_catalog_list(openstack: Cli, cloud):
    catalog = openstack.json("catalog", "list")
    types = {entry["Type"] for entry in catalog}
    assert SERVICE_TYPES <= types, f"missing: {SERVICE_TYPES - types}"
    for entry in catalog:
        if entry["Type"] not in SERVICE_TYPES:
            continue
        endpoints = entry["Endpoints"]
        public = [e for e in endpoints if e["interface"] == "public"]
        assert public, entry
        for e in public:
            assert e["url"].startswith(cloud.base_url + "/"), e
            assert e["region"] == "RegionOne" and e["region_id"] == "RegionOne", e
            assert e["id"], e


def test_b_1_1_catalog_show_identity(openstack: Cli, cloud):
    entry = openstack.json("catalog", "show", "identity")
    assert entry["type"] == "identity"
    assert cloud.auth_url in str(entry["endpoints"])


def test_b_1_1_wrong_password_is_refused(cloud, admin_env):
    cli = Cli(admin_env, cloud)
    out = cli.fails("--os-password", "not-" + cloud.admin_password, "token", "issue")
    assert_unauthorized(out)


def test_b_1_1_unknown_user_is_refused(cloud, bare_cli: Cli):
    out = bare_cli.fails(
        *password_flags(cloud, unique("nobody"), "whatever"), "token", "issue"
    )
    assert_unauthorized(out)


def test_b_1_1_https_with_explicit_cacert(cloud, bare_cli: Cli):
    """No clouds.yaml: HTTPS auth URL, --os-cacert with the cloud's CA, auth flags."""
    assert cloud.auth_url.startswith("https://127.0.0.1:")
    flags = password_flags(cloud, "admin", cloud.admin_password)
    tok = bare_cli.json(*flags, "token", "issue")
    assert tok["id"] and tok["project_id"]
    regions = bare_cli.json(*flags, "region", "list")
    assert "RegionOne" in {r["Region"] for r in regions}
    # Without the CA the self-made certificate is not trusted.
    no_ca = [f for f in flags if f not in ("--os-cacert", str(cloud.cacert))]
    out = bare_cli.fails(*no_ca, "token", "issue")
    assert "certificate" in out.lower() or "ssl" in out.lower(), out


def test_b_1_1_user_set_password(openstack: Cli, bare_cli: Cli, cloud, project_user):
    pu = project_user
    users = openstack.json("user", "list")
    assert pu["user"] in {u["Name"] for u in users}

    # The user authenticates with its first password.
    tok = bare_cli.json(
        *password_flags(cloud, pu["user"], pu["password"], pu["project"]), "token", "issue"
    )
    assert tok["user_id"] == pu["user_id"] and tok["project_id"] == pu["project_id"]

    new_password = "pw2-" + secrets.token_hex(6)
    openstack.run("user", "set", "--password", new_password, pu["user"])

    tok = bare_cli.json(
        *password_flags(cloud, pu["user"], new_password, pu["project"]), "token", "issue"
    )
    assert tok["user_id"] == pu["user_id"] and tok["project_id"] == pu["project_id"]

    out = bare_cli.fails(
        *password_flags(cloud, pu["user"], pu["password"], pu["project"]), "token", "issue"
    )
    assert_unauthorized(out)


def test_b_1_1_role_add_and_assignment_list(openstack: Cli, project_user):
    pu = project_user
    rows = openstack.json(
        "role", "assignment", "list", "--names", "--project", pu["project"], "--user", pu["user"]
    )
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["Role"] == "member"
    # With --names the CLI prints `name@domain` when the server sends the domain
    # (Keystone does for users and projects); accept both here, see the next test.
    assert row["User"] in (pu["user"], pu["user"] + "@Default"), row
    assert row["Project"] in (pu["project"], pu["project"] + "@Default"), row
    assert row["Group"] == "" and row["Inherited"] is False

    ids = openstack.json("role", "assignment", "list", "--project", pu["project_id"])
    assert [(r["User"], r["Project"]) for r in ids] == [(pu["user_id"], pu["project_id"])]


def test_role_assignment_names_carry_domain(openstack: Cli, project_user):
    """Keystone's include_names puts {"domain": {id, name}} in `user` and in
    `scope.project` (api-ref role-assignments-…-include-names-response.json), so
    the CLI prints `user@Default` / `project@Default`."""
    pu = project_user
    rows = openstack.json(
        "role", "assignment", "list", "--names", "--project", pu["project"], "--user", pu["user"]
    )
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", pu["user"] + "@Default", pu["project"] + "@Default")
    ]


def test_b_1_1_project_create_list_show_delete(openstack: Cli):
    name = unique("proj")
    created = openstack.json("project", "create", "--description", "made by a test", name)
    try:
        assert created["name"] == name
        assert created["description"] == "made by a test"
        assert created["domain_id"] == "default"
        assert created["enabled"] is True

        listed = openstack.json("project", "list")
        assert {"ID": created["id"], "Name": name} in listed

        by_name = openstack.json("project", "show", name)
        assert by_name["id"] == created["id"] and by_name["name"] == name
    finally:
        openstack.run("project", "delete", created["id"])
    out = openstack.fails("project", "show", created["id"])
    assert "no project" in out.lower() or "404" in out, out


def test_b_1_1_application_credential(openstack: Cli, bare_cli: Cli, cloud, admin_token_info):
    name = unique("appcred")
    common = [
        "--os-auth-type", "v3applicationcredential",
        "--os-auth-url", cloud.auth_url,
        "--os-cacert", str(cloud.cacert),
    ]  # fmt: skip
    cred = openstack.json("application", "credential", "create", "--description", "ci", name)
    try:
        assert cred["Name"] == name and cred["ID"] and cred["Secret"]
        assert cred["Project ID"] == admin_token_info["project_id"]

        # By id and secret.
        tok = bare_cli.json(
            *common,
            "--os-application-credential-id", cred["ID"],
            "--os-application-credential-secret", cred["Secret"],
            "token", "issue",
        )  # fmt: skip
        assert tok["user_id"] == admin_token_info["user_id"]
        assert tok["project_id"] == admin_token_info["project_id"]

        # By name, with the owning user, and secret.
        tok = bare_cli.json(
            *common,
            "--os-application-credential-name", name,
            "--os-username", "admin",
            "--os-user-domain-name", "Default",
            "--os-application-credential-secret", cred["Secret"],
            "token", "issue",
        )  # fmt: skip
        assert tok["user_id"] == admin_token_info["user_id"]

        # A wrong secret is refused.
        out = bare_cli.fails(
            *common,
            "--os-application-credential-id", cred["ID"],
            "--os-application-credential-secret", "wrong-" + cred["Secret"],
            "token", "issue",
        )  # fmt: skip
        assert_unauthorized(out)
    finally:
        openstack.run("application", "credential", "delete", cred["ID"])
    # Once deleted it no longer authenticates.
    out = bare_cli.fails(
        *common,
        "--os-application-credential-id", cred["ID"],
        "--os-application-credential-secret", cred["Secret"],
        "token", "issue",
    )  # fmt: skip
    assert_unauthorized(out)


def test_b_1_1_revoked_token_is_refused(openstack: Cli, bare_cli: Cli, cloud):
    tok = openstack.json("token", "issue")
    flags = token_flags(cloud, tok["id"], tok["project_id"])
    # Usable before revocation.
    assert bare_cli.json(*flags, "project", "show", tok["project_id"])["id"] == tok["project_id"]

    openstack.run("token", "revoke", tok["id"])

    out = bare_cli.fails(*flags, "project", "show", tok["project_id"])
    assert "401" in out, out
    out = bare_cli.fails(*flags, "catalog", "list")
    assert "401" in out, out


def test_b_1_1_expired_token_is_refused(short_ttl_cloud):
    cloud = short_ttl_cloud
    cli = Cli(cloud.admin_env(), cloud)
    t0 = time.monotonic()
    tok = cli.json("token", "issue")
    # The server issued it with its 3-second lifetime.
    remaining = (parse_expires(tok["expires"]) - datetime.now(timezone.utc)).total_seconds()
    assert remaining <= 4, tok
    r = requests.get(
        cloud.auth_url + "/auth/tokens",
        headers={"X-Auth-Token": tok["id"], "X-Subject-Token": tok["id"]},
        verify=str(cloud.cacert),
        timeout=10,
    )
    if time.monotonic() - t0 < 2.5:  # certainly still inside its lifetime
        assert r.status_code == 200, r.text

    time.sleep(4)

    flags = token_flags(cloud, tok["id"], tok["project_id"])
    out = Cli(clean_env(), cloud).fails(*flags, "catalog", "list")
    assert "401" in out, out


# -- B.1.2 data centres -----------------------------------------------------------


def test_b_1_2_region_list(openstack: Cli):
    regions = openstack.json("region", "list")
    assert regions, "no region"
    by_id = {r["Region"]: r for r in regions}
    assert "RegionOne" in by_id
    assert by_id["RegionOne"]["Description"]


def test_b_1_2_region_create_show(openstack: Cli):
    region = unique("dc")
    created = openstack.json("region", "create", "--description", "second data centre", region)
    try:
        assert created["region"] == region
        assert created["description"] == "second data centre"
        shown = openstack.json("region", "show", region)
        assert shown["region"] == region and shown["description"] == "second data centre"
        listed = {r["Region"] for r in openstack.json("region", "list")}
        assert {region, "RegionOne"} <= listed
    finally:
        openstack.run("region", "delete", region)
    listed = {r["Region"] for r in openstack.json("region", "list")}
    assert region not in listed


# -- openstacksdk ---------------------------------------------------------------


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_b_1_1_token_in_header_with_expiry(sdk, cloud):
    """B.1.1: user name + password (+ user domain), scoped to a project by name and
    domain, by id, or not at all; the token comes in a header, with its expiry time
    formatted CCYY-MM-DDThh:mm:ss.ffffffZ. It can be validated, checked and revoked."""
    url = cloud.auth_url + "/auth/tokens"
    user = {"name": "admin", "domain": {"name": "Default"}, "password": cloud.admin_password}
    identity = {"methods": ["password"], "password": {"user": user}}
    admin = sdk.identity.find_project("admin")
    scopes = {
        "by name": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        "by id": {"project": {"id": admin.id}},
        "unscoped": None,
    }
    tokens = {}
    for how, scope in scopes.items():
        auth = {"identity": identity} | ({"scope": scope} if scope else {})
        r = sdk.session.post(url, json={"auth": auth}, authenticated=False, raise_exc=False)
        assert r.status_code == 201, (how, r.text)
        assert r.headers.get("X-Subject-Token"), (how, r.headers)
        token = r.json()["token"]
        assert TIMESTAMP.match(token["expires_at"]), (how, token["expires_at"])
        assert TIMESTAMP.match(token["issued_at"]), (how, token["issued_at"])
        assert token["expires_at"] > token["issued_at"]
        assert token["user"]["name"] == "admin"
        if scope:
            assert token["project"]["id"] == admin.id, how
            assert token["roles"] and token["catalog"], how
        else:
            assert "project" not in token and not token.get("catalog"), token
        tokens[how] = r.headers["X-Subject-Token"]

    subject = {"X-Subject-Token": tokens["by id"]}
    r = sdk.session.get(url, headers=subject, raise_exc=False)
    assert r.status_code == 200 and r.json()["token"]["project"]["id"] == admin.id, r.text
    r = sdk.session.head(url, headers=subject, raise_exc=False)
    assert r.status_code == 200 and not r.content, r.status_code
    r = sdk.session.delete(url, headers=subject, raise_exc=False)
    assert r.status_code == 204, r.text
    assert sdk.session.get(url, headers=subject, raise_exc=False).status_code == 404


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_b_1_2_sdk_projects_and_regions(sdk):
    assert sdk.auth_token
    projects = {p.name: p for p in sdk.identity.projects()}
    assert "admin" in projects
    assert projects["admin"].domain_id == "default"
    regions = {r.id: r for r in sdk.identity.regions()}
    assert "RegionOne" in regions
    region = sdk.identity.get_region("RegionOne")
    assert region.id == "RegionOne"
    catalog_types = {s["type"] for s in sdk.service_catalog}
    assert SERVICE_TYPES <= catalog_types


def test_b_1_2_data_centres_have_id_and_name(sdk):
    """B.1.2: data centres (regions, and availability zones) with an id and a name."""
    regions = sdk.identity.get("/regions").json()["regions"]
    assert all(r["id"] and r["name"] for r in regions), regions
    assert {r["id"]: r["name"] for r in regions}["RegionOne"] == "RegionOne"
    zones = sdk.compute.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert "nova" in [z["zoneName"] for z in zones], zones
