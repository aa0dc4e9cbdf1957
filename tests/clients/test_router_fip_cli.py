"""Routers and floating IPs (standard clauses B.3.2.1–B.3.2.2) through the real
`openstack` CLI, and the `publicips` extension (B.3.3.1–B.3.3.5) with openstacksdk,
against a scheduler with two sim nodes (see conftest.py).

Public IPs come from the session's external network (conftest's `external`), the
default one when it is the only one; the private side is conftest's `routed` network,
where the session's `guest` server runs."""

from __future__ import annotations

import ipaddress

import pytest

from conftest import Cli, unique

PUBLIC = ipaddress.ip_network("198.51.100.0/24")
# Tables B.41 and B.42: the floating IP's mandatory elements, and its port's.
FIP_ELEMENTS = {"fixed_ip_address", "floating_ip_address", "floating_network_id", "id", "port_id", "status"}
PORT_DETAILS = {"status", "name", "network_id", "device_id", "mac_address"}
# Tables B.45 and B.49 (名称 optional, the others mandatory).
PUBLICIP_ELEMENTS = {"id", "name", "public_ip_address", "status"}


@pytest.fixture()
def private(sdk):
    """A private network and subnet of the router test's own: (network id, subnet id)."""
    net = sdk.network.create_network(name=unique("priv"))
    sub = sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.78.0.0/24", name=unique("priv-sub"))
    yield net.id, sub.id
    for port in sdk.network.ports(network_id=net.id):
        sdk.network.delete_port(port, ignore_missing=True)
    sdk.network.delete_subnet(sub, ignore_missing=True)
    sdk.network.delete_network(net, ignore_missing=True)


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
        assert "10.78.0.1" in str(interfaces)
        assert "Router" in openstack.fails("router", "delete", router)
        openstack.run("router", "remove subnet", router, subnet)
        openstack.run("router", "unset", "--external-gateway", router)
        assert not openstack.json("router", "show", router)["external_gateway_info"]
    finally:
        openstack.run("router", "remove subnet", router, subnet, check=False)
        openstack.run("router", "delete", router)
    assert router not in [r["ID"] for r in openstack.json("router", "list")]


# -- B.3.2 floating IPs ------------------------------------------------------------


@pytest.fixture(scope="module")
def port(sdk, routed):
    """A port on the routed network, as a server's would be."""
    made = sdk.network.create_port(network_id=routed["network"], name=unique("vm-port"))
    yield made
    sdk.network.delete_port(made, ignore_missing=True)


@pytest.fixture(scope="module")
def fip(openstack: Cli, sdk, external, port):
    """B.3.2.1 as a user does it: `floating ip create` on the external network,
    associated at once with a port and its private address."""
    ext, _ = external
    created = openstack.json(
        "floating ip", "create", "--port", port.id,
        "--fixed-ip-address", port.fixed_ips[0]["ip_address"], "--description", "web", ext,
    )  # fmt: skip
    yield created
    sdk.network.delete_ip(created["id"], ignore_missing=True)


def test_b_3_2_1_floating_ip_create(fip, external, port, routed, sdk):
    """B.3.2.1: the private and floating addresses, external network, id, port and
    status; the port's status, name, network, device and MAC address."""
    ext, _ = external
    assert FIP_ELEMENTS <= set(fip), FIP_ELEMENTS - set(fip)
    assert ipaddress.ip_address(fip["floating_ip_address"]) in PUBLIC
    assert fip["fixed_ip_address"] == port.fixed_ips[0]["ip_address"]
    assert (fip["floating_network_id"], fip["port_id"]) == (ext, port.id)
    assert fip["router_id"] == routed["router"]
    raw = sdk.network.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert raw["status"] == "ACTIVE"
    details = raw["port_details"]
    assert PORT_DETAILS <= set(details), details
    assert (details["name"], details["network_id"], details["mac_address"]) == (
        port.name, routed["network"], port.mac_address
    )


def test_b_3_2_1_floating_ip_set_unset_show_list(openstack: Cli, fip, port):
    """B.3.2 (修改/查询): disassociate and associate again; show and list."""
    openstack.run("floating ip", "unset", "--port", fip["id"])
    shown = openstack.json("floating ip", "show", fip["id"])
    assert not shown["port_id"] and not shown["fixed_ip_address"]
    assert shown["status"] == "DOWN"
    openstack.run("floating ip", "set", "--port", port.id, fip["id"])
    shown = openstack.json("floating ip", "show", fip["id"])
    assert (shown["port_id"], shown["status"]) == (port.id, "ACTIVE")
    listed = openstack.json("floating ip", "list", "--port", port.id)
    assert [f["ID"] for f in listed] == [fip["id"]]


def test_b_2_1_3_server_addresses_show_its_floating_ip(openstack: Cli, sdk, external, guest):
    """B.2.1.3 (表B.12 云主机浮动IP): a server's addresses include the floating IP
    of its port, as Nova shows it (`OS-EXT-IPS:type: floating`)."""
    ext, _ = external
    [port] = sdk.network.ports(device_id=guest["id"])
    fip = sdk.network.create_ip(floating_network_id=ext, port_id=port.id)
    try:
        addresses = sdk.compute.get(f"/servers/{guest['id']}").json()["server"]["addresses"]
        types = {a["addr"]: a["OS-EXT-IPS:type"] for net in addresses.values() for a in net}
        assert types == {guest["address"]: "fixed", fip.floating_ip_address: "floating"}, addresses
        assert fip.floating_ip_address in str(openstack.json("server", "show", guest["id"])["addresses"])
    finally:
        sdk.network.delete_ip(fip)


