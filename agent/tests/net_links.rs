//! Privileged: tenant-network links (`yunji_agent::net::links`) on a two-node rig made of
//! network namespaces. An underlay namespace holds a bridge; two node namespaces reach it
//! through veths (10.99.0.1/24, 10.99.0.2/24); per node and network a guest namespace
//! hangs off a veth whose node end `vm-<vni>` stands in for a VM's tap. The module runs
//! inside each node namespace on a thread that entered it; the test checks with ping
//! that frames really cross (or really do not cross) the VXLAN overlay.

use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use yunji_agent::net::links::Links;
use yunji_common::execute::{ExecError, Output, execute};

const MTU: u32 = 1450;
const NODE1_UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const NODE2_UNDERLAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
/// Both networks use 192.168.50.0/24; each guest has its own host number so that a ping
/// names exactly one guest.
const GUEST1_NET1: &str = "192.168.50.1";
const GUEST2_NET1: &str = "192.168.50.2";
const GUEST1_NET2: &str = "192.168.50.11";
const GUEST2_NET2: &str = "192.168.50.12";
const NET1: u32 = 1001;
const NET2: u32 = 1002;

/// Deletes the namespaces it lists when dropped, also when the test panics; deleting a
/// namespace deletes every link in it (and a veth's peer with it).
struct NamespaceGuard {
    names: Vec<String>,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            eprintln!("cannot build a runtime to delete {:?}", self.names);
            return;
        };
        for name in &self.names {
            let deleted = runtime.block_on(execute(
                "ip",
                ["netns", "delete", name.as_str()],
                Duration::from_secs(10),
            ));
            if let Err(error) = deleted {
                eprintln!("cleanup of namespace {name}: {error}");
            }
        }
    }
}

/// The two-node rig. Node `n` (1 or 2) has guests `g<n>a` on network 1 and `g<n>b` on
/// network 2.
struct Rig {
    prefix: String,
    runtime: tokio::runtime::Runtime,
    // Last field: dropped after the runtime, with its own.
    _namespaces: NamespaceGuard,
}

