"""Block storage (standard clauses B.1.3.2 and B.4.1) through the real `openstack` CLI,
against a scheduler with two sim nodes (see conftest.py): volumes, types, snapshots,
attaching to servers, boot from volume, limits and quotas."""

from __future__ import annotations

import time

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


def volume_status(openstack: Cli, volume: str, status: str) -> dict:
    return wait_for(
        lambda: (v := openstack.json("volume", "show", volume))["status"] == status and v,
        f"volume {volume} {status}",
    )


def node_of_volume(openstack: Cli, volume: str) -> str:
    return openstack.json("volume", "show", volume)["os-vol-host-attr:host"].split("@")[0]


@pytest.fixture(scope="module", autouse=True)
def nodes_up(openstack: Cli):
    """Both sim nodes up (and their storage reported) before anything is placed."""
    wait_for(
        lambda: [h["State"] for h in openstack.json("hypervisor", "list")] == ["up", "up"],
        "both nodes up",
    )


@pytest.fixture(scope="module")
def image(openstack: Cli, tmp_path_factory) -> str:
    data = tmp_path_factory.mktemp("vol-img") / "disk.raw"
    data.write_bytes(b"\0" * (1 << 20))
    created = openstack.json(
        "image", "create", "--file", str(data), "--disk-format", "raw",
        "--container-format", "bare", "--public", unique("vol-image"),
    )  # fmt: skip
    return created["id"]


@pytest.fixture(scope="module")
def server(openstack: Cli, image: str) -> dict:
    """An ACTIVE server, with the node it runs on."""
    name = unique("vol-vm")
    created = openstack.json("server", "create", "--flavor", "1", "--image", image, name)
    wait_for(
        lambda: openstack.json("server", "show", created["id"])["status"] == "ACTIVE",
        "server ACTIVE",
    )
    shown = openstack.json("server", "show", created["id"])
    yield {"id": created["id"], "host": shown["OS-EXT-SRV-ATTR:host"]}
    openstack.run("server", "delete", "--wait", created["id"])


def test_b_4_1_volume_create_list_show_set_size_delete(openstack: Cli):
    name = unique("vol")
    created = openstack.json("volume", "create", "--size", "1", "--type", "SSD", name)
    assert created["size"] == 1
    shown = volume_status(openstack, name, "available")
    assert shown["type"] == "SSD"
    assert name in [v["Name"] for v in openstack.json("volume", "list")]
    openstack.run("volume", "set", "--size", "3", name)
    wait_for(lambda: openstack.json("volume", "show", name)["size"] == 3, "volume extended")
    # It must grow.
    out = openstack.fails("volume", "set", "--size", "2", name)
    assert "size" in out.lower(), out
    openstack.run("volume", "delete", name)
    wait_for(lambda: name not in [v["Name"] for v in openstack.json("volume", "list")], "deleted")


def test_volume_type_list_and_create(openstack: Cli):
    names = [t["Name"] for t in openstack.json("volume", "type", "list")]
    assert "SATA" in names and "SSD" in names
    name = unique("type")
    created = openstack.json("volume", "type", "create", "--property", "disk:total_iops_sec=500", name)
    assert created["name"] == name
    assert name in [t["Name"] for t in openstack.json("volume", "type", "list")]
    openstack.run("volume", "type", "delete", name)


def test_volume_snapshot_create(openstack: Cli):
    volume = unique("snap-src")
    openstack.json("volume", "create", "--size", "1", volume)
    volume_status(openstack, volume, "available")
    snap = unique("snap")
    openstack.json("volume", "snapshot", "create", "--volume", volume, snap)
    wait_for(
        lambda: openstack.json("volume", "snapshot", "show", snap)["status"] == "available",
        "snapshot available",
    )
    # A volume from the snapshot.
    copy = unique("snap-copy")
    openstack.json("volume", "create", "--snapshot", snap, copy)
    assert volume_status(openstack, copy, "available")["size"] == 1
    openstack.run("volume", "delete", copy)
    wait_for(lambda: copy not in [v["Name"] for v in openstack.json("volume", "list")], "copy deleted")
    openstack.run("volume", "snapshot", "delete", snap)
    wait_for(
        lambda: snap not in [s["Name"] for s in openstack.json("volume", "snapshot", "list")],
        "snapshot deleted",
    )
    openstack.run("volume", "delete", volume)


