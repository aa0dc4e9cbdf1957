//! Security-group datapath benchmark (issue 6, "Performance"): the time to apply a
//! security-group change on a node carrying 1,000 rules across 100 ports, with the
//! node's firewall (`yunji_agent::net::firewall`) rendering the whole ruleset and loading
//! it with one `nft -f`. Everything runs in a network namespace of its own
//! (`yj-bsg-<pid>`, removed on exit and on panic); the root namespace's ruleset is never
//! touched. After every timed apply the kernel's ruleset is read back, so that a no-op
//! could not pass for a fast apply. Needs root (it prints so and exits 0 otherwise):
//!
//!     cargo bench -p yunji-agent --bench security_groups

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use yunji_agent::net::firewall;
use yunji_common::agent_api::{
    NetworkSpec, NodeNetworkSpec, PortAddressSpec, PortSpec, SecurityGroupSpec, SecurityRuleSpec,
};
use yunji_common::execute::execute;

const NETWORKS: u32 = 10;
const PORTS: usize = 100;
const GROUPS: usize = 10;
const RULES_PER_GROUP: usize = 100;
/// Timed repetitions of each measure.
const RUNS: usize = 20;
/// The group that ports join in the membership measure.
const JOINED_GROUP: usize = 0;
const NFT_TIMEOUT: Duration = Duration::from_secs(30);

/// The namespace of one run, deleted on drop even when the bench panics (deleting a
/// namespace deletes its nft tables with it).
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> anyhow::Result<Namespace> {
        let name = format!("yj-bsg-{}", std::process::id());
        let status = ip(&["netns", "add", &name])
            .status()
            .context("cannot run ip netns add")?;
        ensure!(status.success(), "ip netns add {name} failed: {status}");
        Ok(Namespace { name })
    }

    /// Runs `work` on a thread moved into the namespace, with a current-thread tokio
    /// runtime of its own: `nft`, started from that thread, acts on the namespace.
    fn run<T: Send + 'static>(
        &self,
        work: impl AsyncFnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let path = format!("/var/run/netns/{}", self.name);
        let thread = std::thread::spawn(move || -> anyhow::Result<T> {
            let file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .with_context(|| format!("cannot enter the network namespace {path}"))?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot build the tokio runtime")?
                .block_on(work())
        });
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the bench thread panicked"))?
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `ip` for the namespace's own set-up and removal, synchronous so that `Drop` can run
/// it. The house ban on `Command::new` is for product code, whose tools go through
/// `yunji_common::execute`.
#[allow(clippy::disallowed_methods)]
fn ip(args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(args).stdin(Stdio::null());
    command
}

fn main() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        println!(
            "security_groups bench: needs root (it makes a network namespace and loads nftables there); skipped"
        );
        return Ok(());
    }
    let namespace = Namespace::create()?;
    let report = namespace.run(bench)?;
    drop(namespace);
    report.print();
    Ok(())
}

/// The figures of one run.
struct Report {
    ruleset_bytes: usize,
    kernel_rules: usize,
    group_rules: usize,
    render: Vec<Duration>,
    first_apply: Vec<Duration>,
    rule_change: Vec<Duration>,
    rule_change_render: Vec<Duration>,
    rule_change_nft: Vec<Duration>,
    membership: Vec<Duration>,
    membership_render: Vec<Duration>,
    membership_nft: Vec<Duration>,
}

