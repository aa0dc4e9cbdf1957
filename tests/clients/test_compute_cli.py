"""Compute (standard clauses B.1.2, B.1.3.1, B.2.1 and B.2.2, and B.2.3.1's image of a
server) through the real `openstack` CLI and openstacksdk, against a scheduler with
two sim nodes (see conftest.py).

The B.2.1 tests share one server, made by B.2.1.1 and deleted by B.2.1.2 at the end
of the module; each test first brings it to the state it needs, so any one of them
also runs alone (`run.sh -k b_2_1_7`)."""

from __future__ import annotations

import base64

import pytest

from conftest import (
    Cli,
    server_status,
    unique,
    wait_for,
    wait_server,
    wait_server_gone,
)

# The standard's mandatory elements of a server (tables B.11 and B.18), by their
# names in Nova's server view and in `openstack server show`.
SERVER_ELEMENTS = {
    "id", "name", "flavor", "image", "os-extended-volumes:volumes_attached", "addresses",
    "status", "security_groups", "created",
}  # fmt: skip
SERVER_ELEMENTS_CLI = {
    "id", "name", "flavor", "image", "volumes_attached", "addresses", "status",
    "security_groups", "created",
}  # fmt: skip
FIXED_IP = "10.66.0.50"
USER_DATA = b"#cloud-config\nhostname: b-2-1-1\n"


def console(sdk, server: str) -> str:
    return sdk.compute.get_server_console_output(server)["output"]


def host_of(sdk, server: str) -> str:
    return sdk.compute.get_server(server).compute_host


def flavor_id(sdk, server: str) -> str:
    return sdk.compute.get(f"/servers/{server}").json()["server"]["flavor"]["id"]


@pytest.fixture(scope="module")
def server(openstack: Cli, sdk, image: str, tmp_path_factory):
    """B.2.1.1 as a user does it: `server create` with the standard's parameters —
    name, flavor, image, network (uuid and fixed IP), metadata, user data and a
    security group — then ACTIVE. dict(id, name, created (the CLI's output), group,
    network)."""
    net = sdk.network.create_network(name=unique("vm-net"))
    sub = sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.66.0.0/24")
    group = sdk.network.create_security_group(name=unique("vm-sg"))
    user_data = tmp_path_factory.mktemp("user-data") / "user-data"
    user_data.write_bytes(USER_DATA)
    name = unique("vm")
    created = openstack.json(
        "server", "create", "--flavor", "m1.tiny", "--image", image,
        "--nic", f"net-id={net.id},v4-fixed-ip={FIXED_IP}", "--property", "gis=roads",
        "--user-data", str(user_data), "--security-group", group.name, name,
    )  # fmt: skip
    wait_server(sdk, created["id"], "ACTIVE")
    yield {"id": created["id"], "name": name, "created": created, "group": group, "network": net.id}
    sdk.compute.delete_server(created["id"], ignore_missing=True)
    wait_server_gone(sdk, created["id"])
    sdk.network.delete_security_group(group, ignore_missing=True)
    sdk.network.delete_subnet(sub, ignore_missing=True)
    sdk.network.delete_network(net, ignore_missing=True)


def ensure_status(sdk, server: str, status: str) -> None:
    """Brings the shared server to ACTIVE or SHUTOFF (other tests may have left it
    either way)."""
    current = wait_for(
        lambda: (s := sdk.compute.get_server(server)).status in ("ACTIVE", "SHUTOFF")
        and not s.task_state
        and s.status,
        f"server {server} settled",
    )
    if current != status:
        (sdk.compute.start_server if status == "ACTIVE" else sdk.compute.stop_server)(server)
        wait_server(sdk, server, status)


# -- B.2.1 servers ---------------------------------------------------------------


def test_b_2_1_1_server_create(server, sdk):
    """B.2.1.1: the create answers with the server's id; BUILD, then ACTIVE, with every
    parameter applied."""
    created = server["created"]
    assert created["id"] and created["status"] in ("BUILD", "ACTIVE"), created
    shown = sdk.compute.get(f"/servers/{server['id']}", microversion="2.3").json()["server"]
    assert shown["status"] == "ACTIVE"
    assert shown["name"] == server["name"]
    addresses = [a["addr"] for net in shown["addresses"].values() for a in net]
    assert addresses == [FIXED_IP], shown["addresses"]
    assert shown["metadata"] == {"gis": "roads"}
    assert base64.b64decode(shown["OS-EXT-SRV-ATTR:user_data"]) == USER_DATA
    groups = sdk.compute.get(f"/servers/{server['id']}/os-security-groups").json()
    assert [g["id"] for g in groups["security_groups"]] == [server["group"].id], groups


