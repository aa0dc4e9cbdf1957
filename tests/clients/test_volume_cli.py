"""Block storage (standard clauses B.1.3.2 and B.4.1) through the real `openstack` CLI
and openstacksdk, against a scheduler with two sim nodes (see conftest.py): volumes,
attaching them to the session's `guest` through Nova and through Cinder, types,
snapshots, boot from volume, limits and quotas.

The B.4.1 tests share one volume on the guest's node (this cloud attaches a volume
only to servers on its own node), made by B.4.1.1 and deleted by B.4.1.2 at the end
of the module; each test first attaches or detaches it as it needs."""

from __future__ import annotations

import pytest

from conftest import Cli, unique, wait_for, wait_server, wait_server_gone

# Table B.73/B.76's mandatory elements (and the optional ones the binding sends).
VOLUME_ELEMENTS = {"id", "name", "description", "availability_zone", "size", "volume_type", "multiattach"}


def volume_status(sdk, volume: str, status: str) -> dict:
    def check():
        v = sdk.block_storage.get(f"/volumes/{volume}").json()["volume"]
        assert v["status"] == status or not v["status"].startswith("error"), v
        return v["status"] == status and v

    return wait_for(check, f"volume {volume} {status}")


def volume_gone(sdk, volume: str) -> None:
    wait_for(
        lambda: sdk.block_storage.get(f"/volumes/{volume}", raise_exc=False).status_code == 404,
        f"volume {volume} deleted",
    )


def node_of(sdk, volume: str) -> str:
    return sdk.block_storage.get(f"/volumes/{volume}").json()["volume"]["os-vol-host-attr:host"].split("@")[0]


def ensure_attached(sdk, server: str, volume: str) -> dict:
    v = sdk.block_storage.get(f"/volumes/{volume}").json()["volume"]
    if v["status"] != "in-use":
        sdk.compute.post(f"/servers/{server}/os-volume_attachments", json={"volumeAttachment": {"volumeId": volume}})
        v = volume_status(sdk, volume, "in-use")
    return v


def ensure_detached(sdk, server: str, volume: str) -> None:
    if sdk.block_storage.get(f"/volumes/{volume}").json()["volume"]["status"] != "available":
        sdk.compute.delete(f"/servers/{server}/os-volume_attachments/{volume}")
        volume_status(sdk, volume, "available")


def attached_to(sdk, server: str) -> list[str]:
    """The volumes Nova says are attached to `server`."""
    rows = sdk.compute.get(f"/servers/{server}/os-volume_attachments").json()["volumeAttachments"]
    return [a["volumeId"] for a in rows]


pytestmark = pytest.mark.usefixtures("nodes_up")


@pytest.fixture(scope="module")
def volumes(openstack: Cli, sdk, guest):
    """B.4.1.1 as a user does it: `volume create` with name, description, size and
    type. A volume goes to the node with the most free storage: make them until one is
    on the guest's node. dict(local (its `volume create` output), remote)."""
    made, local, remote = [], None, None
    while local is None:
        assert len(made) < 4, "no volume lands on the guest's node"
        created = openstack.json(
            "volume", "create", "--size", "1", "--type", "SATA", "--description", "B.4.1.1",
            "--availability-zone", "nova", unique("vol"),
        )  # fmt: skip
        made.append(created["id"])
        volume_status(sdk, created["id"], "available")
        if node_of(sdk, created["id"]) == guest["host"]:
            local = created
        else:
            remote = created["id"]
    yield {"local": local, "remote": remote}
    if sdk.block_storage.get(f"/volumes/{local['id']}", raise_exc=False).ok:
        ensure_detached(sdk, guest["id"], local["id"])
    for v in made:
        sdk.block_storage.delete_volume(v, ignore_missing=True)


def test_b_4_1_1_volume_create(volumes, sdk):
    """B.4.1.1: the answer has the id, availability zone and size (mandatory), name,
    description, type and shareable flag; the volume becomes available."""
    created = volumes["local"]
    assert created["id"] and created["availability_zone"] == "nova" and created["size"] == 1
    assert created["description"] == "B.4.1.1" and created["type"] == "SATA"
    assert created["multiattach"] is False and created["name"].startswith("vol-")
    assert created["status"] in ("creating", "available")
    raw = sdk.block_storage.get(f"/volumes/{created['id']}").json()["volume"]
    assert VOLUME_ELEMENTS <= set(raw) and raw["status"] == "available"


