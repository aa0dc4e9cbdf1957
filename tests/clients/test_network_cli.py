"""Networking (standard clause B.3.1.1, Neutron networks, subnets, ports and network
quotas) through the real `openstack` CLI and openstacksdk, against a scheduler with
two sim nodes (see conftest.py)."""

from __future__ import annotations

import pytest

from conftest import Cli, unique


@pytest.fixture()
def network(sdk):
    """A fresh network, deleted afterwards (with whatever the test left on it)."""
    created = sdk.network.create_network(name=unique("net"), description="cli test")
    yield {"id": created.id, "name": created.name}
    for port in sdk.network.ports(network_id=created.id):
        sdk.network.delete_port(port)
    for subnet in sdk.network.subnets(network_id=created.id):
        sdk.network.delete_subnet(subnet)
    sdk.network.delete_network(created, ignore_missing=True)


def test_b_3_1_1_network_create_list_show_set_delete(openstack: Cli):
    name = unique("net")
    created = openstack.json("network", "create", "--description", "roads", name)
    net_id = created["id"]
    try:
        assert created["name"] == name
        assert created["status"] == "ACTIVE"
        assert created["mtu"] == 1450
        assert created["provider:network_type"] == "vxlan"
        listed = openstack.json("network", "list")
        assert name in [n["Name"] for n in listed]
        shown = openstack.json("network", "show", name)
        assert shown["id"] == net_id and shown["description"] == "roads"
        openstack.run("network", "set", "--name", name + "-renamed", "--share", net_id)
        renamed = openstack.json("network", "show", net_id)
        assert renamed["name"] == name + "-renamed" and renamed["shared"] is True
        assert net_id in [n["ID"] for n in openstack.json("network", "list", "--share")]
    finally:
        openstack.run("network", "delete", net_id)
    assert net_id not in [n["ID"] for n in openstack.json("network", "list")]
    assert "No Network found" in openstack.fails("network", "show", net_id)


def test_b_3_1_1_subnet_create_list_show_set_delete(openstack: Cli, network):
    name = unique("sub")
    created = openstack.json(
        "subnet", "create", "--network", network["id"], "--subnet-range", "10.20.0.0/24",
        "--dns-nameserver", "8.8.8.8", name,
    )  # fmt: skip
    sub_id = created["id"]
    assert created["gateway_ip"] == "10.20.0.1"
    assert created["cidr"] == "10.20.0.0/24"
    assert "10.20.0.2" in str(created["allocation_pools"])
    assert name in [s["Name"] for s in openstack.json("subnet", "list", "--network", network["id"])]
    openstack.run("subnet", "set", "--name", name + "-2", "--dns-nameserver", "1.1.1.1", sub_id)
    shown = openstack.json("subnet", "show", sub_id)
    assert shown["name"] == name + "-2"
    assert "1.1.1.1" in str(shown["dns_nameservers"]) and "8.8.8.8" in str(shown["dns_nameservers"])
    details = openstack.json("network", "show", network["id"])
    assert sub_id in str(details["subnets"])
    v6 = openstack.json(
        "subnet", "create", "--network", network["id"], "--ip-version", "6",
        "--subnet-range", "fd00:20::/64", "--ipv6-ra-mode", "slaac",
        "--ipv6-address-mode", "slaac", unique("sub6"),
    )  # fmt: skip
    assert v6["ip_version"] == 6 and v6["gateway_ip"] == "fd00:20::1"
    bad = openstack.fails(
        "subnet", "create", "--network", network["id"], "--subnet-range", "10.21.0.7/24",
        unique("bad"),
    )  # fmt: skip
    assert "10.21.0.0/24" in bad
    openstack.run("subnet", "delete", sub_id)
    openstack.run("subnet", "delete", v6["id"])
    assert sub_id not in [s["ID"] for s in openstack.json("subnet", "list")]


def test_b_3_1_1_port_create_list_show_set_delete(openstack: Cli, network):
    sub = unique("sub")
    openstack.json(
        "subnet", "create", "--network", network["id"], "--subnet-range", "10.30.0.0/29", sub,
    )  # fmt: skip
    name = unique("port")
    created = openstack.json(
        "port", "create", "--network", network["id"],
        "--fixed-ip", f"subnet={sub},ip-address=10.30.0.5", name,
    )  # fmt: skip
    port_id = created["id"]
    assert "10.30.0.5" in str(created["fixed_ips"])
    assert created["mac_address"].startswith("fa:16:3e:")
    assert created["status"] == "DOWN"
    auto = openstack.json("port", "create", "--network", network["id"], unique("port"))
    assert "10.30.0.2" in str(auto["fixed_ips"])
    listed = openstack.json("port", "list", "--network", network["id"])
    assert {port_id, auto["id"]} <= {p["ID"] for p in listed}
    openstack.run("port", "set", "--name", name + "-2", "--description", "gis", port_id)
    shown = openstack.json("port", "show", port_id)
    assert shown["name"] == name + "-2" and shown["description"] == "gis"
    taken = openstack.fails(
        "port", "create", "--network", network["id"],
        "--fixed-ip", f"subnet={sub},ip-address=10.30.0.5", unique("port"),
    )  # fmt: skip
    assert "already allocated" in taken
    # A /29 holds five addresses: three more ports, then the pool is exhausted.
    for _ in range(3):
        openstack.json("port", "create", "--network", network["id"], unique("port"))
    exhausted = openstack.fails("port", "create", "--network", network["id"], unique("port"))
    assert "No more IP addresses available" in exhausted
    in_use = openstack.fails("network", "delete", network["id"])
    assert "in use" in in_use
    openstack.run("port", "delete", port_id)
    assert port_id not in [p["ID"] for p in openstack.json("port", "list")]


def test_b_3_1_1_network_list_with_subnets(openstack: Cli, sdk, network):
    """B.3.1.1: each network with its id and name, and its subnets, each with id,
    name and CIDR (表B.39: 子网ID, 子网名, 网段)."""
    sub = sdk.network.create_subnet(
        network_id=network["id"], ip_version=4, cidr="10.40.0.0/24", name=unique("sub")
    )
    rows = {r["ID"]: r for r in openstack.json("network", "list")}
    assert rows[network["id"]]["Name"] == network["name"]
    assert rows[network["id"]]["Subnets"] == [sub.id]
    nets = {n["id"]: n for n in sdk.network.get("/networks").json()["networks"]}
    assert all(n["id"] and "name" in n and "subnets" in n for n in nets.values())
    mine = nets[network["id"]]
    assert mine["subnets"] == [sub.id]
    assert mine["subnet_details"] == [{"id": sub.id, "name": sub.name, "cidr": "10.40.0.0/24"}]
    sdk.network.delete_subnet(sub)


def test_network_quota_show_and_set(openstack: Cli):
    project = openstack.json("project", "create", unique("netquota"))["id"]
    try:
        shown = openstack.json("quota", "show", "--network", project)
        flat = shown if isinstance(shown, dict) else {r["Resource"]: r["Limit"] for r in shown}
        assert flat.get("networks") == 100 and flat.get("ports") == 500
        openstack.run("quota", "set", "--networks", "3", "--ports", "7", project)
        shown = openstack.json("quota", "show", "--network", project)
        flat = shown if isinstance(shown, dict) else {r["Resource"]: r["Limit"] for r in shown}
        assert flat.get("networks") == 3 and flat.get("ports") == 7
    finally:
        openstack.run("project", "delete", project)