def test_b_2_1_3_server_show(openstack: Cli, server, sdk):
    """B.2.1.3: id, name, flavor, image, volumes, addresses, status, security groups
    and creation time, all mandatory; Nova's extended attributes besides."""
    shown = openstack.json("server", "show", server["id"])
    assert SERVER_ELEMENTS_CLI <= set(shown), SERVER_ELEMENTS_CLI - set(shown)
    assert shown["id"] == server["id"] and shown["created"]
    assert FIXED_IP in str(shown["addresses"])

    raw = sdk.compute.get(f"/servers/{server['id']}").json()["server"]
    assert SERVER_ELEMENTS <= set(raw), SERVER_ELEMENTS - set(raw)
    assert set(raw["flavor"]) == {"id", "links"}, raw["flavor"]  # microversion 2.1
    assert raw["image"]["id"]
    [address] = [a for net in raw["addresses"].values() for a in net]
    assert address["addr"] == FIXED_IP and address["version"] == 4
    assert address["OS-EXT-IPS:type"] == "fixed"
    assert address["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")
    assert raw["OS-EXT-SRV-ATTR:host"] in ("node-1", "node-2")
    assert raw["OS-EXT-AZ:availability_zone"] == "nova"
    assert raw["OS-EXT-STS:vm_state"] in ("active", "stopped")
    assert raw["tenant_id"] and raw["user_id"] and raw["updated"]


def test_b_2_1_3_server_show_names_its_security_groups(openstack: Cli, server):
    """B.2.1.3 (安全组, mandatory): the groups a server belongs to, by name as Nova
    shows them — also when the create named the group by id, as the CLI does."""
    shown = openstack.json("server", "show", server["id"])
    assert shown["security_groups"] == [{"name": server["group"].name}], shown["security_groups"]


def test_b_2_1_4_server_update(openstack: Cli, server, sdk):
    """B.2.1.4: a new name and description."""
    name = unique("vm-renamed")
    openstack.run("server", "set", "--name", name, "--description", "B.2.1.4", server["id"])
    shown = sdk.compute.get_server(server["id"])
    assert (shown.name, shown.description) == (name, "B.2.1.4")


def test_b_2_1_6_server_stop(openstack: Cli, server, sdk):
    """B.2.1.6: the guest is asked to power down; the server ends SHUTOFF."""
    ensure_status(sdk, server["id"], "ACTIVE")
    openstack.run("server", "stop", server["id"])
    stopped = wait_server(sdk, server["id"], "SHUTOFF")
    assert stopped.power_state == 4  # Nova's SHUTDOWN
    assert "ACPI power-button" in console(sdk, server["id"]).splitlines()[-1]


def test_b_2_1_5_server_start(openstack: Cli, server, sdk):
    """B.2.1.5: a SHUTOFF server boots and ends ACTIVE."""
    ensure_status(sdk, server["id"], "SHUTOFF")
    openstack.run("server", "start", server["id"])
    started = wait_server(sdk, server["id"], "ACTIVE")
    assert started.power_state == 1  # RUNNING
    assert "booted" in console(sdk, server["id"])


def test_b_2_1_7_reboot_soft_and_hard(openstack: Cli, server, sdk):
    """B.2.1.7: 普通重启 (SOFT, through the guest) and 强制重启 (HARD, a reset); both
    end ACTIVE after a new boot."""
    ensure_status(sdk, server["id"], "ACTIVE")
    for flag, sign in (("--soft", "ACPI reboot requested"), ("--hard", "yunji-sim: reset")):
        before = len(console(sdk, server["id"]).splitlines())
        openstack.run("server", "reboot", flag, server["id"])
        wait_for(
            lambda: server_status(sdk, server["id"]) == "ACTIVE"
            and (new := console(sdk, server["id"]).splitlines()[before:])
            and sign in new[0]
            and any("booted" in line for line in new),
            f"a {flag} reboot",
        )