async fn bench() -> anyhow::Result<Report> {
    let base = node_spec();
    let local = |_: &PortSpec| true;

    // Render: pure, the whole node's ruleset from the spec.
    let mut render = Vec::new();
    let mut ruleset = String::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        ruleset = firewall::render(&base, local).context("render the base spec")?;
        render.push(started.elapsed());
    }

    // First apply: from no tables to the full ruleset. The taps and bridges it names do
    // not exist here: nft matches interface names as strings, so it loads all the same.
    let mut first_apply = Vec::new();
    for _ in 0..RUNS {
        firewall::remove().await.context("remove the tables")?;
        ensure!(
            !nft_json(&["list", "tables"])
                .await?
                .to_string()
                .contains("yunji"),
            "the yunji tables survived remove()"
        );
        let started = Instant::now();
        firewall::apply(&ruleset)
            .await
            .context("first apply of the base ruleset")?;
        first_apply.push(started.elapsed());
    }
    let listing = nft_json(&["list", "ruleset"]).await?;
    let kernel_rules = rules(&listing)
        .filter(|rule| rule["table"] == "yunji")
        .count();
    let group_rules = count_rules(&listing, |chain| chain.starts_with("sg_"));
    ensure!(
        group_rules == GROUPS * RULES_PER_GROUP,
        "the kernel holds {group_rules} security-group rules, not {}",
        GROUPS * RULES_PER_GROUP
    );

    // One-rule change: the base spec plus one new rule (a port no other rule opens),
    // re-rendered and applied over the tables already there.
    let (mut rule_change, mut rule_change_render, mut rule_change_nft) =
        (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let port = 40_000 + u32::try_from(run)?;
        let mut spec = base.clone();
        spec.security_groups[3].rules.push(SecurityRuleSpec {
            port_range_min: Some(port),
            port_range_max: Some(port),
            remote_ip_prefix: Some("203.0.113.0/24".to_string()),
            ..rule("ingress", "IPv4", Some("tcp"))
        });
        let started = Instant::now();
        let ruleset = firewall::render(&spec, local).context("render the one-rule change")?;
        let rendered = Instant::now();
        firewall::apply(&ruleset)
            .await
            .context("apply the one-rule change")?;
        let applied = Instant::now();
        rule_change_render.push(rendered - started);
        rule_change_nft.push(applied - rendered);
        rule_change.push(applied - started);

        let chain = format!("sg_{}_ingress", group_id(3));
        let listing = nft_json(&["list", "chain", "inet", "yunji", &chain]).await?;
        ensure!(
            has_dport_rule(&listing, port),
            "after the change, chain {chain} has no rule for tcp port {port}"
        );
    }

    // Membership change: one more port joins a group, so the group's remote sets (which
    // rules of every group name) gain its addresses and its port chains a jump.
    firewall::apply(&ruleset)
        .await
        .context("reapply the base ruleset")?;
    let mut spec = base.clone();
    let joined = group_id(JOINED_GROUP);
    let joiners: Vec<usize> = (0..PORTS)
        .filter(|p| !spec.ports[*p].security_group_ids.contains(&joined))
        .take(RUNS)
        .collect();
    ensure!(joiners.len() == RUNS, "too few ports outside {joined}");
    let (mut membership, mut membership_render, mut membership_nft) =
        (Vec::new(), Vec::new(), Vec::new());
    for port in joiners {
        spec.ports[port].security_group_ids.push(joined.clone());
        let addresses: Vec<String> = spec.ports[port]
            .fixed_ips
            .iter()
            .map(|a| a.ip_address.clone())
            .collect();
        spec.security_groups[JOINED_GROUP]
            .members
            .extend(addresses.iter().cloned());
        let started = Instant::now();
        let ruleset = firewall::render(&spec, local).context("render the membership change")?;
        let rendered = Instant::now();
        firewall::apply(&ruleset)
            .await
            .context("apply the membership change")?;
        let applied = Instant::now();
        membership_render.push(rendered - started);
        membership_nft.push(applied - rendered);
        membership.push(applied - started);

        for (address, suffix) in addresses.iter().zip(["v4", "v6"]) {
            let set = format!("remote_{joined}_{suffix}");
            let listing = nft_json(&["list", "set", "inet", "yunji", &set]).await?;
            let address: IpAddr = address.parse()?;
            ensure!(
                set_contains(&listing, address)?,
                "after port {port} joined, set {set} lacks {address}"
            );
        }
    }

    firewall::remove().await.context("remove the tables")?;
    Ok(Report {
        ruleset_bytes: ruleset.len(),
        kernel_rules,
        group_rules,
        render,
        first_apply,
        rule_change,
        rule_change_render,
        rule_change_nft,
        membership,
        membership_render,
        membership_nft,
    })
}

impl Report {
    fn print(&self) {
        println!(
            "node spec: {PORTS} ports with port security on {NETWORKS} networks, {GROUPS} groups, \
             {} group rules; ruleset {} KiB, {} rules in the kernel in all (both tables)",
            self.group_rules,
            self.ruleset_bytes / 1024,
            self.kernel_rules
        );
        println!(
            "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
            "measure", "runs", "p50 ms", "p90 ms", "min ms", "max ms"
        );
        let rows = [
            ("render (spec -> nft text)", &self.render),
            ("first apply (no tables -> full, nft -f)", &self.first_apply),
            ("one-rule change: render + apply", &self.rule_change),
            ("  of which render", &self.rule_change_render),
            ("  of which nft -f", &self.rule_change_nft),
            ("port joins a group: render + apply", &self.membership),
            ("  of which render", &self.membership_render),
            ("  of which nft -f", &self.membership_nft),
        ];
        for (name, samples) in rows {
            let stats = Stats::of(samples);
            println!(
                "{name:<44} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                samples.len(),
                stats.p50,
                stats.p90,
                stats.min,
                stats.max
            );
        }
        println!(
            "security-group change, {} rules x {PORTS} ports: p50 {:.1} ms (render {:.1} ms + nft {:.1} ms), p90 {:.1} ms",
            self.group_rules,
            Stats::of(&self.rule_change).p50,
            Stats::of(&self.rule_change_render).p50,
            Stats::of(&self.rule_change_nft).p50,
            Stats::of(&self.rule_change).p90,
        );
    }
}

