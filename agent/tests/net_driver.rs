//! Privileged: the real network driver (`yunji_agent::net::driver::RealNetwork`) applying
//! whole node specs in a node namespace. The node reaches an underlay namespace over a
//! veth (10.99.0.1 ↔ 10.99.0.2, where a lone VXLAN device with 10.11.0.99 stands in for
//! a VM on another node); each port's tap is a veth whose other end, with the port's
//! MAC, sits in a guest namespace. The driver runs on a thread that entered the node
//! namespace; the test checks links, FDB peers, nft tables and DHCP sockets with
//! `ip -j`/`bridge -j`/`nft -j`, and that packets really flow (DHCP, pings over the
//! bridge and the overlay) or really do not (a ping the security group denies).
//! Run as root: `cargo test -p yunji-agent --test net_driver -- --ignored --test-threads=1`.

mod common;

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use yunji_agent::net::tap_name;
use yunji_common::agent_api::{
    NetworkSpec, NodeNetworkSpec, PortAddressSpec, PortSpec, SecurityGroupSpec, SecurityRuleSpec,
    SubnetSpec,
};
use yunji_common::execute::{ExecError, execute};

use common::{COMMAND_TIMEOUT, NodeThread, ip, json, run};

const NODE_UNDERLAY: &str = "10.99.0.1";
const PEER_UNDERLAY: &str = "10.99.0.2";
/// A peer no namespace answers for.
const ABSENT_PEER: &str = "10.99.0.3";
const NET_A: u32 = 101;
const NET_B: u32 = 102;
/// The VM on the "other node": the underlay namespace's VXLAN device on network A.
const REMOTE_VM: &str = "10.11.0.99";

/// A port of the rig: id, network, MAC, fixed IP, guest namespace suffix.
struct TestPort {
    id: &'static str,
    network: &'static str,
    mac: &'static str,
    ip: &'static str,
    guest: &'static str,
}

const P1: TestPort = TestPort {
    id: "a1000000-0000-4000-8000-000000000001",
    network: "net-a",
    mac: "fa:16:3e:0a:00:01",
    ip: "10.11.0.11",
    guest: "g1",
};
const P2: TestPort = TestPort {
    id: "a2000000-0000-4000-8000-000000000002",
    network: "net-a",
    mac: "fa:16:3e:0a:00:02",
    ip: "10.11.0.12",
    guest: "g2",
};
const P3: TestPort = TestPort {
    id: "b3000000-0000-4000-8000-000000000003",
    network: "net-b",
    mac: "fa:16:3e:0b:00:03",
    ip: "10.12.0.13",
    guest: "g3",
};
/// Its tap appears only after the first apply, as when QEMU starts late.
const P4: TestPort = TestPort {
    id: "a4000000-0000-4000-8000-000000000004",
    network: "net-a",
    mac: "fa:16:3e:0a:00:04",
    ip: "10.11.0.14",
    guest: "g4",
};

/// Configures the address udhcpc was given and records it.
const LEASE_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
    busybox ip addr flush dev "$interface"
    busybox ip addr add "$ip/$mask" dev "$interface"
    echo "$ip" > "$YJ_LEASE_FILE"
    ;;
esac
exit 0
"#;

/// The namespaces and the driver thread. Dropping it, even while a failed assertion
/// unwinds, stops the driver and deletes every namespace, which removes their links and
/// nft tables.
struct Rig {
    prefix: String,
    namespaces: Vec<String>,
    node: Option<NodeThread>,
    dir: tempfile::TempDir,
}

impl Drop for Rig {
    #[allow(clippy::disallowed_methods)] // Drop cannot await execute(); cleanup runs ip directly
    fn drop(&mut self) {
        self.node.take();
        for namespace in self.namespaces.iter().rev() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", namespace])
                .status();
        }
    }
}