def test_console_log_show(openstack: Cli, server, sdk):
    ensure_status(sdk, server["id"], "ACTIVE")
    assert "login:" in openstack.run("console", "log", "show", server["id"]).stdout


def test_b_2_1_8_server_list(openstack: Cli, server, sdk, image: str):
    """B.2.1.8: the list, with each server's mandatory elements; filters by name,
    status, flavor, image and changes-since; paging with limit and marker."""
    ensure_status(sdk, server["id"], "ACTIVE")
    name = sdk.compute.get_server(server["id"]).name
    rows = openstack.json(
        "server", "list", "--name", name, "--status", "ACTIVE", "--flavor", "m1.tiny",
        "--image", image, "--changes-since", "2020-01-01T00:00:00Z",
    )  # fmt: skip
    assert [r["ID"] for r in rows] == [server["id"]], rows
    assert FIXED_IP in str(rows[0]["Networks"])
    assert not openstack.json("server", "list", "--name", name, "--status", "SHUTOFF")
    assert not openstack.json("server", "list", "--name", name, "--changes-since", "2999-01-01T00:00:00Z")
    assert server["id"] in [r["ID"] for r in openstack.json("server", "list", "--all-projects")]

    details = sdk.compute.get("/servers/detail").json()["servers"]
    assert server["id"] in [s["id"] for s in details]
    for s in details:
        assert SERVER_ELEMENTS <= set(s), (s["id"], SERVER_ELEMENTS - set(s))

    first = sdk.compute.get("/servers?limit=1").json()
    assert len(first["servers"]) == 1
    [link] = [link for link in first["servers_links"] if link["rel"] == "next"]
    assert "marker=" + first["servers"][0]["id"] in link["href"]
    rest = sdk.compute.get(link["href"]).json()["servers"]
    assert first["servers"][0]["id"] not in [s["id"] for s in rest]
    assert len(rest) + 1 == len(sdk.compute.get("/servers").json()["servers"])


def test_server_tags_label_and_filter_servers(openstack: Cli, server):
    """Tags (2.26): set and unset with the CLI, shown with the server, and a list
    filter."""
    openstack.run("server", "set", "--tag", "gis", "--tag", "tiles", server["id"])
    assert sorted(openstack.json("server", "show", server["id"])["tags"]) == ["gis", "tiles"]
    tagged = openstack.json("server", "list", "--tags", "gis,tiles")
    assert [s["ID"] for s in tagged] == [server["id"]]
    openstack.run("server", "unset", "--tag", "tiles", server["id"])
    assert openstack.json("server", "show", server["id"])["tags"] == ["gis"]
    assert openstack.json("server", "list", "--tags", "tiles") == []
    openstack.run("server", "unset", "--tag", "gis", server["id"])


def test_b_2_1_8_server_list_name_filter_is_a_regex(openstack: Cli, server, sdk):
    """B.2.1.8's `name` filter as Nova (and `server list --name <name-regex>`) has
    it: a regular expression, so `^name$` finds exactly that server."""
    name = sdk.compute.get_server(server["id"]).name
    rows = openstack.json("server", "list", "--name", f"^{name}$")
    assert [r["ID"] for r in rows] == [server["id"]], rows
    assert not openstack.json("server", "list", "--name", f"^{name[1:]}")


def test_b_2_1_10_resize_confirm_and_revert(openstack: Cli, server, sdk):
    """B.2.1.10: a resize waits in VERIFY_RESIZE; confirm keeps the new flavor,
    revert returns to the old one."""
    ensure_status(sdk, server["id"], "ACTIVE")
    flavors = {f.name: f.id for f in sdk.compute.flavors()}
    start = flavor_id(sdk, server["id"])
    new, newer = [flavors[n] for n in ("m1.small", "m1.medium", "m1.tiny") if flavors[n] != start][:2]

    openstack.run("server", "resize", "--flavor", new, server["id"])
    wait_server(sdk, server["id"], "VERIFY_RESIZE")
    openstack.run("server", "resize", "confirm", server["id"])
    wait_server(sdk, server["id"], "ACTIVE")
    assert flavor_id(sdk, server["id"]) == new

    openstack.run("server", "resize", "--flavor", newer, server["id"])
    wait_server(sdk, server["id"], "VERIFY_RESIZE")
    assert flavor_id(sdk, server["id"]) == newer
    openstack.run("server", "resize", "revert", server["id"])
    wait_server(sdk, server["id"], "ACTIVE")
    assert flavor_id(sdk, server["id"]) == new
    assert "resize reverted" in console(sdk, server["id"])


