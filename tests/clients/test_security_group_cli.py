"""Security groups (standard clause B.3.5, Neutron security groups and rules, Nova's
add/remove security group) through the real `openstack` CLI, against a scheduler with
two sim nodes (see conftest.py)."""

from __future__ import annotations

from conftest import Cli, unique
from test_compute_cli import image  # noqa: F401  (a fixture)


def test_b_3_5_security_group_and_rules(openstack: Cli):
    name = unique("sg")
    group = openstack.json("security group", "create", "--description", "web servers", name)
    gid = group["id"]
    peers = openstack.json("security group", "create", unique("peers"))
    try:
        assert group["name"] == name and group["description"] == "web servers"
        # A new group lets everything out, IPv4 and IPv6.
        egress = [r for r in group["rules"] if r["direction"] == "egress"]
        assert sorted(r["ethertype"] for r in egress) == ["IPv4", "IPv6"]
        assert name in [g["Name"] for g in openstack.json("security group", "list")]
        assert "default" in [g["Name"] for g in openstack.json("security group", "list")]
        assert openstack.json("security group", "show", name)["id"] == gid

        ssh = openstack.json(
            "security group rule", "create", "--protocol", "tcp", "--dst-port", "22",
            "--remote-ip", "192.0.2.0/24", gid,
        )  # fmt: skip
        assert ssh["protocol"] == "tcp"
        assert (ssh["port_range_min"], ssh["port_range_max"]) == (22, 22)
        assert ssh["remote_ip_prefix"] == "192.0.2.0/24"
        from_peers = openstack.json(
            "security group rule", "create", "--protocol", "tcp", "--dst-port", "80:443",
            "--remote-group", peers["id"], gid,
        )  # fmt: skip
        assert from_peers["remote_group_id"] == peers["id"]
        v6 = openstack.json(
            "security group rule", "create", "--ethertype", "IPv6", "--protocol", "ipv6-icmp", gid,
        )  # fmt: skip
        assert v6.get("ether_type", v6.get("ethertype")) == "IPv6", v6
        # The same rule again is refused, naming the one that exists.
        assert "already exists" in openstack.fails(
            "security group rule", "create", "--protocol", "tcp", "--dst-port", "22",
            "--remote-ip", "192.0.2.0/24", gid,
        )  # fmt: skip
        listed = [r["ID"] for r in openstack.json("security group rule", "list", gid)]
        assert {ssh["id"], from_peers["id"], v6["id"]} <= set(listed)
        openstack.run("security group rule", "delete", ssh["id"])
        assert ssh["id"] not in [r["ID"] for r in openstack.json("security group rule", "list", gid)]
        openstack.run("security group", "set", "--name", name + "-2", gid)
        assert openstack.json("security group", "show", gid)["name"] == name + "-2"
    finally:
        openstack.run("security group", "delete", gid)
        openstack.run("security group", "delete", peers["id"])
    assert gid not in [g["ID"] for g in openstack.json("security group", "list")]


def test_b_3_5_server_add_and_remove_security_group(openstack: Cli, image: str):  # noqa: F811
    net = openstack.json("network", "create", unique("sgnet"))
    openstack.json("subnet", "create", "--network", net["id"], "--subnet-range", "10.55.0.0/24", unique("sgsub"))
    group = openstack.json("security group", "create", unique("sg"))
    name = unique("sgvm")
    server = openstack.json(
        "server", "create", "--flavor", "m1.tiny", "--image", image, "--network", net["id"],
        "--wait", name,
    )  # fmt: skip
    try:
        ports = openstack.json("port", "list", "--server", server["id"], "--long")
        assert len(ports) == 1
        openstack.run("server", "add", "security group", server["id"], group["name"])
        port = openstack.json("port", "show", ports[0]["ID"])
        assert group["id"] in port["security_group_ids"]
        shown = openstack.json("server", "show", server["id"])
        assert group["name"] in str(shown["security_groups"])
        # A group in use cannot go.
        assert "in use" in openstack.fails("security group", "delete", group["id"])
        openstack.run("server", "remove", "security group", server["id"], group["name"])
        port = openstack.json("port", "show", ports[0]["ID"])
        assert group["id"] not in port["security_group_ids"]
    finally:
        openstack.run("server", "delete", "--wait", server["id"])
        openstack.run("security group", "delete", group["id"])
        openstack.run("network", "delete", net["id"])