impl Rig {
    async fn new() -> Rig {
        let mut rig = Rig {
            prefix: format!("yj-nd{}", std::process::id()),
            namespaces: Vec::new(),
            node: None,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        let node = rig.add_namespace("node").await;
        let underlay = rig.add_namespace("ul").await;
        ip(&[
            "-n", &node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &underlay,
        ])
        .await;
        ip(&[
            "-n",
            &node,
            "addr",
            "add",
            &format!("{NODE_UNDERLAY}/24"),
            "dev",
            "eth0",
        ])
        .await;
        ip(&["-n", &node, "link", "set", "eth0", "up"]).await;
        ip(&[
            "-n",
            &underlay,
            "addr",
            "add",
            &format!("{PEER_UNDERLAY}/24"),
            "dev",
            "eth0",
        ])
        .await;
        ip(&["-n", &underlay, "link", "set", "eth0", "up"]).await;
        // The peer stays silent unless pinged: IPv6 router solicitations from it would
        // re-teach the node's VXLAN device (learning is on) after a peer is removed.
        run(
            "ip",
            &[
                "netns",
                "exec",
                &underlay,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )
        .await;
        // The "other node" of network A: a VXLAN device sending back to this node.
        ip(&[
            "-n",
            &underlay,
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            &NET_A.to_string(),
            "local",
            PEER_UNDERLAY,
            "remote",
            NODE_UNDERLAY,
            "dstport",
            "4789",
        ])
        .await;
        ip(&[
            "-n",
            &underlay,
            "addr",
            "add",
            &format!("{REMOTE_VM}/24"),
            "dev",
            "vx0",
        ])
        .await;
        ip(&["-n", &underlay, "link", "set", "vx0", "up"]).await;
        // Nor does it ever probe P1's MAC on its own (as it would some seconds after a
        // ping), which would re-teach the node the peer this test later removes.
        ip(&[
            "-n",
            &underlay,
            "neigh",
            "add",
            P1.ip,
            "lladdr",
            P1.mac,
            "dev",
            "vx0",
            "nud",
            "permanent",
        ])
        .await;
        for port in [&P1, &P2, &P3] {
            rig.add_guest(port).await;
        }
        let script = rig.dir.path().join("lease.sh");
        std::fs::write(&script, LEASE_SCRIPT).expect("write the udhcpc script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("make the udhcpc script executable");
        rig.node = Some(NodeThread::start(&node));
        rig
    }

    fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn node(&self) -> &NodeThread {
        self.node.as_ref().expect("the node thread")
    }

    async fn add_namespace(&mut self, short: &str) -> String {
        let name = self.ns(short);
        // Recorded first, so that a half-made namespace is still removed.
        self.namespaces.push(name.clone());
        ip(&["netns", "add", &name]).await;
        ip(&["-n", &name, "link", "set", "lo", "up"]).await;
        name
    }

    /// A guest namespace whose `eth0` (the port's MAC) is the far end of the port's tap.
    async fn add_guest(&mut self, port: &TestPort) {
        let guest = self.add_namespace(port.guest).await;
        let node = self.ns("node");
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            &tap_name(port.id),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            port.mac,
            "netns",
            &guest,
        ])
        .await;
        ip(&["-n", &guest, "link", "set", "eth0", "up"]).await;
    }

    /// Runs udhcpc once in the guest; the address it was given and configured.
    async fn udhcpc(&self, port: &TestPort, run: &str) -> Result<String, ExecError> {
        let lease_file = self.dir.path().join(format!("{}-{run}.lease", port.guest));
        let script = self.dir.path().join("lease.sh");
        execute(
            "ip",
            [
                "netns".to_string(),
                "exec".to_string(),
                self.ns(port.guest),
                "env".to_string(),
                format!("YJ_LEASE_FILE={}", lease_file.display()),
                "busybox".to_string(),
                "udhcpc".to_string(),
                "-f".to_string(),
                "-n".to_string(),
                "-q".to_string(),
                "-i".to_string(),
                "eth0".to_string(),
                "-t".to_string(),
                "5".to_string(),
                "-T".to_string(),
                "1".to_string(),
                "-s".to_string(),
                script.display().to_string(),
            ],
            COMMAND_TIMEOUT,
        )
        .await?;
        let ip = std::fs::read_to_string(&lease_file)
            .unwrap_or_else(|e| panic!("udhcpc succeeded but wrote no {lease_file:?}: {e}"));
        Ok(ip.trim().to_string())
    }

    /// Whether `from` gets an echo reply from `to`: up to three single pings, so that
    /// the first ARP exchange may be lost.
    async fn reaches(&self, from: &TestPort, to: &str) -> bool {
        let ns = self.ns(from.guest);
        for _ in 0..3 {
            let ping = execute(
                "ip",
                [
                    "netns", "exec", &ns, "busybox", "ping", "-c", "1", "-W", "1", to,
                ],
                COMMAND_TIMEOUT,
            )
            .await;
            if ping.is_ok() {
                return true;
            }
        }
        false
    }

    /// `ip -j link show` in the node namespace.
    async fn node_links(&self) -> Vec<Value> {
        json(&ip(&["-n", &self.ns("node"), "-j", "link", "show"]).await)
    }

    /// The bridge `tap` is enslaved to, if any.
    async fn master_of(&self, tap: &str) -> Option<String> {
        self.node_links()
            .await
            .iter()
            .find(|link| link["ifname"] == tap)
            .unwrap_or_else(|| panic!("no link {tap} in the node namespace"))["master"]
            .as_str()
            .map(str::to_string)
    }

    /// The yunji bridges and VXLAN devices in the node namespace, sorted.
    async fn yunji_links(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .node_links()
            .await
            .iter()
            .filter_map(|link| link["ifname"].as_str())
            .filter(|name| name.starts_with("ybr-") || name.starts_with("yvx-"))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// The remotes of the flood (all-zeros) entries of a VXLAN device, sorted.
    async fn flood_remotes(&self, vni: u32) -> Vec<String> {
        let output = run(
            "bridge",
            &[
                "-n",
                &self.ns("node"),
                "-j",
                "fdb",
                "show",
                "dev",
                &format!("yvx-{vni}"),
            ],
        )
        .await;
        let mut remotes: Vec<String> = json(&output)
            .iter()
            .filter(|entry| entry["mac"] == "00:00:00:00:00:00")
            .filter_map(|entry| entry["dst"].as_str().map(str::to_string))
            .collect();
        remotes.sort();
        remotes
    }

    /// `family name` of every nft table in the node namespace, sorted.
    async fn nft_tables(&self) -> Vec<String> {
        let output = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns("node"),
                "nft",
                "-j",
                "list",
                "tables",
            ],
        )
        .await;
        let listing: Value = serde_json::from_slice(&output.stdout).expect("nft -j prints JSON");
        let mut tables: Vec<String> = listing["nftables"]
            .as_array()
            .expect("an nftables array")
            .iter()
            .filter_map(|item| item.get("table"))
            .map(|table| format!("{} {}", table["family"], table["name"]).replace('"', ""))
            .collect();
        tables.sort();
        tables
    }