def test_b_2_1_9_live_migrate(openstack: Cli, server, sdk, member_sdk):
    """B.2.1.9 (admin): to the named target host (目的主机), and to one the cloud
    picks; the guest keeps running. Hosts come from os-hypervisors / os-services."""
    ensure_status(sdk, server["id"], "ACTIVE")
    hypervisors = {h["Hypervisor Hostname"] for h in openstack.json("hypervisor", "list")}
    services = {
        s["Host"] for s in openstack.json("compute", "service", "list", "--service", "nova-compute")
    }
    assert hypervisors == services == {"node-1", "node-2"}
    source = host_of(sdk, server["id"])
    [target] = hypervisors - {source}

    # Only an administrator may move a server.
    r = member_sdk.compute.post(
        f"/servers/{server['id']}/action",
        json={"os-migrateLive": {"host": target, "block_migration": "auto"}},
        microversion="2.25",
        raise_exc=False,
    )
    assert r.status_code in (403, 404), r.text

    # The CLI sends a host only from microversion 2.30; openstacksdk sends it at 2.25
    # (with force, which the cloud's 2.25 implies).
    seen = set()

    def arrived(host):
        s = sdk.compute.get_server(server["id"])
        seen.add(s.status)
        return s.status == "ACTIVE" and s.compute_host == host

    sdk.compute.live_migrate_server(server["id"], host=target, force=True, block_migration="auto")
    wait_for(lambda: arrived(target), f"arrival on {target}")
    openstack.run("server", "migrate", "--live-migration", server["id"])
    wait_for(lambda: arrived(source), f"arrival back on {source}")
    assert seen <= {"ACTIVE", "MIGRATING"}, seen
    assert "live migration arrived; still running" in console(sdk, server["id"])


def test_server_migration_list_shows_a_live_migration(openstack: Cli, server, sdk):
    ensure_status(sdk, server["id"], "ACTIVE")
    source = host_of(sdk, server["id"])
    openstack.run("server", "migrate", "--live-migration", server["id"])
    wait_for(
        lambda: host_of(sdk, server["id"]) != source
        and server_status(sdk, server["id"]) == "ACTIVE",
        "the live migration",
    )
    migrations = openstack.json("server", "migration", "list", "--server", server["id"])
    assert migrations, "the live migration is listed"
    assert migrations[0]["Source Node"] == source
    assert migrations[0]["Status"] == "completed"


def test_b_2_3_1_image_from_server(openstack: Cli, server, sdk):
    """B.2.3.1: a new image from a server, its type (disk_format) and description
    given as the createImage metadata."""
    ensure_status(sdk, server["id"], "ACTIVE")
    name = unique("snap")
    openstack.run(
        "server", "image", "create", "--name", name, "--property", "disk_format=raw",
        "--property", "description=B.2.3.1", server["id"],
    )  # fmt: skip
    image = wait_for(
        lambda: (i := sdk.image.find_image(name)) and i.status == "active" and i,
        f"image {name} active",
    )
    try:
        shown = sdk.image.get(f"/images/{image.id}").json()
        assert shown["disk_format"] == "raw" and shown["description"] == "B.2.3.1"
        assert shown["instance_uuid"] == server["id"] and shown["image_type"] == "snapshot"
    finally:
        sdk.image.delete_image(image.id)


# -- B.2.2 flavors ---------------------------------------------------------------


@pytest.fixture(scope="module")
def flavor(openstack: Cli, sdk):
    """B.2.2.1 as a user does it: `flavor create` with CPU, RAM, disk, name, id, the
    public flag and a description (microversion 2.55)."""
    fid = unique("b221")
    created = openstack.json(
        "flavor", "create", "--id", fid, "--vcpus", "2", "--ram", "1024", "--disk", "10",
        "--public", "--description", "B.2.2.1 tiles", unique("flavor"),
    )  # fmt: skip
    yield created
    sdk.compute.delete_flavor(fid, ignore_missing=True)


