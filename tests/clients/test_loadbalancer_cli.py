"""Octavia load balancers (standard clause B.3.4) through the real `openstack
loadbalancer` CLI (python-octaviaclient) against a scheduler with two sim nodes (see
conftest.py). Listeners, pools, members, health monitors and the nodes extension are not
offered yet."""

from __future__ import annotations

import pytest

from conftest import Cli, unique


@pytest.fixture()
def private(openstack: Cli):
    """A private network and subnet: (network id, subnet id); deleted afterwards."""
    net = openstack.json("network", "create", unique("lb-net"))
    sub = openstack.json(
        "subnet", "create", "--network", net["id"], "--subnet-range", "10.88.0.0/24",
        unique("lb-sub"),
    )  # fmt: skip
    yield net["id"], sub["id"]
    for port in openstack.json("port", "list", "--network", net["id"]):
        openstack.run("port", "delete", port["ID"], check=False)
    openstack.run("subnet", "delete", sub["id"], check=False)
    openstack.run("network", "delete", net["id"], check=False)


def test_b_3_4_loadbalancer_create_wait_list_show_set_delete_cascade(openstack: Cli, private):
    net, subnet = private
    name = unique("lb")
    created = openstack.json(
        "loadbalancer", "create", "--name", name, "--vip-subnet-id", subnet, "--wait",
    )  # fmt: skip
    lb = created["id"]
    try:
        assert created["vip_subnet_id"] == subnet
        assert created["vip_address"].startswith("10.88.0.")
        shown = openstack.json("loadbalancer", "show", lb)
        assert shown["provisioning_status"] == "ACTIVE"
        assert shown["operating_status"] == "ONLINE"
        assert shown["vip_network_id"] == net
        assert shown["provider"] == "yunji"
        assert name in [row["name"] for row in openstack.json("loadbalancer", "list")]
        openstack.run("loadbalancer", "set", "--name", name + "-2", "--wait", lb)
        assert openstack.json("loadbalancer", "show", lb)["name"] == name + "-2"
        vip_port = shown["vip_port_id"]
        assert openstack.json("port", "show", vip_port)["device_owner"] == "Octavia"
    finally:
        openstack.run("loadbalancer", "delete", "--cascade", "--wait", lb)
    assert lb not in [row["id"] for row in openstack.json("loadbalancer", "list")]
    ports = openstack.json("port", "list", "--network", net)
    assert all(p["ID"] != shown["vip_port_id"] for p in ports), "the VIP port must go"


def test_b_3_4_loadbalancer_without_vip_is_refused_with_a_reason(openstack: Cli):
    message = openstack.fails(
        "loadbalancer", "create", "--name", unique("lb"), "--vip-network-id", "no-such-net",
    )  # fmt: skip
    assert "no-such-net" in message or "not found" in message.lower()