def test_b_4_1_3_volume_show_and_list(openstack: Cli, volumes, sdk, guest):
    """B.4.1.3: id, availability zone and size (mandatory), name, description, type,
    shareable flag, host and attachments; and the list."""
    volume = volumes["local"]["id"]
    shown = openstack.json("volume", "show", volume)
    assert (shown["id"], shown["availability_zone"], shown["size"]) == (volume, "nova", 1)
    assert (shown["description"], shown["type"], shown["multiattach"]) == ("B.4.1.1", "SATA", False)
    assert shown["os-vol-host-attr:host"].split("@")[0] == guest["host"]
    assert "attachments" in shown
    rows = {r["ID"]: r for r in openstack.json("volume", "list", "--long")}
    assert rows[volume]["Size"] == 1 and rows[volume]["Type"] == "SATA"
    details = sdk.block_storage.get("/volumes/detail").json()["volumes"]
    assert all(VOLUME_ELEMENTS <= set(v) for v in details)
    assert volume in [v["id"] for v in details]


def test_b_4_1_4_volume_attach_through_nova(openstack: Cli, volumes, sdk, guest):
    """B.4.1.4 (Nova's os-volume_attachments): the volume is in-use, attached to the
    server at the mount point asked for; a volume on another node is refused."""
    volume = volumes["local"]["id"]
    ensure_detached(sdk, guest["id"], volume)
    openstack.run("server", "add", "volume", "--device", "/dev/vdb", guest["id"], volume)
    attached = volume_status(sdk, volume, "in-use")
    [a] = attached["attachments"]
    assert (a["server_id"], a["device"]) == (guest["id"], "/dev/vdb")
    assert a["attachment_id"] and a["attached_at"]
    assert volume in str(openstack.json("server", "show", guest["id"])["volumes_attached"])
    if volumes["remote"]:
        out = openstack.fails("server", "add", "volume", guest["id"], volumes["remote"])
        assert "node" in out, out


def test_b_4_1_6_volume_extend_while_attached(openstack: Cli, volumes, sdk, guest):
    """B.4.1.6: a larger size, also while attached; never a smaller or equal one."""
    volume = volumes["local"]["id"]
    ensure_attached(sdk, guest["id"], volume)
    size = sdk.block_storage.get(f"/volumes/{volume}").json()["volume"]["size"]
    openstack.run("volume", "set", "--size", str(size + 1), volume)
    wait_for(
        lambda: (v := sdk.block_storage.get(f"/volumes/{volume}").json()["volume"])["size"] == size + 1
        and v["status"] == "in-use",
        "the volume extended",
    )
    out = openstack.fails("volume", "set", "--size", str(size), volume)
    assert "size" in out.lower(), out
    r = sdk.block_storage.post(f"/volumes/{volume}/action", json={"os-extend": {"new_size": size + 1}}, raise_exc=False)
    assert r.status_code == 400, r.text


def test_b_4_1_5_volume_detach_through_nova(openstack: Cli, volumes, sdk, guest):
    """B.4.1.5 (Nova): the volume is available again, attached to nothing."""
    volume = volumes["local"]["id"]
    ensure_attached(sdk, guest["id"], volume)
    openstack.run("server", "remove", "volume", guest["id"], volume)
    assert volume_status(sdk, volume, "available")["attachments"] == []
    assert volume not in attached_to(sdk, guest["id"])


def test_b_4_1_4_volume_attach_through_cinder(volumes, sdk, guest):
    """B.4.1.4 (Cinder's os-attach with instance_uuid, mountpoint and mode): the
    server really has the volume."""
    volume = volumes["local"]["id"]
    ensure_detached(sdk, guest["id"], volume)
    r = sdk.block_storage.post(
        f"/volumes/{volume}/action",
        json={"os-attach": {"instance_uuid": guest["id"], "mountpoint": "/dev/vdc", "mode": "rw"}},
        raise_exc=False,
    )
    assert r.status_code == 202, r.text
    [a] = volume_status(sdk, volume, "in-use")["attachments"]
    assert (a["server_id"], a["device"]) == (guest["id"], "/dev/vdc")
    assert volume in attached_to(sdk, guest["id"])


def test_b_4_1_5_volume_detach_through_cinder(volumes, sdk, guest):
    """B.4.1.5 (Cinder's os-detach with the attachment id)."""
    volume = volumes["local"]["id"]
    [a] = ensure_attached(sdk, guest["id"], volume)["attachments"]
    r = sdk.block_storage.post(
        f"/volumes/{volume}/action", json={"os-detach": {"attachment_id": a["attachment_id"]}}, raise_exc=False
    )
    assert r.status_code == 202, r.text
    assert volume_status(sdk, volume, "available")["attachments"] == []
    assert volume not in attached_to(sdk, guest["id"])