def test_b_2_2_1_flavor_create(flavor, sdk, member_sdk):
    """B.2.2.1 (admin): the flavor has the CPUs, RAM, disk, name, id and description
    given."""
    assert flavor["id"].startswith("b221-")
    assert (flavor["vcpus"], flavor["ram"], flavor["disk"]) == (2, 1024, 10)
    assert flavor["description"] == "B.2.2.1 tiles"
    assert flavor["os-flavor-access:is_public"] is True
    refused = member_sdk.compute.post(
        "/flavors",
        json={"flavor": {"name": unique("nope"), "ram": 64, "vcpus": 1, "disk": 1}},
        raise_exc=False,
    )
    assert refused.status_code == 403, refused.text


def test_b_2_2_3_flavor_show(openstack: Cli, flavor):
    """B.2.2.3: id, name, CPUs, RAM and disk of one flavor, by id or by name."""
    for key in (flavor["id"], flavor["name"]):
        shown = openstack.json("flavor", "show", key)
        assert {k: shown[k] for k in ("id", "name", "vcpus", "ram", "disk")} == {
            k: flavor[k] for k in ("id", "name", "vcpus", "ram", "disk")
        }


def test_flavor_set_description(openstack: Cli, flavor):
    """A flavor's description is the one thing that changes after it is made (2.55)."""
    openstack.run("flavor", "set", "--description", "B.2.2.1 tiles and vectors", flavor["id"])
    assert openstack.json("flavor", "show", flavor["id"])["description"] == "B.2.2.1 tiles and vectors"


def test_b_2_2_4_flavor_list(openstack: Cli, flavor, sdk):
    """B.2.2.4: every flavor with its id, name, CPUs, RAM and disk."""
    rows = {r["ID"]: r for r in openstack.json("flavor", "list")}
    row = rows[flavor["id"]]
    assert (row["Name"], row["VCPUs"], row["RAM"], row["Disk"]) == (flavor["name"], 2, 1024, 10)
    assert "m1.tiny" in [r["Name"] for r in rows.values()]
    # Nova's two lists: ids and names; the detailed one with the sizes.
    plain = sdk.compute.get("/flavors").json()["flavors"]
    assert all(set(f) == {"id", "name", "links"} for f in plain), plain[0]
    detail = {f["id"]: f for f in sdk.compute.get("/flavors/detail").json()["flavors"]}
    assert (detail[flavor["id"]]["vcpus"], detail[flavor["id"]]["ram"]) == (2, 1024)


def test_b_2_2_2_flavor_delete(openstack: Cli, flavor, member_sdk):
    """B.2.2.2 (admin): the flavor is gone from show and list."""
    refused = member_sdk.compute.delete(f"/flavors/{flavor['id']}", raise_exc=False)
    assert refused.status_code == 403, refused.text
    openstack.run("flavor", "delete", flavor["id"])
    assert flavor["id"] not in [r["ID"] for r in openstack.json("flavor", "list")]
    openstack.fails("flavor", "show", flavor["id"])


# -- B.1.2, B.1.3.1 --------------------------------------------------------------


def test_b_1_3_1_limits_and_quotas(openstack: Cli):
    """B.1.3.1: total and used RAM and CPUs (and instances) of the project; admins
    set quotas."""
    # `limits show --absolute` and plain `quota show` ask compute, volume and network.
    limits = {row["Name"]: row["Value"] for row in openstack.json("limits", "show", "--absolute")}
    for key in ("max_total_ram_size", "total_ram_used", "max_total_cores", "total_cores_used"):
        assert isinstance(limits.get(key), int) and limits[key] >= 0, (key, limits)
    assert limits["max_total_instances"] >= 0, limits
    assert "max_total_volumes" in limits, limits
    project = openstack.json("project", "create", unique("quota"))["id"]
    try:
        openstack.run("quota", "set", "--instances", "5", "--cores", "7", "--ram", "2048", "--volumes", "3", "--networks", "4", project)
        shown = {row["Resource"]: row["Limit"] for row in openstack.json("quota", "show", project)}
        assert (shown["instances"], shown["cores"], shown["ram"], shown["volumes"], shown["networks"]) == (5, 7, 2048, 3, 4), shown
    finally:
        openstack.run("project", "delete", project)


