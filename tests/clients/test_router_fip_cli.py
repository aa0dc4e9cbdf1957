"""Routers and floating IPs (standard clause B.3.2) through the real `openstack` CLI, and
the `publicips` extension (B.3.3) with plain HTTP, against a scheduler with two sim
nodes (see conftest.py).

One external network serves the whole module: public IPs come from the default external
network, which is the only one when no `[network] default_external_network` is set."""

from __future__ import annotations

import pytest
import requests

from conftest import Cli, unique


@pytest.fixture(scope="module")
def external(openstack: Cli):
    """An external network with a subnet: (network id, subnet id)."""
    net = openstack.json("network", "create", "--external", unique("public"))
    sub = openstack.json(
        "subnet", "create", "--network", net["id"], "--subnet-range", "198.51.100.0/24",
        unique("public-sub"),
    )  # fmt: skip
    yield net["id"], sub["id"]
    for fip in openstack.json("floating ip", "list", "--network", net["id"]):
        openstack.run("floating ip", "delete", fip["ID"], check=False)
    openstack.run("subnet", "delete", sub["id"], check=False)
    openstack.run("network", "delete", net["id"], check=False)


@pytest.fixture()
def private(openstack: Cli):
    """A private network and subnet: (network id, subnet id); deleted afterwards."""
    net = openstack.json("network", "create", unique("priv"))
    sub = openstack.json(
        "subnet", "create", "--network", net["id"], "--subnet-range", "10.77.0.0/24",
        unique("priv-sub"),
    )  # fmt: skip
    yield net["id"], sub["id"]
    for port in openstack.json("port", "list", "--network", net["id"]):
        openstack.run("port", "delete", port["ID"], check=False)
    openstack.run("subnet", "delete", sub["id"], check=False)
    openstack.run("network", "delete", net["id"], check=False)


def test_b_3_2_router_create_list_show_set_add_subnet_delete(openstack: Cli, external, private):
    ext, _ = external
    _, subnet = private
    name = unique("router")
    created = openstack.json("router", "create", name)
    router = created["id"]
    try:
        assert created["name"] == name
        assert created["status"] == "ACTIVE"
        assert name in [r["Name"] for r in openstack.json("router", "list")]
        openstack.run("router", "set", "--name", name + "-2", "--external-gateway", ext, router)
        shown = openstack.json("router", "show", router)
        assert shown["name"] == name + "-2"
        gateway = shown["external_gateway_info"]
        assert ext in str(gateway) and "198.51.100." in str(gateway)
        openstack.run("router", "add subnet", router, subnet)
        interfaces = openstack.json("port", "list", "--router", router)
        assert "10.77.0.1" in str(interfaces)
        assert "Router" in openstack.fails("router", "delete", router)
        openstack.run("router", "remove subnet", router, subnet)
        openstack.run("router", "unset", "--external-gateway", router)
        assert not openstack.json("router", "show", router)["external_gateway_info"]
    finally:
        openstack.run("router", "remove subnet", router, subnet, check=False)
        openstack.run("router", "delete", router)
    assert router not in [r["ID"] for r in openstack.json("router", "list")]


def test_b_3_2_floating_ip_create_set_unset_show_list_delete(openstack: Cli, external, private):
    ext, _ = external
    net, subnet = private
    router = openstack.json("router", "create", unique("router"))["id"]
    openstack.run("router", "set", "--external-gateway", ext, router)
    openstack.run("router", "add subnet", router, subnet)
    port = openstack.json("port", "create", "--network", net, unique("vm-port"))
    fip = openstack.json("floating ip", "create", "--description", "web", ext)
    try:
        assert fip["floating_ip_address"].startswith("198.51.100.")
        assert fip["status"] == "DOWN"
        openstack.run("floating ip", "set", "--port", port["id"], fip["id"])
        shown = openstack.json("floating ip", "show", fip["id"])
        assert shown["port_id"] == port["id"]
        assert shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
        assert shown["router_id"] == router
        assert shown["status"] == "ACTIVE"
        assert port["mac_address"] in str(shown["port_details"])
        listed = openstack.json("floating ip", "list", "--port", port["id"])
        assert [f["ID"] for f in listed] == [fip["id"]]
        openstack.run("floating ip", "unset", "--port", fip["id"])
        assert not openstack.json("floating ip", "show", fip["id"])["port_id"]
    finally:
        openstack.run("floating ip", "delete", fip["id"])
        openstack.run("port", "delete", port["id"])
        openstack.run("router", "remove subnet", router, subnet)
        openstack.run("router", "delete", router)
    assert fip["id"] not in [f["ID"] for f in openstack.json("floating ip", "list")]
    assert "No FloatingIP found" in openstack.fails("floating ip", "show", fip["id"])


def test_b_3_3_publicips_create_bind_unbind_show_list_delete(
    cloud, openstack: Cli, admin_token_info, external, private
):
    ext, _ = external
    net, subnet = private
    router = openstack.json("router", "create", unique("router"))["id"]
    openstack.run("router", "set", "--external-gateway", ext, router)
    openstack.run("router", "add subnet", router, subnet)
    port = openstack.json("port", "create", "--network", net, unique("vm-port"))
    private_ip = port["fixed_ips"][0]["ip_address"]
    base = f"{cloud.base_url}/network/v2.0"
    session = requests.Session()
    # Only the cloud's own CA: no CA bundle or proxy from the environment.
    session.trust_env = False
    session.verify = str(cloud.cacert)
    session.headers["X-Auth-Token"] = admin_token_info["id"]
    try:
        aliases = [e["alias"] for e in session.get(f"{base}/extensions").json()["extensions"]]
        assert "publicips" in aliases
        r = session.post(f"{base}/publicips", json={"publicip": {"name": "web"}})
        assert r.status_code == 201, r.text
        ip = r.json()["publicip"]
        assert ip["name"] == "web" and ip["public_ip_address"].startswith("198.51.100.")
        assert ip["server_id"] is None and ip["private_ip_address"] is None
        both = session.post(
            f"{base}/publicips/{ip['id']}/bind",
            json={"server_id": "x", "private_ip_address": private_ip},
        )
        assert both.status_code == 400, both.text
        r = session.post(f"{base}/publicips/{ip['id']}/bind", json={"private_ip_address": private_ip})
        assert r.status_code == 200, r.text
        assert r.json()["publicip"]["private_ip_address"] == private_ip
        assert r.json()["publicip"]["status"] == "ACTIVE"
        # One mechanism, two views: the CLI sees it as a floating IP.
        seen = openstack.json("floating ip", "show", ip["id"])
        assert seen["port_id"] == port["id"]
        r = session.get(f"{base}/publicips/{ip['id']}")
        assert r.status_code == 200 and r.json()["publicip"]["name"] == "web"
        assert ip["id"] in [p["id"] for p in session.get(f"{base}/publicips").json()["publicips"]]
        r = session.post(f"{base}/publicips/{ip['id']}/unbind", json={"private_ip_address": private_ip})
        assert r.status_code == 200, r.text
        assert r.json()["publicip"]["private_ip_address"] is None
        r = session.delete(f"{base}/publicips/{ip['id']}")
        assert r.status_code == 204, r.text
        assert session.get(f"{base}/publicips/{ip['id']}").status_code == 404
    finally:
        openstack.run("port", "delete", port["id"])
        openstack.run("router", "remove subnet", router, subnet)
        openstack.run("router", "delete", router)
