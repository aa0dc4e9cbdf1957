//! Privileged: routers on the real datapath (`yunji_agent::net::router` through
//! `RealNetwork::apply`). A node namespace carries a tenant network 10.30.0.0/24 with a
//! "VM" guest at 10.30.0.11 and an external network 203.0.113.0/24 with an "outside"
//! guest at 203.0.113.50; each guest namespace's `eth0` (the port's MAC) is the far end of
//! a veth named like its port's tap. The router (gateway 203.0.113.2, interface
//! 10.30.0.1) is made by the driver in a namespace of its own. Both guests run busybox
//! httpd with a CGI that answers the peer address it sees, so the test shows with real
//! HTTP requests: SNAT to the gateway address, a floating IP reaching the VM with the
//! outside's real address, its removal, the router's removal, and `remove_all`.
//! Run as root: `cargo test -p yunji-agent --test net_router -- --ignored --test-threads=1`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use yunji_agent::net::netns::NETNS_DIR;
use yunji_agent::net::router::namespace_name;
use yunji_agent::net::tap_name;
use yunji_common::agent_api::{
    FloatingIpSpec, NetworkSpec, NodeNetworkSpec, PortAddressSpec, PortSpec, RouterGatewaySpec,
    RouterInterfaceSpec, RouterSpec, SecurityGroupSpec, SecurityRuleSpec, SubnetSpec,
};
use yunji_common::execute::execute;

use common::{NodeThread, ip, json, run};

/// Long enough for a connection over the router; a blackholed one is given up after it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
const NODE_UNDERLAY: &str = "10.99.0.1";
const EXTERNAL_VNI: u32 = 201;
const TENANT_VNI: u32 = 202;

const VM_PORT: &str = "c1000000-0000-4000-8000-000000000001";
const VM_MAC: &str = "fa:16:3e:1c:00:01";
const VM_IP: &str = "10.30.0.11";
const OUTSIDE_PORT: &str = "c2000000-0000-4000-8000-000000000002";
const OUTSIDE_MAC: &str = "fa:16:3e:1c:00:02";
const OUTSIDE_IP: &str = "203.0.113.50";
const GATEWAY_PORT: &str = "c3000000-0000-4000-8000-000000000003";
const GATEWAY_MAC: &str = "fa:16:3e:1c:00:03";
const GATEWAY_IP: &str = "203.0.113.2";
const INTERFACE_PORT: &str = "c4000000-0000-4000-8000-000000000004";
const INTERFACE_MAC: &str = "fa:16:3e:1c:00:04";
const FLOATING_IP: &str = "203.0.113.10";

/// Answers the address the request came from.
const PEER_CGI: &str =
    "#!/bin/sh\necho \"Content-Type: text/plain\"\necho\necho \"$REMOTE_ADDR\"\n";

/// The namespaces, the HTTP servers and the driver thread. Dropping it, even while a
/// failed assertion unwinds, stops the driver and the servers and deletes the router's
/// namespace and every namespace of the rig (which removes their links and tables).
struct Rig {
    prefix: String,
    router_id: String,
    namespaces: Vec<String>,
    servers: Vec<std::process::Child>,
    node: Option<NodeThread>,
    dir: tempfile::TempDir,
}

impl Drop for Rig {
    #[allow(clippy::disallowed_methods)] // Drop cannot await execute(); cleanup runs ip directly
    fn drop(&mut self) {
        self.node.take();
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let router_namespace = namespace_name(&self.router_id);
        if Path::new(NETNS_DIR).join(&router_namespace).exists() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &router_namespace])
                .status();
        }
        for namespace in self.namespaces.iter().rev() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", namespace])
                .status();
        }
    }
}