def test_b_1_3_1_hypervisors_and_capacity(openstack: Cli, guest):
    """B.1.3.1: the data centre's total and used RAM and CPUs."""
    hypervisors = openstack.json("hypervisor", "list")
    names = {h["Hypervisor Hostname"] for h in hypervisors}
    assert {"node-1", "node-2"} <= names
    stats = openstack.json("hypervisor", "stats", "show")
    flat = {row["Field"]: row["Value"] for row in stats} if isinstance(stats, list) else stats
    assert int(flat["count"]) >= 2
    assert int(flat["memory_mb"]) > 0 and int(flat["vcpus"]) >= 2
    # The guest (m1.tiny, one vCPU) runs: something is used.
    assert 0 < int(flat["memory_mb_used"]) <= int(flat["memory_mb"]), flat
    assert 0 < int(flat["vcpus_used"]), flat


def test_b_1_2_availability_zones(openstack: Cli):
    """B.1.2: availability zones, with their hosts for an administrator."""
    zones = openstack.json("availability", "zone", "list", "--compute", "--long")
    assert "nova" in {z["Zone Name"] for z in zones}
    hosts = {z["Host Name"] for z in zones if z["Zone Name"] == "nova"}
    assert {"node-1", "node-2"} <= hosts, zones


# -- beyond the standard ---------------------------------------------------------


def test_keypair_create_show_delete(openstack: Cli):
    name = unique("key")
    created = openstack.run("keypair", "create", name).stdout
    assert "PRIVATE KEY" in created
    assert openstack.json("keypair", "show", name)["name"] == name
    openstack.run("keypair", "delete", name)


def test_server_group_anti_affinity_spreads_servers(openstack: Cli, sdk, image: str):
    name = unique("group")
    group = openstack.json("server", "group", "create", "--policy", "anti-affinity", name)
    assert group.get("policy", group.get("policies")) in ("anti-affinity", ["anti-affinity"]), group
    servers = []
    for i in range(2):
        created = openstack.json(
            "server", "create", "--flavor", "m1.tiny", "--image", image, "--nic", "none",
            "--hint", f"group={group['id']}", unique(f"spread{i}"),
        )  # fmt: skip
        servers.append(created["id"])
    hosts = {wait_server(sdk, s, "ACTIVE").compute_host for s in servers}
    assert len(hosts) == 2, hosts
    shown = openstack.json("server", "group", "show", name)
    assert sorted(shown["members"]) == sorted(servers)
    assert name in [g["Name"] for g in openstack.json("server", "group", "list")]
    openstack.run("server", "delete", *servers)
    for s in servers:
        wait_server_gone(sdk, s)
    openstack.run("server", "group", "delete", name)
    assert name not in [g["Name"] for g in openstack.json("server", "group", "list")]


def test_server_event_list_records_each_change(openstack: Cli, sdk, image: str, routed):
    server = sdk.compute.create_server(
        name=unique("evented"), flavor_id="1", image_id=image, networks=[{"uuid": routed["network"]}]
    )
    wait_server(sdk, server.id, "ACTIVE")
    openstack.run("server", "stop", server.id)
    wait_server(sdk, server.id, "SHUTOFF")
    events = openstack.json("server", "event", "list", server.id)
    assert [e["Action"] for e in events] == ["stop", "create"], events
    shown = openstack.json("server", "event", "show", server.id, events[1]["Request ID"])
    assert shown["action"] == "create"
    sdk.compute.delete_server(server.id)
    wait_server_gone(sdk, server.id)


def test_b_1_3_1_usage_list_and_show(openstack: Cli, guest):
    usages = openstack.json("usage", "list", "--start", "2026-01-01", "--end", "2999-01-01")
    assert usages and all("CPU Hours" in u for u in usages), usages
    project = openstack.json("server", "show", guest["id"])["project_id"]
    shown = openstack.json("usage", "show", "--project", project, "--start", "2026-01-01", "--end", "2999-01-01")
    assert shown["Servers"] and "CPU Hours" in shown, shown


# -- B.2.1.2 last: it deletes the module's server ----------------------------------


def test_b_2_1_2_server_delete(openstack: Cli, server, sdk):
    """B.2.1.2: the server goes; show answers 404 and the list no longer has it."""
    openstack.run("server", "delete", server["id"])
    wait_server_gone(sdk, server["id"])
    assert "No Server found" in openstack.fails("server", "show", server["id"])
    assert server["id"] not in [r["ID"] for r in openstack.json("server", "list")]
