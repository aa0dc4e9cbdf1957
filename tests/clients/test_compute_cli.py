"""Compute and images (standard clauses B.1.2, B.1.3.1, B.2.1, B.2.2, B.2.3) through the
real `openstack` CLI, against a scheduler with two sim nodes (see conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import Cli, unique


def wait_for(check, what: str, timeout: float = 60.0):
    """Polls `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def image(openstack: Cli, tmp_path_factory) -> str:
    """A small public raw image, uploaded with `image create --file`."""
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * (1 << 20))
    name = unique("cli-image")
    created = openstack.json(
        "image", "create", "--file", str(data), "--disk-format", "raw",
        "--container-format", "bare", "--public", name,
    )  # fmt: skip
    assert created["status"] == "active"
    return created["id"]


def status(openstack: Cli, server: str) -> str:
    return openstack.json("server", "show", server)["status"]


def test_b_2_2_flavor_create_list_show_delete(openstack: Cli):
    name = unique("flavor")
    created = openstack.json("flavor", "create", "--vcpus", "2", "--ram", "1024", "--disk", "10", name)
    assert created["vcpus"] == 2 and created["ram"] == 1024
    assert name in [f["Name"] for f in openstack.json("flavor", "list")]
    assert openstack.json("flavor", "show", name)["disk"] == 10
    openstack.run("flavor", "delete", name)
    assert name not in [f["Name"] for f in openstack.json("flavor", "list")]


def test_b_2_3_image_lifecycle(openstack: Cli, tmp_path: Path, admin_token_info):
    data = tmp_path / "disk.raw"
    data.write_bytes(b"yunji" * 1000)
    name = unique("img")
    created = openstack.json(
        "image", "create", "--file", str(data), "--disk-format", "raw",
        "--container-format", "bare", name,
    )  # fmt: skip
    image_id = created["id"]
    try:
        assert created["size"] == 5000
        assert name in [i["Name"] for i in openstack.json("image", "list")]
        openstack.run("image", "set", "--property", "gis_layer=roads", image_id)
        assert "gis_layer" in str(openstack.json("image", "show", image_id)["properties"])
        openstack.run("image", "unset", "--property", "gis_layer", image_id)
        assert "gis_layer" not in str(openstack.json("image", "show", image_id)["properties"])
        out = tmp_path / "saved.raw"
        openstack.run("image", "save", "--file", str(out), image_id)
        assert out.read_bytes() == data.read_bytes()
        project = openstack.json("project", "create", unique("share"))["id"]
        openstack.run("image", "set", "--shared", image_id)
        openstack.run("image", "add", "project", image_id, project)
        openstack.run("project", "delete", project)
    finally:
        openstack.run("image", "delete", image_id)


def test_b_2_1_server_lifecycle(openstack: Cli, image: str):
    name = unique("vm")
    created = openstack.json("server", "create", "--flavor", "m1.tiny", "--image", image, "--wait", name)
    assert created["status"] == "ACTIVE"
    server = created["id"]
    try:
        assert server in [s["ID"] for s in openstack.json("server", "list")]
        shown = openstack.json("server", "show", server)
        assert shown["OS-EXT-SRV-ATTR:host"] in {"node-1", "node-2"}

        # B.2.1.4 update
        openstack.run("server", "set", "--name", name + "-b", server)
        assert openstack.json("server", "show", server)["name"] == name + "-b"

        # B.2.1.6 stop, B.2.1.5 start, B.2.1.7 reboot
        openstack.run("server", "stop", server)
        wait_for(lambda: status(openstack, server) == "SHUTOFF", "SHUTOFF")
        openstack.run("server", "start", server)
        wait_for(lambda: status(openstack, server) == "ACTIVE", "ACTIVE")
        openstack.run("server", "reboot", "--hard", "--wait", server)
        assert status(openstack, server) == "ACTIVE"

        # B.2.1.10 resize, confirm and revert
        openstack.run("server", "resize", "--flavor", "m1.small", "--wait", server)
        assert status(openstack, server) == "VERIFY_RESIZE"
        openstack.run("server", "resize", "confirm", server)
        wait_for(lambda: status(openstack, server) == "ACTIVE", "ACTIVE after confirm")
        openstack.run("server", "resize", "--flavor", "m1.medium", "--wait", server)
        openstack.run("server", "resize", "revert", server)
        wait_for(lambda: status(openstack, server) == "ACTIVE", "ACTIVE after revert")
        assert "m1.small" in openstack.json("server", "show", server)["flavor"]

        # the console
        log = openstack.run("console", "log", "show", server).stdout
        assert "booted" in log

        # B.2.1.9 live migration to the other node
        before = openstack.json("server", "show", server)["OS-EXT-SRV-ATTR:host"]
        openstack.run("server", "migrate", "--live-migration", "--wait", server)
        after = openstack.json("server", "show", server)["OS-EXT-SRV-ATTR:host"]
        assert after != before and status(openstack, server) == "ACTIVE"
        assert "live migration arrived" in openstack.run("console", "log", "show", server).stdout

        # B.2.3.1 an image of the server
        snap = unique("snap")
        openstack.run("server", "image", "create", "--name", snap, "--wait", server)
        snapshot = openstack.json("image", "show", snap)
        assert snapshot["status"] == "active"
        openstack.run("image", "delete", snapshot["id"])
    finally:
        openstack.run("server", "delete", "--wait", server)
    assert server not in [s["ID"] for s in openstack.json("server", "list")]


def test_b_1_3_1_limits_and_quotas(openstack: Cli):
    # `limits show --absolute` and plain `quota show` ask compute, volume and network.
    limits = {row["Name"]: row["Value"] for row in openstack.json("limits", "show", "--absolute")}
    assert limits["max_total_instances"] >= 0 and limits["total_cores_used"] >= 0, limits
    assert "max_total_volumes" in limits, limits
    project = openstack.json("project", "create", unique("quota"))["id"]
    try:
        openstack.run("quota", "set", "--instances", "5", "--cores", "7", "--volumes", "3", "--networks", "4", project)
        shown = {row["Resource"]: row["Limit"] for row in openstack.json("quota", "show", project)}
        assert (shown["instances"], shown["cores"], shown["volumes"], shown["networks"]) == (5, 7, 3, 4), shown
    finally:
        openstack.run("project", "delete", project)


def test_b_1_3_1_hypervisors_and_capacity(openstack: Cli):
    hypervisors = openstack.json("hypervisor", "list")
    names = {h["Hypervisor Hostname"] for h in hypervisors}
    assert {"node-1", "node-2"} <= names
    stats = openstack.json("hypervisor", "stats", "show")
    flat = {row["Field"]: row["Value"] for row in stats} if isinstance(stats, list) else stats
    assert int(flat["count"]) >= 2 and int(flat["vcpus"]) >= 2


def test_b_1_2_availability_zones(openstack: Cli):
    zones = openstack.json("availability", "zone", "list")
    assert "nova" in {z["Zone Name"] for z in zones}


def test_keypair_create_show_delete(openstack: Cli):
    name = unique("key")
    created = openstack.run("keypair", "create", name).stdout
    assert "PRIVATE KEY" in created
    assert openstack.json("keypair", "show", name)["name"] == name
    openstack.run("keypair", "delete", name)


def test_server_group_anti_affinity_spreads_servers(openstack: Cli, image: str):
    name = unique("group")
    group = openstack.json("server", "group", "create", "--policy", "anti-affinity", name)
    assert group.get("policy", group.get("policies")) in ("anti-affinity", ["anti-affinity"]), group
    servers = []
    for i in range(2):
        created = openstack.json(
            "server", "create", "--flavor", "m1.tiny", "--image", image,
            "--hint", f"group={group['id']}", "--wait", unique(f"spread{i}"),
        )  # fmt: skip
        servers.append(created["id"])
    hosts = {openstack.json("server", "show", s)["OS-EXT-SRV-ATTR:host"] for s in servers}
    assert len(hosts) == 2, hosts
    shown = openstack.json("server", "group", "show", name)
    assert sorted(shown["members"]) == sorted(servers)
    assert name in [g["Name"] for g in openstack.json("server", "group", "list")]
    for s in servers:
        openstack.run("server", "delete", "--wait", s)
    openstack.run("server", "group", "delete", name)
    assert name not in [g["Name"] for g in openstack.json("server", "group", "list")]


def test_server_event_list_records_each_change(openstack: Cli, image: str):
    name = unique("evented")
    server = openstack.json("server", "create", "--flavor", "m1.tiny", "--image", image, "--wait", name)
    openstack.run("server", "stop", server["id"])
    wait_for(lambda: status(openstack, server["id"]) == "SHUTOFF", "the server to stop")
    events = openstack.json("server", "event", "list", server["id"])
    assert [e["Action"] for e in events] == ["stop", "create"], events
    shown = openstack.json("server", "event", "show", server["id"], events[1]["Request ID"])
    assert shown["action"] == "create"
    openstack.run("server", "delete", "--wait", server["id"])


def test_server_migration_list_shows_a_live_migration(openstack: Cli, image: str):
    server = openstack.json("server", "create", "--flavor", "m1.tiny", "--image", image, "--wait", unique("mover"))
    source = openstack.json("server", "show", server["id"])["OS-EXT-SRV-ATTR:host"]
    openstack.run("server", "migrate", "--live-migration", "--wait", server["id"])
    migrations = openstack.json("server", "migration", "list", "--server", server["id"])
    assert migrations, "the live migration is listed"
    assert migrations[0]["Source Node"] == source
    assert migrations[0]["Status"] == "completed"
    openstack.run("server", "delete", "--wait", server["id"])


def test_b_1_3_1_usage_list_and_show(openstack: Cli, image: str):
    server = openstack.json("server", "create", "--flavor", "m1.tiny", "--image", image, "--wait", unique("metered"))
    usages = openstack.json("usage", "list", "--start", "2026-01-01", "--end", "2999-01-01")
    assert usages and all("CPU Hours" in u for u in usages), usages
    project = openstack.json("server", "show", server["id"])["project_id"]
    shown = openstack.json("usage", "show", "--project", project, "--start", "2026-01-01", "--end", "2999-01-01")
    assert shown["Servers"] and "CPU Hours" in shown, shown
    openstack.run("server", "delete", "--wait", server["id"])