/// Percentiles in milliseconds.
struct Stats {
    p50: f64,
    p90: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest rank: the smallest sample with at least q of the samples at or below it.
        let rank = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Stats {
            p50: rank(0.5),
            p90: rank(0.9),
            min: ms[0],
            max: ms[ms.len() - 1],
        }
    }
}

/// `nft -j <args>` in the caller's namespace, parsed.
async fn nft_json(args: &[&str]) -> anyhow::Result<Value> {
    let output = execute(
        "nft",
        std::iter::once("-j").chain(args.iter().copied()),
        NFT_TIMEOUT,
    )
    .await
    .with_context(|| format!("nft -j {}", args.join(" ")))?;
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("nft -j {} printed no JSON", args.join(" ")))
}

/// The `{"rule": …}` objects of an `nft -j` listing.
fn rules(listing: &Value) -> impl Iterator<Item = &Value> {
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|object| object.get("rule"))
}

/// Rules of table `inet yunji` whose chain passes `chain`.
fn count_rules(listing: &Value, chain: impl Fn(&str) -> bool) -> usize {
    rules(listing)
        .filter(|rule| rule["family"] == "inet" && rule["table"] == "yunji")
        .filter(|rule| rule["chain"].as_str().is_some_and(&chain))
        .count()
}

/// Whether a rule of the listing matches `tcp dport <port>`.
fn has_dport_rule(listing: &Value, port: u32) -> bool {
    rules(listing).any(|rule| {
        rule["expr"].as_array().into_iter().flatten().any(|expr| {
            let matched = &expr["match"];
            matched["left"]["payload"]["protocol"] == "tcp"
                && matched["left"]["payload"]["field"] == "dport"
                && matched["right"] == port
        })
    })
}