impl Rig {
    async fn new() -> Rig {
        let pid = std::process::id();
        let mut rig = Rig {
            prefix: format!("yj-rt{pid}"),
            // Unique per test process: router namespaces are named after the router.
            router_id: format!("{pid:08x}-5e1f-4000-8000-000000000001"),
            namespaces: Vec::new(),
            servers: Vec::new(),
            node: None,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        let node = rig.add_namespace("node").await;
        // The VXLAN devices' local address (on a veth: this kernel has no dummy links).
        ip(&[
            "-n", &node, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1",
        ])
        .await;
        ip(&["-n", &node, "link", "set", "ul1", "up"]).await;
        ip(&[
            "-n",
            &node,
            "addr",
            "add",
            &format!("{NODE_UNDERLAY}/24"),
            "dev",
            "ul0",
        ])
        .await;
        ip(&["-n", &node, "link", "set", "ul0", "up"]).await;

        let cgi = rig.dir.path().join("cgi-bin");
        std::fs::create_dir(&cgi).expect("make the cgi-bin dir");
        std::fs::write(cgi.join("peer"), PEER_CGI).expect("write the CGI");
        std::fs::set_permissions(cgi.join("peer"), std::fs::Permissions::from_mode(0o755))
            .expect("make the CGI executable");

        let vm = rig.add_guest("vm", VM_PORT, VM_MAC).await;
        ip(&[
            "-n",
            &vm,
            "addr",
            "add",
            &format!("{VM_IP}/24"),
            "dev",
            "eth0",
        ])
        .await;
        ip(&["-n", &vm, "route", "add", "default", "via", "10.30.0.1"]).await;
        let outside = rig.add_guest("out", OUTSIDE_PORT, OUTSIDE_MAC).await;
        ip(&[
            "-n",
            &outside,
            "addr",
            "add",
            &format!("{OUTSIDE_IP}/24"),
            "dev",
            "eth0",
        ])
        .await;
        rig.serve_http(&vm);
        rig.serve_http(&outside);
        rig.node = Some(NodeThread::start(&node));
        rig
    }

    fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn router_namespace(&self) -> String {
        namespace_name(&self.router_id)
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
    async fn add_guest(&mut self, short: &str, port: &str, mac: &str) -> String {
        let guest = self.add_namespace(short).await;
        ip(&[
            "-n",
            &self.ns("node"),
            "link",
            "add",
            &tap_name(port),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            mac,
            "netns",
            &guest,
        ])
        .await;
        ip(&["-n", &guest, "link", "set", "eth0", "up"]).await;
        guest
    }

    /// busybox httpd on port 80 in the namespace, until the rig is dropped.
    #[allow(clippy::disallowed_methods)] // a server outliving one execute() call
    fn serve_http(&mut self, namespace: &str) {
        let child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                namespace,
                "busybox",
                "httpd",
                "-f",
                "-p",
                "0.0.0.0:80",
                "-h",
            ])
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start busybox httpd");
        self.servers.push(child);
    }

    /// The peer address the server at `to` saw for a request from the guest `from`, or
    /// `None` when no answer came: up to `attempts` requests.
    async fn peer_seen(&self, from: &str, to: &str, attempts: usize) -> Option<String> {
        let url = format!("http://{to}/cgi-bin/peer");
        for _ in 0..attempts {
            // busybox wget's own -T crashes here; execute's timeout ends a hung request.
            let fetched = execute(
                "ip",
                [
                    "netns",
                    "exec",
                    &self.ns(from),
                    "busybox",
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    &url,
                ],
                REQUEST_TIMEOUT,
            )
            .await;
            if let Ok(output) = fetched {
                return Some(String::from_utf8_lossy(&output.stdout).trim().to_string());
            }
        }
        None
    }

    /// `name index` of every link in the router's namespace, sorted.
    async fn router_links(&self) -> Vec<String> {
        let mut links: Vec<String> =
            json(&ip(&["-n", &self.router_namespace(), "-j", "link", "show"]).await)
                .iter()
                .map(|link| {
                    format!(
                        "{} {}",
                        link["ifname"].as_str().unwrap_or("?"),
                        link["ifindex"]
                    )
                })
                .collect();
        links.sort();
        links
    }

    /// The global addresses of a link in the router's namespace, sorted.
    async fn router_addresses(&self, device: &str) -> Vec<String> {
        let links = json(
            &ip(&[
                "-n",
                &self.router_namespace(),
                "-j",
                "addr",
                "show",
                "dev",
                device,
            ])
            .await,
        );
        let mut addresses: Vec<String> = links
            .iter()
            .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
            .filter(|address| address["scope"] == "global")
            .map(|address| {
                format!(
                    "{}/{}",
                    address["local"].as_str().unwrap_or("?"),
                    address["prefixlen"]
                )
            })
            .collect();
        addresses.sort();
        addresses
    }