def test_b_4_1_server_add_and_remove_volume(openstack: Cli, server: dict):
    # Volumes go to the node with the most free storage: of two, one is on the server's.
    volumes = [unique("attach") for _ in range(2)]
    for v in volumes:
        openstack.json("volume", "create", "--size", "1", v)
    for v in volumes:
        volume_status(openstack, v, "available")
    here = [v for v in volumes if node_of_volume(openstack, v) == server["host"]][0]
    elsewhere = [v for v in volumes if v != here]
    openstack.run("server", "add", "volume", server["id"], here)
    attached = volume_status(openstack, here, "in-use")
    assert attached["attachments"][0]["server_id"] == server["id"]
    assert attached["attachments"][0]["device"] == "/dev/vdb"
    shown = openstack.json("server", "show", server["id"])
    assert attached["id"] in str(shown["volumes_attached"])
    for v in elsewhere:
        out = openstack.fails("server", "add", "volume", server["id"], v)
        assert "node" in out, out
    openstack.run("server", "remove", "volume", server["id"], here)
    volume_status(openstack, here, "available")
    for v in volumes:
        openstack.run("volume", "delete", v)


def test_server_create_boot_from_volume(openstack: Cli, image: str):
    name = unique("bfv")
    created = openstack.json(
        "server", "create", "--flavor", "1", "--image", image, "--boot-from-volume", "2", name
    )
    wait_for(
        lambda: openstack.json("server", "show", created["id"])["status"] in ("ACTIVE", "ERROR"),
        "server built",
    )
    shown = openstack.json("server", "show", created["id"])
    assert shown["status"] == "ACTIVE", shown
    volumes = [v for v in openstack.json("volume", "list", "--long") if v["Attached to"]]
    root = [v for v in volumes if created["id"] in str(v["Attached to"])]
    assert len(root) == 1, volumes
    assert root[0]["Size"] == 2
    assert str(root[0]["Bootable"]).lower() == "true"
    openstack.run("server", "delete", "--wait", created["id"])
    # Without delete_on_termination the volume stays, available.
    volume_status(openstack, root[0]["ID"], "available")
    openstack.run("volume", "delete", root[0]["ID"])


def test_b_1_3_2_limits_and_quota_show(openstack: Cli, admin_token_info):
    volume = unique("quota-vol")
    openstack.json("volume", "create", "--size", "2", volume)
    volume_status(openstack, volume, "available")
    limits = {row["Name"]: row["Value"] for row in openstack.json("limits", "show", "--absolute")}
    # The CLI names block-storage limits as openstacksdk does.
    assert limits["max_total_volume_gigabytes"] == 1000, limits
    assert limits["total_gigabytes_used"] >= 2
    assert limits["total_volumes_used"] >= 1
    project = admin_token_info["project_id"]
    # Only the block-storage quotas: the compute test checks the plain `quota show`.
    quota = openstack.json("quota", "show", "--volume", project)
    rows = {row["Resource"]: row["Limit"] for row in quota}
    assert rows["volumes"] == 10, quota
    assert rows["gigabytes"] == 1000
    assert rows["snapshots"] == 10
    openstack.run("quota", "set", "--volumes", "20", project)
    quota = openstack.json("quota", "show", "--volume", "--usage", project)
    rows = {row["Resource"]: row for row in quota}
    assert rows["volumes"]["Limit"] == 20, quota
    assert rows["gigabytes"]["In Use"] >= 2
    openstack.run("volume", "delete", volume)