def test_b_3_2_2_floating_ip_delete(openstack: Cli, fip, sdk):
    """B.3.2.2: the floating IP is gone (204, then 404)."""
    openstack.run("floating ip", "delete", fip["id"])
    assert "No FloatingIP found" in openstack.fails("floating ip", "show", fip["id"])
    assert sdk.network.get(f"/floatingips/{fip['id']}", raise_exc=False).status_code == 404
    assert fip["id"] not in [f["ID"] for f in openstack.json("floating ip", "list")]


# -- B.3.3 public IPs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def publicip(sdk, external, routed):
    """B.3.3.1: POST /v2.0/publicips with a name; the raw response."""
    r = sdk.network.post("/publicips", json={"publicip": {"name": "web"}}, raise_exc=False)
    yield r
    if r.status_code == 201:
        sdk.network.delete(f"/publicips/{r.json()['publicip']['id']}", raise_exc=False)


def act(sdk, ip: str, action: str, **target):
    return sdk.network.post(f"/publicips/{ip}/{action}", json=target, raise_exc=False)


def bound_to(sdk, ip: str) -> dict:
    return sdk.network.get(f"/publicips/{ip}").json()["publicip"]


def test_b_3_3_1_publicip_create(publicip, sdk):
    """B.3.3.1 (extension `publicips`): 201 with the id, address and status, and the
    name given; bound to nothing yet."""
    aliases = [e["alias"] for e in sdk.network.get("/extensions").json()["extensions"]]
    assert "publicips" in aliases
    assert publicip.status_code == 201, publicip.text
    ip = publicip.json()["publicip"]
    assert PUBLICIP_ELEMENTS <= set(ip), ip
    assert ip["name"] == "web" and ipaddress.ip_address(ip["public_ip_address"]) in PUBLIC
    assert ip["status"] and ip["created_at"]
    assert ip["server_id"] is None and ip["private_ip_address"] is None


def test_b_3_3_2_publicip_bind(publicip, sdk, guest):
    """B.3.3.2: to a server (by its id) or to a private IP — exactly one of them."""
    ip = publicip.json()["publicip"]["id"]
    if bound_to(sdk, ip)["private_ip_address"]:
        act(sdk, ip, "unbind", private_ip_address=bound_to(sdk, ip)["private_ip_address"])
    both = act(sdk, ip, "bind", server_id=guest["id"], private_ip_address=guest["address"])
    assert both.status_code == 400, both.text
    assert act(sdk, ip, "bind").status_code == 400

    r = act(sdk, ip, "bind", server_id=guest["id"])
    assert r.status_code == 200, r.text
    bound = r.json()["publicip"]
    assert (bound["server_id"], bound["private_ip_address"]) == (guest["id"], guest["address"])
    assert bound["status"] == "ACTIVE"
    # One mechanism, two views: the floating IP is on the server's port.
    [port] = sdk.network.ports(device_id=guest["id"])
    assert sdk.network.get_ip(ip).port_id == port.id

    assert act(sdk, ip, "unbind", server_id=guest["id"]).status_code == 200
    r = act(sdk, ip, "bind", private_ip_address=guest["address"])
    assert r.status_code == 200, r.text
    assert r.json()["publicip"]["private_ip_address"] == guest["address"]
    assert r.json()["publicip"]["server_id"] == guest["id"]


def test_b_3_3_3_publicip_unbind(openstack: Cli, publicip, sdk, guest):
    """B.3.3.3: from the private IP, or from the server, it was bound to."""
    ip = publicip.json()["publicip"]["id"]
    for target in ({"private_ip_address": guest["address"]}, {"server_id": guest["id"]}):
        if not bound_to(sdk, ip)["private_ip_address"]:
            assert act(sdk, ip, "bind", server_id=guest["id"]).status_code == 200
        r = act(sdk, ip, "unbind", **target)
        assert r.status_code == 200, (target, r.text)
        unbound = r.json()["publicip"]
        assert unbound["server_id"] is None and unbound["private_ip_address"] is None, unbound
    # One mechanism, two views: the CLI's floating IP is free too.
    assert not openstack.json("floating ip", "show", ip)["port_id"]


def test_b_3_3_4_publicip_show_and_list(publicip, sdk):
    """B.3.3.4: one public IP's id, name, address and status; and the list."""
    ip = publicip.json()["publicip"]
    r = sdk.network.get(f"/publicips/{ip['id']}")
    assert r.status_code == 200
    shown = r.json()["publicip"]
    assert PUBLICIP_ELEMENTS <= set(shown), shown
    assert (shown["id"], shown["name"], shown["public_ip_address"]) == (ip["id"], "web", ip["public_ip_address"])
    assert shown["status"]
    listed = sdk.network.get("/publicips").json()["publicips"]
    assert ip["id"] in [p["id"] for p in listed]
    assert all(PUBLICIP_ELEMENTS <= set(p) for p in listed)


def test_b_3_3_5_publicip_delete(openstack: Cli, publicip, sdk):
    """B.3.3.5: 204, then 404; the floating IP behind it is gone too."""
    ip = publicip.json()["publicip"]["id"]
    r = sdk.network.delete(f"/publicips/{ip}", raise_exc=False)
    assert r.status_code == 204, r.text
    assert sdk.network.get(f"/publicips/{ip}", raise_exc=False).status_code == 404
    assert "No FloatingIP found" in openstack.fails("floating ip", "show", ip)
