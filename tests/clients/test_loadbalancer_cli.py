"""Load balancers (standard clauses B.3.4.1–B.3.4.6) through the real `openstack
loadbalancer` CLI (python-octaviaclient) and, for the standard's `nodes` extension,
openstacksdk, against a scheduler with two sim nodes (see conftest.py).

The tests share one load balancer on the session's routed network, where the
`guest` server runs; B.3.4.1 makes it and B.3.4.2 deletes it at the end of the
module."""

from __future__ import annotations

import pytest

from conftest import Cli, unique, wait_for

# Tables B.52/B.55/B.58 (id, name, description; listeners, address and nodes besides)
# and B.56 (a node: the server's id and name, its address and port).
LB_ELEMENTS = {"id", "name", "description", "listeners", "vip_address", "nodes"}
NODE_ELEMENTS = {"id", "name", "address", "protocol_port"}


def lb_url(lb: str) -> str:
    return f"/lbaas/loadbalancers/{lb}"


def settled(sdk, lb: str) -> dict:
    """Waits until the load balancer is no longer PENDING_*; returns it (raw)."""

    def check():
        shown = sdk.load_balancer.get(lb_url(lb)).json()["loadbalancer"]
        assert shown["provisioning_status"] != "ERROR", shown
        return shown["provisioning_status"] == "ACTIVE" and shown

    return wait_for(check, f"load balancer {lb} ACTIVE")


def nodes(sdk, lb: str) -> list[dict]:
    return settled(sdk, lb)["nodes"]


def change_nodes(sdk, lb: str, **change) -> dict:
    settled(sdk, lb)
    r = sdk.load_balancer.patch(f"{lb_url(lb)}/nodes", json=change, raise_exc=False)
    assert r.status_code == 200, r.text
    return r.json()["loadbalancer"]


@pytest.fixture(scope="module")
def lb(openstack: Cli, sdk, routed):
    """B.3.4.1 as a user does it: `loadbalancer create` with a name, a description and
    the subnet of its address; then ACTIVE."""
    created = openstack.json(
        "loadbalancer", "create", "--name", unique("lb"), "--description", "B.3.4.1",
        "--vip-subnet-id", routed["subnet"],
    )  # fmt: skip
    settled(sdk, created["id"])
    yield created
    if sdk.load_balancer.get(lb_url(created["id"]), raise_exc=False).ok:
        settled(sdk, created["id"])
        sdk.load_balancer.delete(lb_url(created["id"]) + "?cascade=true")


