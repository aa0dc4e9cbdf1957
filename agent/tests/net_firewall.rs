//! Privileged test of the node firewall (`yunji_agent::net::firewall`): a node namespace
//! with bridge `ybr-5` and three guest namespaces on veths whose node ends are named
//! like taps. Rulesets rendered from a `NodeNetworkSpec` are applied inside the node
//! namespace, and HTTP between the guests (busybox httpd / wget) shows what they let
//! through. Run as root: `cargo test -p yunji-agent --test net_firewall -- --ignored
//! --test-threads=1`.

use std::os::fd::AsFd;
use std::process::{Child, Command, Output, Stdio};

use yunji_agent::net::firewall;
use yunji_common::agent_api::{
    AddressPairSpec, NetworkSpec, NodeNetworkSpec, PortAddressSpec, PortSpec, SecurityGroupSpec,
    SecurityRuleSpec,
};

/// Runs a host tool for the test's own set-up. The house ban on `Command::new` is for
/// product code, whose tools go through `yunji_common::execute`.
#[allow(clippy::disallowed_methods)]
fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

fn run(program: &str, args: &[&str]) -> Output {
    let output = command(program, args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Namespaces and processes of one test, removed on drop even when the test panics
/// (deleting a namespace deletes its links, and with the node namespace its nft tables).
struct Rig {
    prefix: String,
    namespaces: Vec<String>,
    servers: Vec<Child>,
    web_root: tempfile::TempDir,
}

impl Rig {
    fn new(test: &str) -> Rig {
        Rig {
            prefix: format!("yj-fw{}-{test}", std::process::id()),
            namespaces: Vec::new(),
            servers: Vec::new(),
            web_root: tempfile::tempdir().expect("temporary web root"),
        }
    }

    fn namespace(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.prefix);
        // Recorded first, so that a half-made namespace is still removed.
        self.namespaces.push(name.clone());
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A node namespace with bridge `ybr-5`, bridged IP traffic sent through netfilter.
    fn node(&mut self) -> String {
        let node = self.namespace("node");
        run(
            "ip",
            &["-n", &node, "link", "add", "ybr-5", "type", "bridge"],
        );
        run("ip", &["-n", &node, "link", "set", "ybr-5", "up"]);
        for sysctl in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &node,
                    "sh",
                    "-c",
                    &format!("echo 1 > /proc/sys/net/bridge/{sysctl}"),
                ],
            );
        }
        node
    }

    /// A guest namespace whose `eth0` is a veth into the node's bridge, on `tap`.
    fn guest(&mut self, node: &str, role: &str, tap: &str, mac: &str, address: &str) -> String {
        let guest = self.namespace(role);
        run(
            "ip",
            &[
                "-n", node, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns",
                &guest,
            ],
        );
        run(
            "ip",
            &["-n", node, "link", "set", tap, "master", "ybr-5", "up"],
        );
        run("ip", &["-n", &guest, "link", "set", "eth0", "address", mac]);
        run("ip", &["-n", &guest, "addr", "add", address, "dev", "eth0"]);
        run("ip", &["-n", &guest, "link", "set", "eth0", "up"]);
        guest
    }

    /// Serves `http://<guest>:8080/` answering `marker`.
    fn serve_http(&mut self, guest: &str, marker: &str) {
        let root = self.web_root.path().join(marker);
        std::fs::create_dir_all(&root).expect("web root");
        std::fs::write(root.join("index.html"), marker).expect("index.html");
        let root = root.to_string_lossy().into_owned();
        let server = command(
            "ip",
            &[
                "netns", "exec", guest, "busybox", "httpd", "-f", "-p", "8080", "-h", &root,
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("busybox httpd");
        self.servers.push(server);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        for namespace in self.namespaces.iter().rev() {
            let _ = command("ip", &["netns", "del", namespace])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether an HTTP GET from `guest` to `address:8080` answers `marker` within 3 s.
fn http_reaches(guest: &str, address: &str, marker: &str) -> bool {
    let url = format!("http://{address}:8080/");
    let output = command(
        "timeout",
        &[
            "3", "ip", "netns", "exec", guest, "busybox", "wget", "-q", "-O", "-", &url,
        ],
    )
    .stdin(Stdio::null())
    .stderr(Stdio::null())
    .output()
    .expect("busybox wget");
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains(marker)
}

/// Runs `work` on a thread moved into the namespace, with its own tokio runtime: nft,
/// started from that thread, loads the ruleset into that namespace.
fn in_namespace<T: Send + 'static>(
    namespace: &str,
    work: impl AsyncFnOnce() -> T + Send + 'static,
) -> T {
    let path = format!("/var/run/netns/{namespace}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace file");
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the namespace");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(work())
    })
    .join()
    .expect("namespace thread")
}

fn apply_in(node: &str, spec: &NodeNetworkSpec) {
    let ruleset = firewall::render(spec, |_| true).expect("render");
    in_namespace(node, async move || firewall::apply(&ruleset).await)
        .unwrap_or_else(|e| panic!("apply: {:#}", anyhow::Error::new(e)));
}

fn tables_in(node: &str) -> String {
    String::from_utf8_lossy(&run("ip", &["netns", "exec", node, "nft", "list", "tables"]).stdout)
        .into_owned()
}

fn port(id: &str, mac: &str, ip: &str, group: &str) -> PortSpec {
    PortSpec {
        id: id.to_string(),
        network_id: "net-5".to_string(),
        server_id: None,
        mac: mac.to_string(),
        fixed_ips: vec![PortAddressSpec {
            subnet_id: "subnet-5".to_string(),
            ip_address: ip.to_string(),
        }],
        port_security_enabled: true,
        allowed_address_pairs: Vec::new(),
        security_group_ids: vec![group.to_string()],
    }
}

fn rule(direction: &str, ethertype: &str, protocol: Option<&str>) -> SecurityRuleSpec {
    SecurityRuleSpec {
        direction: direction.to_string(),
        ethertype: ethertype.to_string(),
        protocol: protocol.map(str::to_string),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

fn http_in() -> SecurityRuleSpec {
    SecurityRuleSpec {
        port_range_min: Some(8080),
        port_range_max: Some(8080),
        ..rule("ingress", "IPv4", Some("tcp"))
    }
}

fn group(id: &str, member: &str, extra_rules: Vec<SecurityRuleSpec>) -> SecurityGroupSpec {
    let mut rules = vec![rule("egress", "IPv4", None)];
    rules.extend(extra_rules);
    SecurityGroupSpec {
        id: id.to_string(),
        rules,
        members: vec![member.to_string()],
    }
}

const A_MAC: &str = "52:54:00:50:00:01";

/// A in group-x, B in web (with `web_rules` besides egress), C in group-y.
fn spec(web_rules: Vec<SecurityRuleSpec>, group_x_rules: Vec<SecurityRuleSpec>) -> NodeNetworkSpec {
    NodeNetworkSpec {
        generation: 1,
        networks: vec![NetworkSpec {
            id: "net-5".to_string(),
            vni: 5,
            mtu: 1500,
            subnets: Vec::new(),
            peers: Vec::new(),
        }],
        ports: vec![
            port("AAAAAAAAAAA-port", A_MAC, "10.50.0.1", "group-x"),
            port("BBBBBBBBBBB-port", "52:54:00:50:00:02", "10.50.0.2", "web"),
            port(
                "CCCCCCCCCCC-port",
                "52:54:00:50:00:03",
                "10.50.0.3",
                "group-y",
            ),
        ],
        security_groups: vec![
            group("group-x", "10.50.0.1", group_x_rules),
            group("web", "10.50.0.2", web_rules),
            group("group-y", "10.50.0.3", Vec::new()),
        ],
        routers: Vec::new(),
        load_balancers: Vec::new(),
        underlay: None,
    }
}

fn from_group_x() -> SecurityRuleSpec {
    SecurityRuleSpec {
        remote_group_id: Some("group-x".to_string()),
        ..http_in()
    }
}

fn from_prefix(prefix: &str) -> SecurityRuleSpec {
    SecurityRuleSpec {
        remote_ip_prefix: Some(prefix.to_string()),
        ..http_in()
    }
}

#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn security_groups_and_port_security_filter_real_traffic() {
    let mut rig = Rig::new("sg");
    let node = rig.node();
    let a = rig.guest(&node, "a", "tapAAAAAAAAAAA", A_MAC, "10.50.0.1/24");
    let b = rig.guest(
        &node,
        "b",
        "tapBBBBBBBBBBB",
        "52:54:00:50:00:02",
        "10.50.0.2/24",
    );
    let c = rig.guest(
        &node,
        "c",
        "tapCCCCCCCCCCC",
        "52:54:00:50:00:03",
        "10.50.0.3/24",
    );
    rig.serve_http(&b, "guest-b");
    rig.serve_http(&a, "guest-a");
    assert!(
        http_reaches(&a, "10.50.0.2", "guest-b"),
        "the rig itself does not carry A→B"
    );

    // (1) Ingress is denied by default.
    apply_in(&node, &spec(Vec::new(), Vec::new()));
    assert!(
        !http_reaches(&a, "10.50.0.2", "guest-b"),
        "(1) A→B:8080 passed with no rule"
    );

    // (2) Allowed from remote group X: A (in X) passes, C does not.
    apply_in(&node, &spec(vec![from_group_x()], Vec::new()));
    assert!(
        http_reaches(&a, "10.50.0.2", "guest-b"),
        "(2) A in X was refused"
    );
    assert!(
        !http_reaches(&c, "10.50.0.2", "guest-b"),
        "(2) C outside X passed"
    );
    // The flow was tracked in the bridge's zone (5), apart from other networks'.
    let conntrack = run(
        "ip",
        &["netns", "exec", &node, "cat", "/proc/net/nf_conntrack"],
    );
    let conntrack = String::from_utf8_lossy(&conntrack.stdout);
    assert!(
        conntrack
            .lines()
            .any(|flow| flow.contains("src=10.50.0.1 dst=10.50.0.2")
                && flow.contains("dport=8080")
                && flow.contains("zone=5")),
        "(2) no zone-5 conntrack entry for A→B: {conntrack}"
    );

    // (3) A prefix rule opens it for C; deleting the rule closes it again.
    apply_in(
        &node,
        &spec(
            vec![from_group_x(), from_prefix("10.50.0.3/32")],
            Vec::new(),
        ),
    );
    assert!(
        http_reaches(&c, "10.50.0.2", "guest-b"),
        "(3) C's prefix rule did not open"
    );
    apply_in(&node, &spec(vec![from_group_x()], Vec::new()));
    assert!(
        !http_reaches(&c, "10.50.0.2", "guest-b"),
        "(3) deleting C's rule did not close"
    );
    assert!(
        http_reaches(&a, "10.50.0.2", "guest-b"),
        "(3) A lost access"
    );

    // (4) A forges source 10.50.0.9 (which B's group would let in): port security drops
    // it, unless 10.50.0.9 is one of A's allowed address pairs.
    run(
        "ip",
        &["-n", &a, "addr", "add", "10.50.0.9/32", "dev", "eth0"],
    );
    run(
        "ip",
        &[
            "-n",
            &a,
            "route",
            "add",
            "10.50.0.2/32",
            "dev",
            "eth0",
            "src",
            "10.50.0.9",
        ],
    );
    let mut forged = spec(
        vec![from_group_x(), from_prefix("10.50.0.9/32")],
        Vec::new(),
    );
    apply_in(&node, &forged);
    assert!(
        !http_reaches(&a, "10.50.0.2", "guest-b"),
        "(4) A's forged source passed"
    );
    forged.ports[0].allowed_address_pairs = vec![AddressPairSpec {
        ip_address: "10.50.0.9".to_string(),
        mac_address: String::new(),
    }];
    apply_in(&node, &forged);
    assert!(
        http_reaches(&a, "10.50.0.2", "guest-b"),
        "(4) A's allowed pair was refused"
    );
    run("ip", &["-n", &a, "route", "del", "10.50.0.2/32"]);
    run(
        "ip",
        &["-n", &a, "addr", "del", "10.50.0.9/32", "dev", "eth0"],
    );
    // A forging its MAC is dropped too, though group X lets its address in.
    apply_in(&node, &spec(vec![from_group_x()], Vec::new()));
    run(
        "ip",
        &[
            "-n",
            &a,
            "link",
            "set",
            "eth0",
            "address",
            "52:54:00:50:00:99",
        ],
    );
    assert!(
        !http_reaches(&a, "10.50.0.2", "guest-b"),
        "(4) A's forged MAC passed"
    );
    run("ip", &["-n", &a, "link", "set", "eth0", "address", A_MAC]);
    assert!(
        http_reaches(&a, "10.50.0.2", "guest-b"),
        "(4) A's own MAC was refused"
    );

    // (5) Replies reach A, which has no ingress rule (stateful, shown above), but B
    // cannot open a connection to A, until A's group allows it.
    assert!(
        !http_reaches(&b, "10.50.0.1", "guest-a"),
        "(5) B→A passed with no rule"
    );
    apply_in(&node, &spec(vec![from_group_x()], vec![http_in()]));
    assert!(
        http_reaches(&b, "10.50.0.1", "guest-a"),
        "(5) A's ingress rule did not open"
    );

    // remove() deletes both tables, and is idempotent.
    assert!(tables_in(&node).contains("table bridge yunji"));
    in_namespace(&node, async || firewall::remove().await).expect("remove");
    in_namespace(&node, async || firewall::remove().await).expect("remove again");
    assert!(
        !tables_in(&node).contains("yunji"),
        "tables left: {}",
        tables_in(&node)
    );
    assert!(
        http_reaches(&c, "10.50.0.1", "guest-a"),
        "traffic blocked after remove"
    );
}

/// Every kind of rule and address the renderer emits must be accepted by nft, on an
/// empty node and again over the tables already there.
#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn every_rule_kind_loads_into_nft() {
    let mut rig = Rig::new("kinds");
    let node = rig.namespace("node");
    let mut spec = spec(Vec::new(), Vec::new());
    spec.networks.push(NetworkSpec {
        id: "net-70000".to_string(),
        vni: 70000,
        mtu: 1450,
        subnets: Vec::new(),
        peers: Vec::new(),
    });
    spec.ports[0].fixed_ips.push(PortAddressSpec {
        subnet_id: "subnet-6".to_string(),
        ip_address: "fd00:50::1".to_string(),
    });
    let shared_vrrp = |ip: &str| AddressPairSpec {
        ip_address: ip.to_string(),
        mac_address: "00:00:5e:00:01:07".to_string(),
    };
    spec.ports[0].allowed_address_pairs =
        vec![shared_vrrp("10.50.0.100"), shared_vrrp("fd00:50::/64")];
    spec.ports[1].allowed_address_pairs = vec![shared_vrrp("10.50.0.100")];
    spec.ports[2].network_id = "net-70000".to_string();
    spec.security_groups[1]
        .members
        .push("fd00:50::/64".to_string());
    let ranged = |protocol: &str, ethertype: &str, min: u32, max: Option<u32>| SecurityRuleSpec {
        port_range_min: Some(min),
        port_range_max: max,
        ..rule("ingress", ethertype, Some(protocol))
    };
    spec.security_groups[1].rules.extend([
        ranged("tcp", "IPv4", 22, None),
        ranged("udp", "IPv6", 5000, Some(5100)),
        ranged("sctp", "IPv4", 9, Some(9)),
        ranged("udplite", "IPv4", 9, None),
        ranged("dccp", "IPv6", 9, None),
        ranged("icmp", "IPv4", 8, Some(0)),
        ranged("icmp", "IPv6", 128, None),
        ranged("ipv6-icmp", "IPv6", 135, Some(0)),
        rule("ingress", "IPv4", Some("gre")),
        rule("egress", "IPv6", Some("50")),
        rule("egress", "IPv4", Some("6")),
        SecurityRuleSpec {
            remote_group_id: Some("web".to_string()),
            ..rule("ingress", "IPv6", None)
        },
        SecurityRuleSpec {
            remote_group_id: Some("absent".to_string()),
            ..rule("egress", "IPv4", Some("udp"))
        },
        SecurityRuleSpec {
            remote_ip_prefix: Some("0.0.0.0/0".to_string()),
            ..rule("ingress", "IPv4", Some("icmp"))
        },
        SecurityRuleSpec {
            remote_ip_prefix: Some("2001:db8::/32".to_string()),
            ..rule("egress", "IPv6", Some("tcp"))
        },
    ]);

    apply_in(&node, &spec);
    apply_in(&node, &spec);

    let listing = String::from_utf8_lossy(
        &run("ip", &["netns", "exec", &node, "nft", "list", "ruleset"]).stdout,
    )
    .into_owned();
    assert!(
        listing.contains("chain shared_ybr-5_00005e000107_ingress"),
        "{listing}"
    );
    assert!(
        listing.contains("ct zone set iifname map { \"ybr-5\" : 5, \"ybr-70000\" : 4465 }"),
        "{listing}"
    );
    assert!(listing.contains("set remote_absent_v4"), "{listing}");
}

/// The benchmark figure: a security-group change with 1,000 rules across 100
/// ports, rendered and applied (printed; run with `--nocapture` to see it).
#[test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
fn thousand_rules_across_hundred_ports_apply_within_seconds() {
    let mut rig = Rig::new("scale");
    let node = rig.namespace("node");
    let groups: Vec<SecurityGroupSpec> = (0..10)
        .map(|g| SecurityGroupSpec {
            id: format!("group-{g}"),
            rules: (0..100)
                .map(|r| SecurityRuleSpec {
                    remote_ip_prefix: Some(format!("10.{g}.{r}.0/24")),
                    ..ranged_tcp(1000 + r)
                })
                .collect(),
            members: (0..10).map(|m| format!("10.60.{g}.{m}")).collect(),
        })
        .collect();
    let ports: Vec<PortSpec> = (0..100)
        .map(|p| {
            let mut port = port(
                &format!("port{p:07}-scale"),
                &format!("52:54:00:60:00:{p:02x}"),
                &format!("10.60.{}.{}", p / 10, p % 10),
                &format!("group-{}", p % 10),
            );
            port.security_group_ids
                .push(format!("group-{}", (p + 1) % 10));
            port
        })
        .collect();
    let mut spec = spec(Vec::new(), Vec::new());
    spec.ports = ports;
    spec.security_groups = groups;

    let started = std::time::Instant::now();
    let ruleset = firewall::render(&spec, |_| true).expect("render");
    let rendered = started.elapsed();
    in_namespace(&node, async move || firewall::apply(&ruleset).await).expect("first apply");
    let first = started.elapsed();
    spec.security_groups[3].rules.pop();
    let changed = std::time::Instant::now();
    let ruleset = firewall::render(&spec, |_| true).expect("render");
    in_namespace(&node, async move || firewall::apply(&ruleset).await).expect("change");
    let change = changed.elapsed();

    println!(
        "1,000 rules x 100 ports: render {rendered:?}, first apply (with render) {first:?}, \
         change (render + apply) {change:?}"
    );
    assert!(
        change < std::time::Duration::from_secs(10),
        "a change took {change:?}"
    );
}

fn ranged_tcp(port: u32) -> SecurityRuleSpec {
    SecurityRuleSpec {
        port_range_min: Some(port),
        port_range_max: Some(port),
        ..rule("ingress", "IPv4", Some("tcp"))
    }
}
