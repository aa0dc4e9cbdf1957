"""Security groups (standard clauses B.3.5.1–B.3.5.5, Neutron security groups and
rules, Nova's add/remove security group) through the real `openstack` CLI and
openstacksdk, against a scheduler with two sim nodes (see conftest.py).

The tests share one group, made by B.3.5.1 and deleted by B.3.5.2 at the end of the
module."""

from __future__ import annotations

import pytest

from conftest import Cli, unique

# Tables B.63/B.67 (a group) and B.64/B.68/B.70 (a rule): the mandatory elements.
GROUP_ELEMENTS = {"description", "id", "name", "security_group_rules"}
RULE_ELEMENTS = {"id", "direction", "ethertype", "security_group_id"}


@pytest.fixture(scope="module")
def group(openstack: Cli, sdk):
    """B.3.5.1 as a user does it: `security group create` with name and description."""
    created = openstack.json("security group", "create", "--description", "web servers", unique("sg"))
    yield created
    sdk.network.delete_security_group(created["id"], ignore_missing=True)


@pytest.fixture(scope="module")
def peers(sdk):
    made = sdk.network.create_security_group(name=unique("peers"))
    yield made
    sdk.network.delete_security_group(made, ignore_missing=True)


def test_b_3_5_1_security_group_create(group, sdk):
    """B.3.5.1: description, id, name and rules; a new group lets everything out,
    IPv4 and IPv6."""
    assert group["id"] and group["name"].startswith("sg-") and group["description"] == "web servers"
    egress = [r for r in group["rules"] if r["direction"] == "egress"]
    assert sorted(r["ethertype"] for r in egress) == ["IPv4", "IPv6"]
    assert len(group["rules"]) == 2, group["rules"]
    raw = sdk.network.get(f"/security-groups/{group['id']}").json()["security_group"]
    for rule in raw["security_group_rules"]:
        assert RULE_ELEMENTS <= set(rule), rule
        assert rule["security_group_id"] == group["id"]
        assert rule["remote_ip_prefix"] is None and rule["protocol"] is None


def test_b_3_5_3_security_group_show_and_list(openstack: Cli, group, sdk):
    """B.3.5.3: one group (by id or name), or all of them, with their rules."""
    for key in (group["id"], group["name"]):
        shown = openstack.json("security group", "show", key)
        assert (shown["id"], shown["name"], shown["description"]) == (group["id"], group["name"], "web servers")
        assert len(shown["rules"]) >= 2
    names = [g["Name"] for g in openstack.json("security group", "list")]
    assert group["name"] in names and "default" in names
    listed = sdk.network.get("/security-groups").json()["security_groups"]
    for g in listed:
        assert GROUP_ELEMENTS <= set(g), (g["id"], GROUP_ELEMENTS - set(g))
        assert all(RULE_ELEMENTS <= set(r) for r in g["security_group_rules"])


def test_b_3_5_4_security_group_rule_create(openstack: Cli, group, peers):
    """B.3.5.4: direction, ethertype, protocol, port range, and either a remote IP
    prefix or a remote group; the answer has the rule's mandatory elements."""
    gid = group["id"]
    ssh = openstack.json(
        "security group rule", "create", "--ingress", "--ethertype", "IPv4", "--protocol", "tcp",
        "--dst-port", "22", "--remote-ip", "192.0.2.0/24", "--description", "ssh", gid,
    )  # fmt: skip
    assert (ssh["direction"], ssh["protocol"], ssh["security_group_id"]) == ("ingress", "tcp", gid)
    assert ssh.get("ether_type", ssh.get("ethertype")) == "IPv4"
    assert (ssh["port_range_min"], ssh["port_range_max"]) == (22, 22)
    assert ssh["remote_ip_prefix"] == "192.0.2.0/24" and ssh["description"] == "ssh"
    assert ssh["id"]
    from_peers = openstack.json(
        "security group rule", "create", "--protocol", "tcp", "--dst-port", "80:443",
        "--remote-group", peers.id, gid,
    )  # fmt: skip
    assert from_peers["remote_group_id"] == peers.id
    assert (from_peers["port_range_min"], from_peers["port_range_max"]) == (80, 443)
    out = openstack.json(
        "security group rule", "create", "--egress", "--ethertype", "IPv6", "--protocol", "ipv6-icmp", gid,
    )  # fmt: skip
    assert out.get("ether_type", out.get("ethertype")) == "IPv6" and out["direction"] == "egress"
    # The same rule again is refused, naming the one that exists.
    assert "already exists" in openstack.fails(
        "security group rule", "create", "--protocol", "tcp", "--dst-port", "22",
        "--remote-ip", "192.0.2.0/24", gid,
    )  # fmt: skip
    listed = [r["ID"] for r in openstack.json("security group rule", "list", gid)]
    assert {ssh["id"], from_peers["id"], out["id"]} <= set(listed)


def test_b_3_5_5_security_group_rule_delete(openstack: Cli, group, sdk):
    """B.3.5.5: the rule is gone from its group."""
    rule = sdk.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="udp",
        port_range_min=53, port_range_max=53,
    )  # fmt: skip
    openstack.run("security group rule", "delete", rule.id)
    assert rule.id not in [r["ID"] for r in openstack.json("security group rule", "list", group["id"])]
    assert sdk.network.get(f"/security-group-rules/{rule.id}", raise_exc=False).status_code == 404


def test_security_group_set(openstack: Cli, group, sdk):
    name = unique("sg-renamed")
    openstack.run("security group", "set", "--name", name, "--description", "renamed", group["id"])
    shown = sdk.network.get_security_group(group["id"])
    assert (shown.name, shown.description) == (name, "renamed")
    sdk.network.update_security_group(group["id"], name=group["name"], description="web servers")


def test_b_3_5_server_add_and_remove_security_group(openstack: Cli, sdk, guest):
    added = sdk.network.create_security_group(name=unique("sg"))
    try:
        [port] = sdk.network.ports(device_id=guest["id"])
        openstack.run("server", "add", "security group", guest["id"], added.name)
        assert added.id in sdk.network.get_port(port.id).security_group_ids
        shown = openstack.json("server", "show", guest["id"])
        assert added.name in str(shown["security_groups"])
        openstack.run("server", "remove", "security group", guest["id"], added.name)
        assert added.id not in sdk.network.get_port(port.id).security_group_ids
    finally:
        sdk.network.delete_security_group(added, ignore_missing=True)


def test_b_3_5_2_security_group_delete(openstack: Cli, group, sdk, guest):
    """B.3.5.2: refused (409) while a port uses the group; then it is gone."""
    openstack.run("server", "add", "security group", guest["id"], group["id"])
    try:
        assert "in use" in openstack.fails("security group", "delete", group["id"])
        r = sdk.network.delete(f"/security-groups/{group['id']}", raise_exc=False)
        assert r.status_code == 409, r.text
    finally:
        openstack.run("server", "remove", "security group", guest["id"], group["id"])
    openstack.run("security group", "delete", group["id"])
    assert sdk.network.get(f"/security-groups/{group['id']}", raise_exc=False).status_code == 404
    assert group["id"] not in [g["ID"] for g in openstack.json("security group", "list")]