    /// The router's NAT table as `nft -j` lists it (its handle changes when reloaded).
    async fn router_nat_table(&self) -> Value {
        let output = run(
            "nsenter",
            &[
                &format!("--net={NETNS_DIR}/{}", self.router_namespace()),
                "nft",
                "-j",
                "list",
                "tables",
            ],
        )
        .await;
        let listing: Value = serde_json::from_slice(&output.stdout).expect("nft -j prints JSON");
        listing["nftables"]
            .as_array()
            .expect("an nftables array")
            .iter()
            .filter_map(|item| item.get("table"))
            .find(|table| table["name"] == "yunji-nat")
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn router_namespace_exists(&self) -> bool {
        Path::new(NETNS_DIR).join(self.router_namespace()).exists()
    }

    /// Names of the node namespace's links among `names`.
    async fn node_links_named(&self, names: &[String]) -> Vec<String> {
        json(&ip(&["-n", &self.ns("node"), "-j", "link", "show"]).await)
            .iter()
            .filter_map(|link| link["ifname"].as_str())
            .filter(|name| names.iter().any(|n| n == name))
            .map(str::to_string)
            .collect()
    }

    /// The node namespace's whole nft ruleset, as text.
    async fn node_ruleset(&self) -> String {
        let output = run(
            "ip",
            &["netns", "exec", &self.ns("node"), "nft", "list", "ruleset"],
        )
        .await;
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn network(id: &str, vni: u32, cidr: &str, gateway: &str) -> NetworkSpec {
    NetworkSpec {
        id: id.to_string(),
        vni,
        mtu: 1450,
        subnets: vec![SubnetSpec {
            id: format!("{id}-subnet"),
            cidr: cidr.to_string(),
            gateway_ip: Some(gateway.to_string()),
            dns: vec![],
            host_routes: vec![],
            enable_dhcp: false,
        }],
        peers: vec![],
    }
}

fn port(id: &str, network: &str, mac: &str, ip: &str, server: Option<&str>) -> PortSpec {
    PortSpec {
        id: id.to_string(),
        network_id: network.to_string(),
        server_id: server.map(str::to_string),
        mac: mac.to_string(),
        fixed_ips: vec![PortAddressSpec {
            subnet_id: format!("{network}-subnet"),
            ip_address: ip.to_string(),
        }],
        // Router ports have port security off, as the scheduler renders them.
        port_security_enabled: server.is_some(),
        allowed_address_pairs: vec![],
        security_group_ids: server.map(|_| "sg-web".to_string()).into_iter().collect(),
    }
}

fn rule(direction: &str, protocol: Option<&str>, port: Option<u32>) -> SecurityRuleSpec {
    SecurityRuleSpec {
        direction: direction.to_string(),
        ethertype: "IPv4".to_string(),
        protocol: protocol.map(str::to_string),
        port_range_min: port,
        port_range_max: port,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

/// Both networks and guests; the router when `router`, with the floating IP when
/// `floating`. Group `sg-web` lets HTTP in from anywhere and everything out.
fn spec(generation: u64, router_id: &str, router: bool, floating: bool) -> NodeNetworkSpec {
    let mut ports = vec![
        port(VM_PORT, "tenant", VM_MAC, VM_IP, Some("server-vm")),
        port(
            OUTSIDE_PORT,
            "ext",
            OUTSIDE_MAC,
            OUTSIDE_IP,
            Some("server-out"),
        ),
    ];
    let mut routers = Vec::new();
    if router {
        ports.push(port(GATEWAY_PORT, "ext", GATEWAY_MAC, GATEWAY_IP, None));
        ports.push(port(
            INTERFACE_PORT,
            "tenant",
            INTERFACE_MAC,
            "10.30.0.1",
            None,
        ));
        routers.push(RouterSpec {
            id: router_id.to_string(),
            gateway: Some(RouterGatewaySpec {
                network_id: "ext".to_string(),
                port_id: GATEWAY_PORT.to_string(),
                addresses: vec![GATEWAY_IP.to_string()],
                enable_snat: true,
            }),
            interfaces: vec![RouterInterfaceSpec {
                port_id: INTERFACE_PORT.to_string(),
                network_id: "tenant".to_string(),
                subnet_id: "tenant-subnet".to_string(),
                address: "10.30.0.1".to_string(),
            }],
            floating_ips: if floating {
                vec![FloatingIpSpec {
                    id: "fip-1".to_string(),
                    floating_ip: FLOATING_IP.to_string(),
                    fixed_ip: VM_IP.to_string(),
                    port_id: VM_PORT.to_string(),
                }]
            } else {
                vec![]
            },
        });
    }
    NodeNetworkSpec {
        generation,
        networks: vec![
            network("ext", EXTERNAL_VNI, "203.0.113.0/24", "203.0.113.1"),
            network("tenant", TENANT_VNI, "10.30.0.0/24", "10.30.0.1"),
        ],
        ports,
        security_groups: vec![SecurityGroupSpec {
            id: "sg-web".to_string(),
            rules: vec![
                rule("egress", None, None),
                rule("ingress", Some("tcp"), Some(80)),
            ],
            members: vec![VM_IP.to_string(), OUTSIDE_IP.to_string()],
        }],
        routers,
        load_balancers: Vec::new(),
        underlay: Some(NODE_UNDERLAY.to_string()),
    }
}

#[tokio::test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
async fn a_router_snats_its_subnet_and_dnats_a_floating_ip_until_removed() {
    let rig = Rig::new().await;
    let prefix = rig.prefix.clone();
    let router_id = rig.router_id.clone();
    let router_taps = [tap_name(GATEWAY_PORT), tap_name(INTERFACE_PORT)];

    // (a) The router without a floating IP: the VM goes out as the gateway address.
    rig.node()
        .apply(spec(1, &router_id, true, false))
        .await
        .expect("the spec with the router applies");
    let snat_peer = rig.peer_seen("vm", OUTSIDE_IP, 3).await;
    let ruleset = rig.node_ruleset().await;

    // (b) With the floating IP: the outside reaches the VM at it, and is seen as itself.
    rig.node()
        .apply(spec(2, &router_id, true, true))
        .await
        .expect("the spec with the floating IP applies");
    let gateway_addresses_floating = rig.router_addresses("qg-c3000000-00").await;
    let floating_peer = rig.peer_seen("out", FLOATING_IP, 3).await;
    let vm_out_with_floating = rig.peer_seen("vm", OUTSIDE_IP, 3).await;

    // (c) Without it again: the floating IP no longer reaches the VM.
    rig.node()
        .apply(spec(3, &router_id, true, false))
        .await
        .expect("the spec without the floating IP applies");
    let gateway_addresses_after = rig.router_addresses("qg-c3000000-00").await;
    let floating_after = rig.peer_seen("out", FLOATING_IP, 1).await;
    let snat_peer_after = rig.peer_seen("vm", OUTSIDE_IP, 3).await;

    // The same spec again changes nothing: same links, NAT table not reloaded.
    let links_before = rig.router_links().await;
    let table_before = rig.router_nat_table().await;
    rig.node()
        .apply(spec(4, &router_id, true, false))
        .await
        .expect("the same spec applies again");
    let links_again = rig.router_links().await;
    let table_again = rig.router_nat_table().await;

    // (d) Without the router: its namespace and veths are gone.
    rig.node()
        .apply(spec(5, &router_id, false, false))
        .await
        .expect("the spec without the router applies");
    let namespace_after_removal = rig.router_namespace_exists();
    let taps_after_removal = rig.node_links_named(&router_taps).await;
    let vm_out_without_router = rig.peer_seen("vm", OUTSIDE_IP, 1).await;

    // (e) The router once more, then remove_all.
    rig.node()
        .apply(spec(6, &router_id, true, false))
        .await
        .expect("the router is made again");
    let snat_peer_again = rig.peer_seen("vm", OUTSIDE_IP, 3).await;
    rig.node().remove_all().await.expect("remove_all");
    let namespace_after_remove_all = rig.router_namespace_exists();
    let taps_after_remove_all = rig.node_links_named(&router_taps).await;
    let ruleset_after_remove_all = rig.node_ruleset().await;
    drop(rig);
    let namespaces_left =
        String::from_utf8_lossy(&ip(&["netns", "list"]).await.stdout).into_owned();

    assert_eq!(
        snat_peer.as_deref(),
        Some(GATEWAY_IP),
        "the VM leaves by SNAT to the gateway address"
    );
    assert!(
        ruleset.contains(&tap_name(VM_PORT)),
        "the VM's port has its chains"
    );
    assert!(
        !router_taps.iter().any(|tap| ruleset.contains(tap.as_str())),
        "router ports (port security off) get no chains:\n{ruleset}"
    );
    assert_eq!(
        gateway_addresses_floating,
        ["203.0.113.10/32", "203.0.113.2/24"]
    );
    assert_eq!(
        floating_peer.as_deref(),
        Some(OUTSIDE_IP),
        "the outside reaches the VM at its floating IP and the VM sees the outside's address"
    );
    assert_eq!(
        vm_out_with_floating.as_deref(),
        Some(FLOATING_IP),
        "a VM with a floating IP leaves by it"
    );
    assert_eq!(gateway_addresses_after, ["203.0.113.2/24"]);
    assert_eq!(
        floating_after, None,
        "the removed floating IP no longer reaches the VM"
    );
    assert_eq!(snat_peer_after.as_deref(), Some(GATEWAY_IP));
    assert_eq!(links_before, links_again, "re-applying recreates no link");
    assert!(table_before.is_object(), "the NAT table exists");
    assert_eq!(
        table_before, table_again,
        "re-applying does not reload the NAT table"
    );
    assert!(
        !namespace_after_removal,
        "the router's namespace is deleted"
    );
    assert!(
        taps_after_removal.is_empty(),
        "router veths left: {taps_after_removal:?}"
    );
    assert_eq!(
        vm_out_without_router, None,
        "without the router the VM reaches nothing outside"
    );
    assert_eq!(snat_peer_again.as_deref(), Some(GATEWAY_IP));
    assert!(
        !namespace_after_remove_all,
        "remove_all deletes the router's namespace"
    );
    assert!(
        taps_after_remove_all.is_empty(),
        "router veths left: {taps_after_remove_all:?}"
    );
    assert!(
        ruleset_after_remove_all.trim().is_empty(),
        "tables left: {ruleset_after_remove_all}"
    );
    assert!(
        !namespaces_left.contains(&prefix),
        "namespaces left behind: {namespaces_left}"
    );
    assert!(
        !namespaces_left.contains(&namespace_name(&router_id)),
        "router namespace left behind: {namespaces_left}"
    );
}

#[tokio::test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
async fn another_node_on_the_same_machine_leaves_the_router_alone() {
    let mut rig = Rig::new().await;
    let router_id = rig.router_id.clone();
    rig.node()
        .apply(spec(1, &router_id, true, false))
        .await
        .expect("node A carries the router");
    // Node B shares /run/netns with node A, as the nodes of a one-machine rig do.
    let node_b_namespace = rig.add_namespace("nodeb").await;
    let node_b = NodeThread::start(&node_b_namespace);

    let node_b_apply = node_b
        .apply(NodeNetworkSpec {
            generation: 1,
            ..NodeNetworkSpec::default()
        })
        .await;
    let node_b_remove_all = node_b.remove_all().await;
    drop(node_b);
    let namespace_after_node_b = rig.router_namespace_exists();
    let snat_peer_after_node_b = rig.peer_seen("vm", OUTSIDE_IP, 3).await;
    rig.node().remove_all().await.expect("node A's remove_all");
    let namespace_after_node_a = rig.router_namespace_exists();
    drop(rig);

    assert!(node_b_apply.is_ok(), "{node_b_apply:?}");
    assert!(node_b_remove_all.is_ok(), "{node_b_remove_all:?}");
    assert!(namespace_after_node_b, "node B removed node A's router");
    assert_eq!(snat_peer_after_node_b.as_deref(), Some(GATEWAY_IP));
    assert!(!namespace_after_node_a, "node A removes its own router");
}