impl Rig {
    fn build(test: &str) -> Rig {
        let prefix = format!("yj-lk{}-{test}", std::process::id());
        let names = ["ul", "n1", "n2", "g1a", "g2a", "g1b", "g2b"]
            .iter()
            .map(|short| format!("{prefix}-{short}"))
            .collect();
        let rig = Rig {
            prefix,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test runtime"),
            _namespaces: NamespaceGuard { names },
        };
        for name in &rig._namespaces.names {
            rig.ip(&["netns", "add", name]);
        }
        let underlay = rig.ns("ul");
        rig.ip(&["-n", &underlay, "link", "add", "br0", "type", "bridge"]);
        rig.ip(&["-n", &underlay, "link", "set", "br0", "up"]);
        for (node, address) in [("n1", "10.99.0.1/24"), ("n2", "10.99.0.2/24")] {
            let node_ns = rig.ns(node);
            rig.ip(&[
                "-n", &underlay, "link", "add", node, "type", "veth", "peer", "name", "eth0",
                "netns", &node_ns,
            ]);
            rig.ip(&["-n", &underlay, "link", "set", node, "master", "br0", "up"]);
            rig.ip(&["-n", &node_ns, "addr", "add", address, "dev", "eth0"]);
            rig.ip(&["-n", &node_ns, "link", "set", "eth0", "up"]);
            rig.ip(&["-n", &node_ns, "link", "set", "lo", "up"]);
        }
        for (node, guest, vni, address) in [
            ("n1", "g1a", NET1, GUEST1_NET1),
            ("n2", "g2a", NET1, GUEST2_NET1),
            ("n1", "g1b", NET2, GUEST1_NET2),
            ("n2", "g2b", NET2, GUEST2_NET2),
        ] {
            let guest_ns = rig.ns(guest);
            let tap = tap_name(vni);
            rig.ip(&[
                "-n",
                &rig.ns(node),
                "link",
                "add",
                &tap,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &guest_ns,
            ]);
            // Guests stay silent unless a test pings: IPv6 router solicitations and the
            // like would otherwise cross between two nodes' peer syncs and re-teach the
            // VXLAN devices (learning is on) a MAC the first sync just removed.
            rig.run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &guest_ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=1",
                ],
            )
            .unwrap_or_else(|error| panic!("rig setup failed: {error}"));
            let cidr = format!("{address}/24");
            rig.ip(&["-n", &guest_ns, "addr", "add", &cidr, "dev", "eth0"]);
            rig.ip(&["-n", &guest_ns, "link", "set", "eth0", "up"]);
            rig.ip(&["-n", &guest_ns, "link", "set", "lo", "up"]);
        }
        rig
    }

    fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, ExecError> {
        self.runtime
            .block_on(execute(program, args, Duration::from_secs(20)))
    }

    fn ip(&self, args: &[&str]) -> Output {
        self.run("ip", args)
            .unwrap_or_else(|error| panic!("rig setup failed: {error}"))
    }

    /// `ip -j …` in a namespace, parsed.
    fn ip_json(&self, short: &str, args: &[&str]) -> serde_json::Value {
        let ns = self.ns(short);
        let mut full = vec!["-n", ns.as_str(), "-j"];
        full.extend_from_slice(args);
        serde_json::from_slice(&self.ip(&full).stdout).expect("ip -j prints JSON")
    }

    /// Whether the guest gets an answer from `address`: up to three single pings, so
    /// the first ARP exchange may be lost.
    fn reaches(&self, guest: &str, address: &str) -> bool {
        let ns = self.ns(guest);
        (0..3).any(|_| {
            self.run(
                "ip",
                &[
                    "netns", "exec", &ns, "busybox", "ping", "-c", "1", "-W", "1", address,
                ],
            )
            .is_ok()
        })
    }

    /// The remotes of the all-zeros (flood) entries on a node's VXLAN device, as the
    /// `bridge` tool sees them.
    fn flood_remotes(&self, node: &str, vni: u32) -> Vec<String> {
        let ns = self.ns(node);
        let device = format!("yvx-{vni}");
        let output = self
            .run("bridge", &["-n", &ns, "-j", "fdb", "show", "dev", &device])
            .unwrap_or_else(|error| panic!("bridge fdb show: {error}"));
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&output.stdout).expect("bridge -j prints JSON");
        let mut remotes: Vec<String> = entries
            .iter()
            .filter(|entry| entry["mac"] == "00:00:00:00:00:00")
            .filter_map(|entry| entry["dst"].as_str().map(str::to_string))
            .collect();
        remotes.sort();
        remotes
    }

    /// Runs the module on a thread inside the node's namespace.
    fn on_node<T, F, Fut>(&self, node: &str, work: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Links) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let path = format!("/var/run/netns/{}", self.ns(node));
        std::thread::spawn(move || {
            let namespace = std::fs::File::open(&path).expect("open the namespace");
            move_into_link_name_space(namespace.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns into the node namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("node runtime");
            runtime.block_on(async move {
                let links = Links::new().expect("netlink in the node namespace");
                work(links).await
            })
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// What the agent does for a network it carries: links, peers, the VM's tap.
    fn carry(&self, node: &str, vni: u32) {
        let (local, peer) = underlay_of(node);
        self.on_node(node, move |links| async move {
            links
                .ensure_network(vni, MTU, local)
                .await
                .expect("ensure_network");
            links.sync_peers(vni, &[peer]).await.expect("sync_peers");
            links.attach(&tap_name(vni), vni).await.expect("attach");
        });
    }

    fn sync_peers(&self, node: &str, vni: u32, peers: Vec<Ipv4Addr>) {
        self.on_node(node, move |links| async move {
            links.sync_peers(vni, &peers).await.expect("sync_peers");
        });
    }
}

fn tap_name(vni: u32) -> String {
    format!("vm-{vni}")
}

/// A node's own underlay address and its peer's.
fn underlay_of(node: &str) -> (Ipv4Addr, Ipv4Addr) {
    match node {
        "n1" => (NODE1_UNDERLAY, NODE2_UNDERLAY),
        _ => (NODE2_UNDERLAY, NODE1_UNDERLAY),
    }
}

/// The fields of a link that idempotent calls must leave as they were.
fn link_identity(rig: &Rig, node: &str, device: &str) -> (u64, u64, Option<String>) {
    let link = &rig.ip_json(node, &["link", "show", "dev", device])[0];
    (
        link["ifindex"].as_u64().expect("ifindex"),
        link["mtu"].as_u64().expect("mtu"),
        link["master"].as_str().map(str::to_string),
    )
}

fn yunji_link_names(rig: &Rig, node: &str) -> Vec<String> {
    rig.ip_json(node, &["link", "show"])
        .as_array()
        .expect("a list of links")
        .iter()
        .filter_map(|link| link["ifname"].as_str())
        .filter(|name| name.starts_with("ybr-") || name.starts_with("yvx-"))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn guests_of_a_network_reach_each_other_across_nodes_and_not_another_network() {
    let rig = Rig::build("iso");
    for node in ["n1", "n2"] {
        rig.carry(node, NET1);
        rig.carry(node, NET2);
    }

    assert_eq!(rig.flood_remotes("n1", NET1), vec!["10.99.0.2"]);
    assert_eq!(rig.flood_remotes("n2", NET2), vec!["10.99.0.1"]);
    assert!(rig.reaches("g1a", GUEST2_NET1), "network 1 across nodes");
    assert!(rig.reaches("g1b", GUEST2_NET2), "network 2 across nodes");
    assert!(
        !rig.reaches("g1b", GUEST1_NET1),
        "network 2 reached network 1 on its node"
    );
    assert!(
        !rig.reaches("g1b", GUEST2_NET1),
        "network 2 reached network 1 across nodes"
    );
    assert!(
        !rig.reaches("g1a", GUEST2_NET2),
        "network 1 reached network 2 across nodes"
    );
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn emptying_the_peer_list_cuts_the_network_across_nodes_and_restoring_it_heals() {
    let rig = Rig::build("peers");
    for node in ["n1", "n2"] {
        rig.carry(node, NET1);
        rig.carry(node, NET2);
    }
    assert!(
        rig.reaches("g1a", GUEST2_NET1),
        "network 1 across nodes before"
    );

    for node in ["n1", "n2"] {
        rig.sync_peers(node, NET1, vec![]);
    }

    assert!(rig.flood_remotes("n1", NET1).is_empty());
    assert!(
        !rig.reaches("g1a", GUEST2_NET1),
        "network 1 still crosses without peers"
    );
    assert!(
        rig.reaches("g1b", GUEST2_NET2),
        "network 2 lost its peers too"
    );

    for node in ["n1", "n2"] {
        let (_, peer) = underlay_of(node);
        rig.sync_peers(node, NET1, vec![peer]);
    }

    assert!(
        rig.reaches("g1a", GUEST2_NET1),
        "network 1 across nodes after re-adding"
    );
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn ensuring_twice_changes_nothing_and_a_wrong_vxlan_device_is_recreated() {
    let rig = Rig::build("idem");
    // A leftover with the right name but another VNI.
    rig.ip(&[
        "-n",
        &rig.ns("n1"),
        "link",
        "add",
        "yvx-1001",
        "type",
        "vxlan",
        "id",
        "7",
        "local",
        "10.99.0.1",
        "dstport",
        "4789",
    ]);
    for node in ["n1", "n2"] {
        rig.carry(node, NET1);
    }
    let vxlan = &rig.ip_json("n1", &["-d", "link", "show", "dev", "yvx-1001"])[0];
    assert_eq!(vxlan["linkinfo"]["info_data"]["id"], 1001);
    assert_eq!(vxlan["linkinfo"]["info_data"]["local"], "10.99.0.1");
    assert_eq!(vxlan["linkinfo"]["info_data"]["port"], 4789);
    assert_eq!(vxlan["master"], "ybr-1001");
    let before: Vec<_> = ["ybr-1001", "yvx-1001", "vm-1001"]
        .iter()
        .map(|device| link_identity(&rig, "n1", device))
        .collect();

    rig.carry("n1", NET1);

    let after: Vec<_> = ["ybr-1001", "yvx-1001", "vm-1001"]
        .iter()
        .map(|device| link_identity(&rig, "n1", device))
        .collect();
    assert_eq!(before, after);
    assert_eq!(before[0].1, u64::from(MTU));
    assert_eq!(before[2].2.as_deref(), Some("ybr-1001"));
    assert_eq!(rig.flood_remotes("n1", NET1), vec!["10.99.0.2"]);
    for device in ["ybr-1001", "yvx-1001", "vm-1001"] {
        let link = &rig.ip_json("n1", &["addr", "show", "dev", device])[0];
        assert_eq!(
            link["addr_info"],
            serde_json::json!([]),
            "{device} has addresses"
        );
    }
    assert!(rig.reaches("g1a", GUEST2_NET1), "network 1 across nodes");
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn removing_networks_leaves_no_yunji_links_and_releases_the_taps() {
    let rig = Rig::build("rm");
    rig.carry("n1", NET1);
    rig.carry("n1", NET2);
    let listed = rig.on_node("n1", |links| async move {
        links.networks().await.expect("networks")
    });
    assert_eq!(listed, vec![NET1, NET2]);

    let listed_after = rig.on_node("n1", |links| async move {
        for vni in [NET1, NET2] {
            links.remove_network(vni).await.expect("remove_network");
            links
                .remove_network(vni)
                .await
                .expect("remove_network again");
        }
        links.networks().await.expect("networks")
    });

    assert!(listed_after.is_empty(), "{listed_after:?}");
    assert!(yunji_link_names(&rig, "n1").is_empty());
    assert_eq!(link_identity(&rig, "n1", "vm-1001").2, None);
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn attaching_a_missing_device_or_to_a_missing_network_names_the_device() {
    let rig = Rig::build("att");
    rig.carry("n1", NET1);

    let (missing_tap, missing_bridge) = rig.on_node("n1", |links| async move {
        (
            links
                .attach("vm-gone", NET1)
                .await
                .map_err(|e| e.to_string()),
            links
                .attach("vm-1001", 4242)
                .await
                .map_err(|e| e.to_string()),
        )
    });

    assert_eq!(
        missing_tap,
        Err("device vm-gone does not exist".to_string())
    );
    assert_eq!(
        missing_bridge,
        Err("device ybr-4242 does not exist".to_string())
    );
}