def test_b_4_1_2_volume_delete(openstack: Cli, volumes, sdk, guest):
    """B.4.1.2: refused while attached (400); then the volume is gone."""
    volume = volumes["local"]["id"]
    ensure_attached(sdk, guest["id"], volume)
    openstack.fails("volume", "delete", volume)
    r = sdk.block_storage.delete(f"/volumes/{volume}", raise_exc=False)
    assert r.status_code in (400, 409), r.text
    ensure_detached(sdk, guest["id"], volume)
    openstack.run("volume", "delete", volume)
    volume_gone(sdk, volume)
    assert volume not in [r["ID"] for r in openstack.json("volume", "list")]


def test_b_1_3_2_limits_and_quota_show(openstack: Cli, sdk, admin_token_info):
    """B.1.3.2: total and used volume space, of the project and of the data centre."""
    volume = unique("quota-vol")
    created = openstack.json("volume", "create", "--size", "2", volume)
    volume_status(sdk, created["id"], "available")
    limits = {row["Name"]: row["Value"] for row in openstack.json("limits", "show", "--absolute")}
    # The CLI names block-storage limits as openstacksdk does.
    assert limits["max_total_volume_gigabytes"] == 1000, limits
    assert limits["total_gigabytes_used"] >= 2
    assert limits["total_volumes_used"] >= 1
    pools = openstack.json("volume", "backend", "pool", "list", "--long")
    assert {p["Name"].split("@")[0] for p in pools} == {"node-1", "node-2"}, pools
    for p in pools:
        caps = p["Capabilities"]
        assert caps["total_capacity_gb"] > 0 and 0 <= caps["free_capacity_gb"] <= caps["total_capacity_gb"]
    assert sum(p["Capabilities"]["allocated_capacity_gb"] for p in pools) >= 2, pools
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


# -- beyond the standard ---------------------------------------------------------


def test_volume_type_list_and_create(openstack: Cli):
    names = [t["Name"] for t in openstack.json("volume", "type", "list")]
    assert "SATA" in names and "SSD" in names
    name = unique("type")
    created = openstack.json("volume", "type", "create", "--property", "disk:total_iops_sec=500", name)
    assert created["name"] == name
    assert name in [t["Name"] for t in openstack.json("volume", "type", "list")]
    openstack.run("volume", "type", "delete", name)


def test_volume_snapshot_create(openstack: Cli, sdk):
    volume = openstack.json("volume", "create", "--size", "1", unique("snap-src"))["id"]
    volume_status(sdk, volume, "available")
    snap = openstack.json("volume", "snapshot", "create", "--volume", volume, unique("snap"))["id"]
    wait_for(
        lambda: sdk.block_storage.get_snapshot(snap).status == "available",
        "snapshot available",
    )
    # A volume from the snapshot.
    copy = openstack.json("volume", "create", "--snapshot", snap, unique("snap-copy"))["id"]
    assert volume_status(sdk, copy, "available")["size"] == 1
    openstack.run("volume", "delete", copy)
    volume_gone(sdk, copy)
    openstack.run("volume", "snapshot", "delete", snap)
    wait_for(
        lambda: sdk.block_storage.get(f"/snapshots/{snap}", raise_exc=False).status_code == 404,
        "snapshot deleted",
    )
    openstack.run("volume", "delete", volume)


def test_server_create_boot_from_volume(openstack: Cli, sdk, image: str):
    name = unique("bfv")
    created = openstack.json(
        "server", "create", "--flavor", "1", "--image", image, "--boot-from-volume", "2",
        "--nic", "none", name,
    )  # fmt: skip
    wait_server(sdk, created["id"], "ACTIVE")
    volumes = [v for v in openstack.json("volume", "list", "--long") if v["Attached to"]]
    root = [v for v in volumes if created["id"] in str(v["Attached to"])]
    assert len(root) == 1, volumes
    assert root[0]["Size"] == 2
    assert str(root[0]["Bootable"]).lower() == "true"
    openstack.run("server", "delete", created["id"])
    wait_server_gone(sdk, created["id"])
    # Without delete_on_termination the volume stays, available.
    volume_status(sdk, root[0]["ID"], "available")
    openstack.run("volume", "delete", root[0]["ID"])