/// Whether the first set of an `nft -j list set` listing holds `address`, as an element,
/// a prefix or a range (an interval set merges adjacent members into ranges).
fn set_contains(listing: &Value, address: IpAddr) -> anyhow::Result<bool> {
    let set = listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|object| object.get("set"))
        .context("no set in the listing")?;
    for element in set["elem"].as_array().into_iter().flatten() {
        let (low, high) = match element {
            Value::String(one) => (one.parse()?, one.parse()?),
            _ if element["range"].is_array() => (
                element["range"][0].as_str().unwrap_or("").parse()?,
                element["range"][1].as_str().unwrap_or("").parse()?,
            ),
            _ if element["prefix"].is_object() => {
                let addr: IpAddr = element["prefix"]["addr"].as_str().unwrap_or("").parse()?;
                let len = element["prefix"]["len"].as_u64().unwrap_or(0);
                prefix_bounds(addr, u32::try_from(len)?)
            }
            other => bail!("unexpected set element {other}"),
        };
        if within(address, low, high) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn prefix_bounds(addr: IpAddr, len: u32) -> (IpAddr, IpAddr) {
    match addr {
        IpAddr::V4(v4) => {
            let host = u32::MAX.checked_shr(len).unwrap_or(0);
            let low = u32::from(v4) & !host;
            (
                IpAddr::from(low.to_be_bytes()),
                IpAddr::from((low | host).to_be_bytes()),
            )
        }
        IpAddr::V6(v6) => {
            let host = u128::MAX.checked_shr(len).unwrap_or(0);
            let low = u128::from(v6) & !host;
            (
                IpAddr::from(low.to_be_bytes()),
                IpAddr::from((low | host).to_be_bytes()),
            )
        }
    }
}

fn within(address: IpAddr, low: IpAddr, high: IpAddr) -> bool {
    address.is_ipv4() == low.is_ipv4() && low <= address && address <= high
}

fn group_id(group: usize) -> String {
    format!("{group:08x}-5ec6-4000-8000-{group:012x}")
}

/// Port `p`: on network `p % 10` (VNI 1..10), dual-stack, in 1 to 3 groups.
fn port_spec(p: usize) -> PortSpec {
    let network = p % NETWORKS as usize;
    let host = 10 + p / NETWORKS as usize;
    let groups = [p, p + 3, p + 7].map(|g| group_id(g % GROUPS));
    PortSpec {
        id: format!("{p:08x}-b5e7-4000-8000-{p:012x}"),
        network_id: format!("net-{network}"),
        server_id: None,
        mac: format!("52:54:00:b5:{network:02x}:{host:02x}"),
        fixed_ips: vec![
            PortAddressSpec {
                subnet_id: format!("subnet-{network}-v4"),
                ip_address: format!("10.{}.0.{host}", 100 + network),
            },
            PortAddressSpec {
                subnet_id: format!("subnet-{network}-v6"),
                ip_address: format!("fd00:b5:{network}::{host:x}"),
            },
        ],
        port_security_enabled: true,
        allowed_address_pairs: Vec::new(),
        security_group_ids: groups[..1 + p % 3].to_vec(),
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

/// Rule `r` of group `g`: Neutron's default egress, then a mix of TCP/UDP port ranges,
/// ICMP and ICMPv6 from prefixes, and rules naming other groups as remote. Every rule of
/// a group differs (the renderer would merge duplicates).
fn group_rule(g: usize, r: usize) -> SecurityRuleSpec {
    let port = u32::try_from(1024 + g * 1000 + r * 10).unwrap_or(u32::MAX);
    let ports = |protocol: &str, direction: &str, ethertype: &str, width: u32| SecurityRuleSpec {
        port_range_min: Some(port),
        port_range_max: Some(port + width),
        ..rule(direction, ethertype, Some(protocol))
    };
    let from = |prefix: String, rule: SecurityRuleSpec| SecurityRuleSpec {
        remote_ip_prefix: Some(prefix),
        ..rule
    };
    let with_group = |remote: usize, rule: SecurityRuleSpec| SecurityRuleSpec {
        remote_group_id: Some(group_id(remote % GROUPS)),
        ..rule
    };
    match (r, r % 10) {
        (0, _) => rule("egress", "IPv4", None),
        (1, _) => rule("egress", "IPv6", None),
        (_, 0..=2) => from(
            format!("10.{g}.{r}.0/24"),
            ports(
                "tcp",
                "ingress",
                "IPv4",
                u32::try_from(r % 3 * 5).unwrap_or(0),
            ),
        ),
        (_, 3) => from(
            format!("198.51.100.{r}/32"),
            ports("udp", "ingress", "IPv4", 0),
        ),
        (_, 4) => from(
            format!("fd00:{g:x}:{r:x}::/48"),
            ports("tcp", "ingress", "IPv6", 9),
        ),
        (_, 5) => from(
            format!("203.0.113.{r}/32"),
            SecurityRuleSpec {
                port_range_min: Some(8),
                port_range_max: Some(0),
                ..rule("ingress", "IPv4", Some("icmp"))
            },
        ),
        (_, 6) => from(
            format!("fd00:b5:{g:x}:{r:x}::/64"),
            SecurityRuleSpec {
                port_range_min: Some(128),
                ..rule("ingress", "IPv6", Some("ipv6-icmp"))
            },
        ),
        (_, 7) => with_group(g + 1, ports("tcp", "ingress", "IPv4", 0)),
        (_, 8) => from(
            "198.51.100.0/24".to_string(),
            ports("udp", "egress", "IPv4", 4),
        ),
        _ => with_group(g + 2, ports("tcp", "egress", "IPv6", 0)),
    }
}

/// The node's spec: every port local, group members their ports' addresses.
fn node_spec() -> NodeNetworkSpec {
    let ports: Vec<PortSpec> = (0..PORTS).map(port_spec).collect();
    let security_groups = (0..GROUPS)
        .map(|g| SecurityGroupSpec {
            id: group_id(g),
            rules: (0..RULES_PER_GROUP).map(|r| group_rule(g, r)).collect(),
            members: ports
                .iter()
                .filter(|p| p.security_group_ids.contains(&group_id(g)))
                .flat_map(|p| p.fixed_ips.iter().map(|a| a.ip_address.clone()))
                .collect(),
        })
        .collect();
    NodeNetworkSpec {
        generation: 1,
        networks: (0..NETWORKS)
            .map(|n| NetworkSpec {
                id: format!("net-{n}"),
                vni: n + 1,
                mtu: 1450,
                subnets: Vec::new(),
                peers: Vec::new(),
            })
            .collect(),
        ports,
        security_groups,
        routers: Vec::new(),
        load_balancers: Vec::new(),
        underlay: None,
    }
}
