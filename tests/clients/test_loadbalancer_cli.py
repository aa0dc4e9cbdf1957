"""Octavia load balancers (standard clause B.3.4) through the real `openstack
loadbalancer` CLI (python-octaviaclient) against a scheduler with two sim nodes (see
conftest.py); the standard's nodes extension with plain HTTP."""

from __future__ import annotations

import time

import pytest
import requests

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


def test_b_3_4_listener_pool_member_healthmonitor_and_nodes(cloud, openstack: Cli, admin_token_info, private):
    _, subnet = private
    lb = openstack.json("loadbalancer", "create", "--name", unique("lb"), "--vip-subnet-id", subnet, "--wait")["id"]
    try:
        listener = openstack.json(
            "loadbalancer", "listener", "create", "--protocol", "HTTP", "--protocol-port", "80",
            "--name", unique("web"), "--wait", lb,
        )  # fmt: skip
        assert listener["protocol_port"] == 80
        pool = openstack.json(
            "loadbalancer", "pool", "create", "--listener", listener["id"], "--protocol", "HTTP",
            "--lb-algorithm", "ROUND_ROBIN", "--wait",
        )  # fmt: skip
        assert pool["lb_algorithm"] == "ROUND_ROBIN"
        member = openstack.json(
            "loadbalancer", "member", "create", "--address", "10.88.0.21", "--protocol-port", "8080",
            "--wait", pool["id"],
        )  # fmt: skip
        assert member["address"] == "10.88.0.21" and member["protocol_port"] == 8080
        monitor = openstack.json(
            "loadbalancer", "healthmonitor", "create", "--delay", "5", "--timeout", "3",
            "--max-retries", "3", "--type", "HTTP", "--url-path", "/health", "--wait", pool["id"],
        )  # fmt: skip
        assert monitor["type"] == "HTTP" and monitor["url_path"] == "/health"
        members = openstack.json("loadbalancer", "member", "list", pool["id"])
        assert [m["address"] for m in members] == ["10.88.0.21"]

        # The standard's nodes: the default pool's members, added and removed by address.
        session = requests.Session()
        # Only the cloud's own CA: no CA bundle or proxy from the environment.
        session.trust_env = False
        session.verify = str(cloud.cacert)
        session.headers["X-Auth-Token"] = admin_token_info["id"]
        url = f"{cloud.base_url}/load-balancer/v2/lbaas/loadbalancers/{lb}"
        shown = session.get(url).json()["loadbalancer"]
        assert [n["address"] for n in shown["nodes"]] == ["10.88.0.21"]
        r = session.patch(f"{url}/nodes", json={"add": [{"address": "10.88.0.22", "protocol_port": 8080}]})
        assert r.status_code == 200, r.text
        assert sorted(n["address"] for n in r.json()["loadbalancer"]["nodes"]) == ["10.88.0.21", "10.88.0.22"]
        for _ in range(100):
            if session.get(url).json()["loadbalancer"]["provisioning_status"] == "ACTIVE":
                break
            time.sleep(0.1)
        r = session.patch(f"{url}/nodes", json={"remove": [{"address": "10.88.0.21"}]})
        assert r.status_code == 200, r.text
        assert [n["address"] for n in r.json()["loadbalancer"]["nodes"]] == ["10.88.0.22"]
    finally:
        openstack.run("loadbalancer", "delete", "--cascade", "--wait", lb)