    /// How many packet sockets are open in the node namespace: one per DHCP server.
    async fn packet_sockets(&self) -> usize {
        let output = run(
            "ip",
            &["netns", "exec", &self.ns("node"), "cat", "/proc/net/packet"],
        )
        .await;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip(1)
            .filter(|line| !line.trim().is_empty())
            .count()
    }

    /// A bridge-netfilter sysctl as the node namespace sees it.
    async fn node_sysctl(&self, name: &str) -> String {
        let output = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns("node"),
                "cat",
                &format!("/proc/sys/net/bridge/{name}"),
            ],
        )
        .await;
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

fn network(id: &str, vni: u32, prefix: &str, peers: &[&str]) -> NetworkSpec {
    NetworkSpec {
        id: id.to_string(),
        vni,
        mtu: 1450,
        subnets: vec![SubnetSpec {
            id: format!("{id}-subnet"),
            cidr: format!("{prefix}.0/24"),
            gateway_ip: Some(format!("{prefix}.1")),
            dns: vec![],
            host_routes: vec![],
            enable_dhcp: true,
        }],
        peers: peers.iter().map(|p| p.to_string()).collect(),
    }
}

fn port(port: &TestPort, group: &str) -> PortSpec {
    PortSpec {
        id: port.id.to_string(),
        network_id: port.network.to_string(),
        server_id: Some(format!("server-{}", port.guest)),
        mac: port.mac.to_string(),
        fixed_ips: vec![PortAddressSpec {
            subnet_id: format!("{}-subnet", port.network),
            ip_address: port.ip.to_string(),
        }],
        port_security_enabled: true,
        allowed_address_pairs: vec![],
        security_group_ids: vec![group.to_string()],
    }
}