@pytest.fixture()
def pool(sdk, lb) -> str:
    """The load balancer's default pool, where nodes live (a listener and a pool made
    with openstacksdk unless B.3.4.1's children test made them)."""
    shown = settled(sdk, lb["id"])
    if not shown["listeners"]:
        listener = sdk.load_balancer.create_listener(
            loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80, name=unique("web")
        )
        settled(sdk, lb["id"])
        sdk.load_balancer.create_pool(listener_id=listener.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN")
        shown = settled(sdk, lb["id"])
    listener = sdk.load_balancer.get_listener(shown["listeners"][0]["id"])
    return listener.default_pool_id


def test_b_3_4_1_loadbalancer_create(openstack: Cli, lb, sdk, routed):
    """B.3.4.1: the load balancer's id, name and description; its address on the
    subnet given; ACTIVE and ONLINE."""
    assert lb["id"] and lb["name"].startswith("lb-") and lb["description"] == "B.3.4.1"
    assert lb["vip_subnet_id"] == routed["subnet"]
    assert lb["vip_address"].startswith("10.77.0.")
    shown = openstack.json("loadbalancer", "show", lb["id"])
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")
    assert shown["vip_network_id"] == routed["network"] and shown["provider"] == "yunji"
    assert sdk.network.get_port(shown["vip_port_id"]).device_owner == "Octavia"


def test_b_3_4_1_loadbalancer_without_vip_is_refused_with_a_reason(openstack: Cli):
    message = openstack.fails(
        "loadbalancer", "create", "--name", unique("lb"), "--vip-network-id", "no-such-net",
    )  # fmt: skip
    assert "no-such-net" in message or "not found" in message.lower()


def test_b_3_4_1_listener_pool_member_healthmonitor(openstack: Cli, lb, sdk):
    """B.3.4.1: listeners, pools, members and health monitors as in Octavia."""
    settled(sdk, lb["id"])
    listener = openstack.json(
        "loadbalancer", "listener", "create", "--protocol", "HTTP", "--protocol-port", "8000",
        "--name", unique("web"), lb["id"],
    )  # fmt: skip
    assert listener["protocol_port"] == 8000
    settled(sdk, lb["id"])
    pool = openstack.json(
        "loadbalancer", "pool", "create", "--listener", listener["id"], "--protocol", "HTTP",
        "--lb-algorithm", "ROUND_ROBIN",
    )  # fmt: skip
    assert pool["lb_algorithm"] == "ROUND_ROBIN"
    settled(sdk, lb["id"])
    member = openstack.json(
        "loadbalancer", "member", "create", "--address", "10.77.0.21", "--protocol-port", "8080",
        pool["id"],
    )  # fmt: skip
    assert member["address"] == "10.77.0.21" and member["protocol_port"] == 8080
    settled(sdk, lb["id"])
    monitor = openstack.json(
        "loadbalancer", "healthmonitor", "create", "--delay", "5", "--timeout", "3",
        "--max-retries", "3", "--type", "HTTP", "--url-path", "/health", pool["id"],
    )  # fmt: skip
    assert monitor["type"] == "HTTP" and monitor["url_path"] == "/health"
    settled(sdk, lb["id"])
    members = openstack.json("loadbalancer", "member", "list", pool["id"])
    assert [m["address"] for m in members] == ["10.77.0.21"]
    # The first listener's default pool holds the standard's nodes.
    assert [n["address"] for n in nodes(sdk, lb["id"])] == ["10.77.0.21"]


def test_b_3_4_3_loadbalancer_show(openstack: Cli, lb, sdk):
    """B.3.4.3: id, name and description (mandatory); listeners, address, nodes."""
    shown = openstack.json("loadbalancer", "show", lb["id"])
    assert (shown["id"], shown["name"], shown["description"]) == (lb["id"], lb["name"], "B.3.4.1")
    assert shown["vip_address"] == lb["vip_address"]
    raw = settled(sdk, lb["id"])
    assert LB_ELEMENTS <= set(raw), LB_ELEMENTS - set(raw)
    assert all(NODE_ELEMENTS <= set(n) for n in raw["nodes"]), raw["nodes"]


def test_b_3_4_4_loadbalancer_list(openstack: Cli, lb, sdk):
    """B.3.4.4: every load balancer with id, name and description; listeners,
    address and nodes."""
    rows = {r["id"]: r for r in openstack.json("loadbalancer", "list")}
    assert rows[lb["id"]]["name"] == lb["name"]
    assert rows[lb["id"]]["vip_address"] == lb["vip_address"]
    listed = sdk.load_balancer.get("/lbaas/loadbalancers").json()["loadbalancers"]
    assert lb["id"] in [x["id"] for x in listed]
    for x in listed:
        assert LB_ELEMENTS <= set(x), (x["id"], LB_ELEMENTS - set(x))


def test_b_3_4_5_lb_add_nodes(openstack: Cli, lb, sdk, pool, guest):
    """B.3.4.5: nodes by server id (its address on the load balancer's network) or
    by address, with a port: members of the default pool."""
    for n in nodes(sdk, lb["id"]):
        if n["address"] in (guest["address"], "10.77.0.22"):
            change_nodes(sdk, lb["id"], remove=[{"address": n["address"]}])
    changed = change_nodes(
        sdk, lb["id"],
        add=[{"server_id": guest["id"], "protocol_port": 80}, {"address": "10.77.0.22", "protocol_port": 8080}],
    )  # fmt: skip
    by_address = {n["address"]: n for n in changed["nodes"]}
    assert by_address[guest["address"]] == {
        "id": guest["id"], "name": guest["name"], "address": guest["address"], "protocol_port": 80,
    }  # fmt: skip
    assert by_address["10.77.0.22"]["protocol_port"] == 8080
    settled(sdk, lb["id"])
    members = {m["address"]: m for m in openstack.json("loadbalancer", "member", "list", pool)}
    assert members[guest["address"]]["protocol_port"] == 80
    assert "10.77.0.22" in members


def test_b_3_4_6_lb_remove_nodes(openstack: Cli, lb, sdk, pool, guest):
    """B.3.4.6: nodes by server id or by address leave the default pool."""
    present = {n["address"] for n in nodes(sdk, lb["id"])}
    add = [{"server_id": guest["id"], "protocol_port": 80}] if guest["address"] not in present else []
    add += [{"address": "10.77.0.22", "protocol_port": 8080}] if "10.77.0.22" not in present else []
    if add:
        change_nodes(sdk, lb["id"], add=add)
    changed = change_nodes(sdk, lb["id"], remove=[{"server_id": guest["id"]}, {"address": "10.77.0.22"}])
    left = {n["address"] for n in changed["nodes"]}
    assert not left & {guest["address"], "10.77.0.22"}, changed["nodes"]
    settled(sdk, lb["id"])
    members = {m["address"] for m in openstack.json("loadbalancer", "member", "list", pool)}
    assert not members & {guest["address"], "10.77.0.22"}


def test_b_3_4_2_loadbalancer_delete(openstack: Cli, lb, sdk):
    """B.3.4.2: with its listeners and pools (cascade); its address port goes too."""
    vip_port = settled(sdk, lb["id"])["vip_port_id"]
    openstack.run("loadbalancer", "delete", "--cascade", lb["id"])
    wait_for(
        lambda: sdk.load_balancer.get(lb_url(lb["id"]), raise_exc=False).status_code == 404,
        "the load balancer deleted",
    )
    assert lb["id"] not in [r["id"] for r in openstack.json("loadbalancer", "list")]
    assert sdk.network.get(f"/ports/{vip_port}", raise_exc=False).status_code == 404