fn rule(direction: &str, protocol: Option<&str>, remote: Option<&str>) -> SecurityRuleSpec {
    SecurityRuleSpec {
        direction: direction.to_string(),
        ethertype: "IPv4".to_string(),
        protocol: protocol.map(str::to_string),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: remote.map(str::to_string),
        remote_group_id: None,
    }
}

/// Network A (P1, P2, P4) and B (P3). Group `sg-a` lets pings in only from P1;
/// `sg-b` lets nothing in.
fn spec(generation: u64, with_net_b: bool, net_a_peers: &[&str]) -> NodeNetworkSpec {
    let mut networks = vec![network("net-a", NET_A, "10.11.0", net_a_peers)];
    let mut ports = vec![port(&P1, "sg-a"), port(&P2, "sg-a"), port(&P4, "sg-a")];
    if with_net_b {
        networks.push(network("net-b", NET_B, "10.12.0", &[PEER_UNDERLAY]));
        ports.push(port(&P3, "sg-b"));
    }
    NodeNetworkSpec {
        generation,
        networks,
        ports,
        security_groups: vec![
            SecurityGroupSpec {
                id: "sg-a".to_string(),
                rules: vec![
                    rule("egress", None, None),
                    rule("ingress", Some("icmp"), Some(&format!("{}/32", P1.ip))),
                ],
                members: vec![P1.ip.to_string(), P2.ip.to_string(), P4.ip.to_string()],
            },
            SecurityGroupSpec {
                id: "sg-b".to_string(),
                rules: vec![rule("egress", None, None)],
                members: vec![P3.ip.to_string()],
            },
        ],
        underlay: Some(NODE_UNDERLAY.to_string()),
        ..NodeNetworkSpec::default()
    }
}

#[tokio::test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
async fn a_node_spec_becomes_bridges_vxlan_dhcp_and_firewall_and_goes_away_again() {
    let mut rig = Rig::new().await;
    let prefix = rig.prefix.clone();
    let tap = |p: &TestPort| tap_name(p.id);

    // First spec: both networks; P4's tap does not exist yet and is skipped.
    let applied = rig
        .node()
        .apply(spec(10, true, &[PEER_UNDERLAY, ABSENT_PEER]))
        .await
        .expect("the first spec applies");
    let links_first = rig.yunji_links().await;
    let peers_a_first = rig.flood_remotes(NET_A).await;
    let peers_b_first = rig.flood_remotes(NET_B).await;
    let masters_first = [
        rig.master_of(&tap(&P1)).await,
        rig.master_of(&tap(&P2)).await,
        rig.master_of(&tap(&P3)).await,
    ];
    let tables_first = rig.nft_tables().await;
    let bridge_nf = [
        rig.node_sysctl("bridge-nf-call-iptables").await,
        rig.node_sysctl("bridge-nf-call-ip6tables").await,
    ];
    let dhcp_sockets_first = rig.packet_sockets().await;
    let lease_1 = rig
        .udhcpc(&P1, "first")
        .await
        .expect("guest 1 gets a lease");
    let lease_2 = rig
        .udhcpc(&P2, "first")
        .await
        .expect("guest 2 gets a lease");
    let lease_3 = rig
        .udhcpc(&P3, "first")
        .await
        .expect("guest 3 gets a lease");
    let p1_reaches_p2 = rig.reaches(&P1, P2.ip).await;
    let p2_reaches_p1 = rig.reaches(&P2, P1.ip).await;
    let p1_reaches_remote = rig.reaches(&P1, REMOTE_VM).await;
    let older = rig.node().apply(spec(9, true, &[])).await;

    // QEMU "starts" P4: its tap appears and the VMM attaches it.
    rig.add_guest(&P4).await;
    let attached = rig.node().attach_port(P4.id).await.expect("attach_port");
    let unknown = rig
        .node()
        .attach_port("ffffffff-0000-4000-8000-00000000000f")
        .await
        .expect("attach_port of a port the node does not carry");
    let master_p4 = rig.master_of(&tap(&P4)).await;
    let lease_4 = rig
        .udhcpc(&P4, "first")
        .await
        .expect("guest 4 gets a lease");

    // Second spec: network B gone, network A's only peer is the absent one.
    rig.node()
        .apply(spec(11, false, &[ABSENT_PEER]))
        .await
        .expect("the second spec applies");
    let links_second = rig.yunji_links().await;
    let peers_a_second = rig.flood_remotes(NET_A).await;
    let master_p3_second = rig.master_of(&tap(&P3)).await;
    let dhcp_sockets_second = rig.packet_sockets().await;
    let lease_1_again = rig
        .udhcpc(&P1, "second")
        .await
        .expect("guest 1 still gets a lease");
    let lease_3_again = rig.udhcpc(&P3, "second").await;
    let p1_reaches_remote_second = rig.reaches(&P1, REMOTE_VM).await;

    rig.node().remove_all().await.expect("remove_all");
    let links_removed = rig.yunji_links().await;
    let tables_removed = rig.nft_tables().await;
    let dhcp_sockets_removed = rig.packet_sockets().await;
    let master_p1_removed = rig.master_of(&tap(&P1)).await;
    drop(rig);
    let namespaces_left =
        String::from_utf8_lossy(&ip(&["netns", "list"]).await.stdout).into_owned();

    assert_eq!(applied.generation, 10);
    assert_eq!(links_first, ["ybr-101", "ybr-102", "yvx-101", "yvx-102"]);
    assert_eq!(peers_a_first, [PEER_UNDERLAY, ABSENT_PEER]);
    assert_eq!(peers_b_first, [PEER_UNDERLAY]);
    assert_eq!(
        masters_first,
        [
            Some("ybr-101".to_string()),
            Some("ybr-101".to_string()),
            Some("ybr-102".to_string())
        ]
    );
    assert_eq!(tables_first, ["bridge yunji", "inet yunji"]);
    assert_eq!(bridge_nf, ["1", "1"]);
    assert_eq!(dhcp_sockets_first, 2, "one DHCP server per subnet");
    assert_eq!([lease_1, lease_2, lease_3], [P1.ip, P2.ip, P3.ip]);
    assert!(p1_reaches_p2, "sg-a lets P1's pings in");
    assert!(!p2_reaches_p1, "sg-a lets pings in from P1 only");
    assert!(
        p1_reaches_remote,
        "P1 reaches the peer's VM over VXLAN through the flood list"
    );
    assert_eq!(older.expect_err("an older generation").code, "state");
    assert!(attached, "attach_port attaches a carried port's tap");
    assert!(
        !unknown,
        "a port the node does not carry is left for a later apply"
    );
    assert_eq!(master_p4.as_deref(), Some("ybr-101"));
    assert_eq!(lease_4, P4.ip);
    assert_eq!(links_second, ["ybr-101", "yvx-101"]);
    assert_eq!(peers_a_second, [ABSENT_PEER]);
    assert_eq!(master_p3_second, None, "P3's tap is released, not deleted");
    assert_eq!(dhcp_sockets_second, 1, "network B's DHCP server stopped");
    assert_eq!(lease_1_again, P1.ip);
    assert!(
        lease_3_again.is_err(),
        "P3 gets no lease once its network is gone"
    );
    assert!(
        !p1_reaches_remote_second,
        "a removed peer no longer receives the network's frames"
    );
    assert!(links_removed.is_empty(), "links left: {links_removed:?}");
    assert!(tables_removed.is_empty(), "tables left: {tables_removed:?}");
    assert_eq!(dhcp_sockets_removed, 0);
    assert_eq!(master_p1_removed, None);
    assert!(
        !namespaces_left.contains(&prefix),
        "namespaces left behind: {namespaces_left}"
    );
}
