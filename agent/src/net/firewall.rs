//! Security groups and port security of a node's VM ports, as one nftables ruleset
//! rendered from the scheduler's [`NodeNetworkSpec`] and applied in one transaction.
//!
//! Two tables, both named `yunji`:
//! - `table bridge yunji` — port security (anti-spoofing). Only the bridge family sees
//!   which tap a frame came in on, so each secured port's frames must carry its MAC (or
//!   an allowed pair's) and claim only its addresses, in IP and in ARP.
//! - `table inet yunji` — security groups, stateful. With `br_netfilter` bridged IP
//!   traffic crosses the inet forward hook, but with the BRIDGE as in/out interface, so a
//!   port is recognised by `bridge . MAC`: the destination MAC for traffic to it, the
//!   source MAC (honest, thanks to the bridge table) for traffic from it. Verdict maps
//!   send each packet straight to its port's chain, and a port's chain jumps to one chain
//!   per security group, so 1,000 rules shared by 100 ports are rendered once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use yunji_common::agent_api::{NodeNetworkSpec, PortSpec, SecurityGroupSpec, SecurityRuleSpec};
use yunji_common::execute::{ExecError, execute_with_input};

use super::links::bridge_name;
use super::tap_name;

/// How long `nft` may take to load a ruleset (1,000 rules load in well under a second).
const NFT_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the tables if missing then deletes them, so that the definitions which follow
/// start from nothing whatever the node carried: `nft -f` runs the whole file as one
/// transaction, so packets see either the old ruleset or the new one.
const RESET: &str = "table inet yunji {}\n\
                     delete table inet yunji\n\
                     table bridge yunji {}\n\
                     delete table bridge yunji\n";

/// What went wrong rendering or applying the firewall.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("port {port}: {reason}")]
    InvalidPort { port: String, reason: String },
    #[error("network {network}: {reason}")]
    InvalidNetwork { network: String, reason: String },
    #[error("security group {group}: {reason}")]
    InvalidGroup { group: String, reason: String },
    #[error("security group {group}, rule {rule}: {reason}")]
    InvalidRule {
        group: String,
        /// The rule's index in the group's `rules`.
        rule: usize,
        reason: String,
    },
    #[error("nft did not load the ruleset")]
    Nft(#[source] ExecError),
}

/// The conntrack zone of a network's bridge. Two tenant networks may use the same CIDR
/// on one node; in one zone their flows would share conntrack entries (a reply in one
/// network could match, or be taken for, a flow of the other). Zones are 16 bits and VNIs
/// 24, so VNIs above 65535 fold back; the scheduler hands out VNIs from 1 up.
pub fn conntrack_zone(vni: u32) -> u16 {
    // Never zone 0, the node's own.
    u16::try_from((vni.saturating_sub(1)) % 65535 + 1).unwrap_or(u16::MAX)
}

/// Renders the node's complete firewall transaction (see [`apply`]) from the pushed spec.
/// `is_local` tells the ports bound on this node: only they get chains; other ports
/// matter only as members of remote groups. Pure: every address, MAC and id is
/// validated here, so a bad spec fails naming the port or rule, never inside `nft`.
pub fn render(
    spec: &NodeNetworkSpec,
    is_local: impl Fn(&PortSpec) -> bool,
) -> Result<String, FirewallError> {
    let mut bridges = HashMap::new();
    for network in &spec.networks {
        if network.vni == 0 || network.vni > 0xff_ffff {
            return Err(FirewallError::InvalidNetwork {
                network: network.id.clone(),
                reason: format!("VNI {} is outside 1..=16777215", network.vni),
            });
        }
        bridges.insert(network.id.as_str(), network.vni);
    }
    let groups: BTreeMap<&str, &SecurityGroupSpec> = spec
        .security_groups
        .iter()
        .map(|g| (g.id.as_str(), g))
        .collect();
    for id in groups.keys() {
        check_identifier(id).map_err(|reason| FirewallError::InvalidGroup {
            group: id.to_string(),
            reason,
        })?;
    }

    let mut ports = Vec::new();
    for port in spec
        .ports
        .iter()
        .filter(|p| p.port_security_enabled && is_local(p))
    {
        let vni = bridges
            .get(port.network_id.as_str())
            .copied()
            .ok_or_else(|| FirewallError::InvalidPort {
                port: port.id.clone(),
                reason: format!("its network {} is not in the spec", port.network_id),
            })?;
        ports.push(SecuredPort::new(port, vni)?);
    }
    ports.sort_by(|a, b| a.tap.cmp(&b.tap));
    if let Some(pair) = ports.windows(2).find(|pair| pair[0].tap == pair[1].tap) {
        return Err(FirewallError::InvalidPort {
            port: pair[1].id.to_string(),
            reason: format!("its tap {} is another local port's too", pair[1].tap),
        });
    }

    // Group chains for every group a local port uses; sets for every group they name.
    let mut used_groups: BTreeSet<&str> = BTreeSet::new();
    for port in &ports {
        used_groups.extend(port.groups.iter().copied());
    }
    let mut remote_groups = BTreeSet::new();
    let mut group_chains = Vec::new();
    for id in &used_groups {
        // A group the scheduler did not send allows nothing: fail closed.
        let rules = groups.get(id).map(|g| g.rules.as_slice()).unwrap_or(&[]);
        let mut lines = [BTreeSet::new(), BTreeSet::new()];
        for (index, rule) in rules.iter().enumerate() {
            let rendered = render_rule(rule).map_err(|reason| FirewallError::InvalidRule {
                group: id.to_string(),
                rule: index,
                reason,
            })?;
            if let Some(remote) = &rule.remote_group_id {
                remote_groups.insert(remote.as_str());
            }
            lines[rendered.direction as usize].insert(rendered.text);
        }
        for direction in [Direction::Ingress, Direction::Egress] {
            group_chains.push((
                group_chain(id, direction),
                std::mem::take(&mut lines[direction as usize]),
            ));
        }
    }

    let mut out = Ruleset::default();
    out.text.push_str(RESET);
    out.line(0, "table inet yunji {");
    for id in &remote_groups {
        check_identifier(id).map_err(|reason| FirewallError::InvalidGroup {
            group: id.to_string(),
            reason: format!("named as remote group: {reason}"),
        })?;
        let members = match groups.get(id) {
            Some(group) => parse_members(group)?,
            None => (Vec::new(), Vec::new()),
        };
        out.set(&remote_set(id, Family::V4), "ipv4_addr", &members.0);
        out.set(&remote_set(id, Family::V6), "ipv6_addr", &members.1);
    }

    // Which chain a (bridge, MAC) key leads to, per direction. A MAC held by several
    // local ports on one bridge (a shared VRRP MAC in allowed pairs) gets a chain with the
    // union of their groups, since frames to it reach whichever port holds it.
    let mut holders: BTreeMap<(String, Mac), Vec<&SecuredPort>> = BTreeMap::new();
    for port in &ports {
        for mac in port.addresses.keys() {
            holders
                .entry((port.bridge.clone(), *mac))
                .or_default()
                .push(port);
        }
    }
    let mut port_chains: Vec<(String, BTreeSet<&str>)> = ports
        .iter()
        .map(|p| (p.chain_stem(), p.groups.clone()))
        .collect();
    let mut keys = Vec::new();
    for ((bridge, mac), holding) in &holders {
        let stem = match holding.as_slice() {
            [only] => only.chain_stem(),
            _ => {
                let stem = format!("shared_{bridge}_{}", mac.hex());
                let union = holding.iter().flat_map(|p| p.groups.iter().copied());
                port_chains.push((stem.clone(), union.collect()));
                stem
            }
        };
        keys.push((format!("\"{bridge}\" . {mac}"), stem));
    }
    for (direction, map) in [
        (Direction::Egress, "from_port"),
        (Direction::Ingress, "to_port"),
    ] {
        out.line(1, format!("map {map} {{"));
        out.line(2, "type ifname . ether_addr : verdict");
        let elements: Vec<String> = keys
            .iter()
            .map(|(key, stem)| format!("{key} : jump {stem}_{}", direction.name()))
            .collect();
        out.elements(&elements);
        out.line(1, "}");
    }

    out.line(1, "chain conntrack_zone {");
    out.line(
        2,
        "type filter hook prerouting priority raw; policy accept;",
    );
    let mut zones: Vec<(String, u16)> = bridges
        .values()
        .map(|vni| (bridge_name(*vni), conntrack_zone(*vni)))
        .collect();
    zones.sort();
    let zone_map = zones
        .iter()
        .map(|(bridge, zone)| format!("\"{bridge}\" : {zone}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !zones.is_empty() {
        out.line(2, format!("ct zone set iifname map {{ {zone_map} }}"));
    }
    out.line(1, "}");
    // The node's own packets into a bridge (DHCP answers) join the same zone.
    out.line(1, "chain conntrack_zone_local {");
    out.line(2, "type filter hook output priority raw; policy accept;");
    if !zones.is_empty() {
        out.line(2, format!("ct zone set oifname map {{ {zone_map} }}"));
    }
    out.line(1, "}");

    // Egress and ingress are two base chains: `accept` ends only its own base chain, so
    // a packet between two local ports passes the sender's egress, then the receiver's
    // ingress. Other traffic matches no map key and is left alone (policy accept).
    out.line(1, "chain from_ports {");
    out.line(
        2,
        "type filter hook forward priority filter; policy accept;",
    );
    out.line(2, "ct state established,related accept");
    out.line(2, "iifname . ether saddr vmap @from_port");
    out.line(1, "}");
    out.line(1, "chain to_ports {");
    out.line(
        2,
        "type filter hook forward priority filter + 1; policy accept;",
    );
    out.line(2, "ct state established,related accept");
    out.line(2, "iifname . ether daddr vmap @to_port");
    out.line(1, "}");

    for (stem, port_groups) in &port_chains {
        out.line(1, format!("chain {stem}_egress {{"));
        out.line(2, "ct state invalid drop");
        // A VM is neither a DHCP server nor an IPv6 router.
        out.line(2, "meta nfproto ipv4 udp sport 67 udp dport 68 drop");
        out.line(2, "meta nfproto ipv6 udp sport 547 udp dport 546 drop");
        out.line(2, "icmpv6 type nd-router-advert drop");
        // Getting an address and finding neighbours need no rule (as in Neutron).
        out.line(2, "meta nfproto ipv4 udp sport 68 udp dport 67 accept");
        out.line(2, "meta nfproto ipv6 udp sport 546 udp dport 547 accept");
        out.line(
            2,
            "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, \
             mld-listener-report, mld2-listener-report } accept",
        );
        for group in port_groups {
            out.line(2, format!("jump {}", group_chain(group, Direction::Egress)));
        }
        out.line(2, "drop");
        out.line(1, "}");
        out.line(1, format!("chain {stem}_ingress {{"));
        out.line(2, "ct state invalid drop");
        out.line(2, "meta nfproto ipv4 udp sport 67 udp dport 68 accept");
        out.line(2, "meta nfproto ipv6 udp sport 547 udp dport 546 accept");
        out.line(
            2,
            "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, \
             mld-listener-query } accept",
        );
        for group in port_groups {
            out.line(
                2,
                format!("jump {}", group_chain(group, Direction::Ingress)),
            );
        }
        out.line(2, "drop");
        out.line(1, "}");
    }
    for (name, rules) in &group_chains {
        out.line(1, format!("chain {name} {{"));
        for rule in rules {
            out.line(2, rule);
        }
        out.line(1, "}");
    }
    out.line(0, "}");

    out.line(0, "table bridge yunji {");
    out.line(1, "map port_security {");
    out.line(2, "type ifname : verdict");
    let elements: Vec<String> = ports
        .iter()
        .map(|p| format!("\"{}\" : jump spoof_{}", p.tap, p.tap))
        .collect();
    out.elements(&elements);
    out.line(1, "}");
    out.line(1, "chain prerouting {");
    out.line(
        2,
        "type filter hook prerouting priority filter; policy accept;",
    );
    out.line(2, "iifname vmap @port_security");
    out.line(1, "}");
    for port in &ports {
        port.render_spoof_chain(&mut out);
    }
    out.line(0, "}");
    Ok(out.text)
}

/// Loads a ruleset from [`render`] with `nft -f`, in the caller's network namespace. The
/// ruleset replaces both tables in one transaction; on error the node keeps what it had.
pub async fn apply(ruleset: &str) -> Result<(), FirewallError> {
    run_nft(ruleset).await
}

/// Deletes both tables (agent clean-up, reconciliation); succeeds when they are absent.
pub async fn remove() -> Result<(), FirewallError> {
    run_nft(RESET).await
}

async fn run_nft(transaction: &str) -> Result<(), FirewallError> {
    execute_with_input("nft", ["-f", "-"], transaction.as_bytes(), NFT_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(FirewallError::Nft)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress = 0,
    Egress = 1,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// The nft payload keyword of the family's header.
    fn header(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    fn nfproto(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

fn group_chain(group: &str, direction: Direction) -> String {
    format!("sg_{group}_{}", direction.name())
}

fn remote_set(group: &str, family: Family) -> String {
    format!("remote_{group}_{}", family.suffix())
}

/// Ids become parts of nft names and ifnames: only characters that need no quoting.
fn check_identifier(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("id {id:?} must have 1 to 64 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "id {id:?} may hold only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// A MAC address, printed as nft reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Mac([u8; 6]);

impl Mac {
    fn parse(text: &str) -> Result<Mac, String> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().unwrap_or("");
            if part.len() != 2 {
                return Err(format!("malformed MAC address {text:?}"));
            }
            *byte = u8::from_str_radix(part, 16)
                .map_err(|_| format!("malformed MAC address {text:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("malformed MAC address {text:?}"));
        }
        Ok(Mac(bytes))
    }

    fn hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// An address or a CIDR, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    fn parse(text: &str) -> Result<Prefix, String> {
        let malformed = || format!("malformed address or CIDR {text:?}");
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| malformed())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max)
                .ok_or_else(malformed)?,
        };
        let addr = match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        };
        Ok(Prefix { addr, len })
    }

    /// A single address: no prefix length allowed.
    fn parse_host(text: &str) -> Result<Prefix, String> {
        let addr: IpAddr = text
            .parse()
            .map_err(|_| format!("malformed IP address {text:?}"))?;
        Ok(Prefix {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        })
    }

    fn family(self) -> Family {
        if self.addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The IPv6 range as integers, for matching raw payload (the ND target address).
    fn v6_range(self) -> Option<(u128, u128)> {
        match self.addr {
            IpAddr::V6(v6) => {
                let low = u128::from(v6);
                let host = u128::MAX.checked_shr(u32::from(self.len)).unwrap_or(0);
                Some((low, low | host))
            }
            IpAddr::V4(_) => None,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

fn link_local() -> Prefix {
    Prefix {
        addr: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        len: 10,
    }
}

fn parse_members(group: &SecurityGroupSpec) -> Result<(Vec<Prefix>, Vec<Prefix>), FirewallError> {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    for member in &group.members {
        let prefix = Prefix::parse(member).map_err(|reason| FirewallError::InvalidGroup {
            group: group.id.clone(),
            reason: format!("member: {reason}"),
        })?;
        match prefix.family() {
            Family::V4 => v4.insert(prefix),
            Family::V6 => v6.insert(prefix),
        };
    }
    Ok((v4.into_iter().collect(), v6.into_iter().collect()))
}

/// A port with port security on this node, validated.
struct SecuredPort<'a> {
    id: &'a str,
    tap: String,
    bridge: String,
    mac: Mac,
    /// What each MAC the port may send with may claim: the port's own MAC its fixed IPs
    /// (and pairs without a MAC), each pair's MAC its pair's address.
    addresses: BTreeMap<Mac, BTreeSet<Prefix>>,
    groups: BTreeSet<&'a str>,
}

impl<'a> SecuredPort<'a> {
    fn new(port: &'a PortSpec, vni: u32) -> Result<SecuredPort<'a>, FirewallError> {
        let invalid = |reason: String| FirewallError::InvalidPort {
            port: port.id.clone(),
            reason,
        };
        check_identifier(&port.id).map_err(invalid)?;
        let mac = Mac::parse(&port.mac).map_err(invalid)?;
        let mut addresses: BTreeMap<Mac, BTreeSet<Prefix>> = BTreeMap::new();
        let own = addresses.entry(mac).or_default();
        for fixed in &port.fixed_ips {
            own.insert(
                Prefix::parse_host(&fixed.ip_address)
                    .map_err(|r| invalid(format!("fixed IP: {r}")))?,
            );
        }
        for pair in &port.allowed_address_pairs {
            let pair_mac = if pair.mac_address.is_empty() {
                mac
            } else {
                Mac::parse(&pair.mac_address)
                    .map_err(|r| invalid(format!("allowed address pair: {r}")))?
            };
            let prefix = Prefix::parse(&pair.ip_address)
                .map_err(|r| invalid(format!("allowed address pair: {r}")))?;
            addresses.entry(pair_mac).or_default().insert(prefix);
        }
        let groups = port
            .security_group_ids
            .iter()
            .map(|id| {
                check_identifier(id)
                    .map(|()| &id[..])
                    .map_err(|r| invalid(format!("security group: {r}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(SecuredPort {
            id: &port.id,
            tap: tap_name(&port.id),
            bridge: bridge_name(vni),
            mac,
            addresses,
            groups,
        })
    }

    fn chain_stem(&self) -> String {
        format!("port_{}", self.tap)
    }

    fn render_spoof_chain(&self, out: &mut Ruleset) {
        out.line(1, format!("chain spoof_{} {{", self.tap));
        // DHCP before the guest has an address.
        out.line(
            2,
            format!(
                "ether saddr {} ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept",
                self.mac
            ),
        );
        for (mac, prefixes) in &self.addresses {
            let v4: Vec<Prefix> = prefixes
                .iter()
                .copied()
                .filter(|p| p.family() == Family::V4)
                .collect();
            let mut v6: Vec<Prefix> = prefixes
                .iter()
                .copied()
                .filter(|p| p.family() == Family::V6)
                .collect();
            if !v4.is_empty() {
                let set = anonymous_set(&v4);
                out.line(2, format!("ether saddr {mac} ip saddr {set} accept"));
                out.line(
                    2,
                    format!("ether saddr {mac} arp saddr ether {mac} arp saddr ip {set} accept"),
                );
            }
            // RFC 5227 probes claim no address.
            out.line(
                2,
                format!("ether saddr {mac} arp saddr ether {mac} arp saddr ip 0.0.0.0 accept"),
            );
            v6.push(link_local());
            // A neighbour advertisement may only speak for the port's own addresses
            // (nft 1.0.6 has no `icmpv6 taddr`: the target is 16 bytes at offset 8).
            let targets: Vec<String> = v6
                .iter()
                .filter_map(|p| p.v6_range())
                .map(|(low, high)| {
                    if low == high {
                        format!("0x{low:032x}")
                    } else {
                        format!("0x{low:032x}-0x{high:032x}")
                    }
                })
                .collect();
            out.line(
                2,
                format!(
                    "ether saddr {mac} icmpv6 type nd-neighbor-advert @th,64,128 != {{ {} }} drop",
                    targets.join(", ")
                ),
            );
            out.line(
                2,
                format!("ether saddr {mac} ip6 saddr {} accept", anonymous_set(&v6)),
            );
            // Duplicate address detection and MLD before the guest has an address.
            out.line(
                2,
                format!(
                    "ether saddr {mac} ip6 saddr :: icmpv6 type {{ nd-neighbor-solicit, \
                     mld-listener-report, mld2-listener-report }} accept"
                ),
            );
        }
        out.line(2, "drop");
        out.line(1, "}");
    }
}

fn anonymous_set(prefixes: &[Prefix]) -> String {
    let items: Vec<String> = prefixes.iter().map(Prefix::to_string).collect();
    format!("{{ {} }}", items.join(", "))
}

/// One security group rule as an nft rule line, and the chain direction it belongs to.
struct RenderedRule {
    direction: Direction,
    text: String,
}

/// The protocols a rule can name with ports, and their numbers.
const PORT_PROTOCOLS: [(&str, u8); 5] = [
    ("tcp", 6),
    ("udp", 17),
    ("dccp", 33),
    ("sctp", 132),
    ("udplite", 136),
];

/// Other protocol names Neutron accepts, as numbers (nft needs no /etc/protocols then).
const NAMED_PROTOCOLS: [(&str, u8); 12] = [
    ("igmp", 2),
    ("egp", 8),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ospf", 89),
    ("vrrp", 112),
];

fn render_rule(rule: &SecurityRuleSpec) -> Result<RenderedRule, String> {
    let direction = match rule.direction.as_str() {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        other => return Err(format!("direction {other:?} is neither ingress nor egress")),
    };
    let family = match rule.ethertype.as_str() {
        "IPv4" => Family::V4,
        "IPv6" => Family::V6,
        other => return Err(format!("ethertype {other:?} is neither IPv4 nor IPv6")),
    };
    let mut parts = vec![format!("meta nfproto {}", family.nfproto())];
    // The remote end: the source of ingress traffic, the destination of egress.
    let remote_field = match direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    match (&rule.remote_ip_prefix, &rule.remote_group_id) {
        (Some(_), Some(_)) => {
            return Err("remote_ip_prefix and remote_group_id are exclusive".to_string());
        }
        (Some(prefix), None) => {
            let prefix = Prefix::parse(prefix).map_err(|r| format!("remote_ip_prefix: {r}"))?;
            if prefix.family() != family {
                return Err(format!(
                    "remote_ip_prefix {prefix} is not an {} prefix",
                    rule.ethertype
                ));
            }
            // A /0 matches everything: no match needed.
            if prefix.len > 0 {
                parts.push(format!("{} {remote_field} {prefix}", family.header()));
            }
        }
        (None, Some(group)) => {
            check_identifier(group).map_err(|r| format!("remote_group_id: {r}"))?;
            parts.push(format!(
                "{} {remote_field} @{}",
                family.header(),
                remote_set(group, family)
            ));
        }
        (None, None) => {}
    }

    let protocol = rule.protocol.as_deref().map(str::to_ascii_lowercase);
    let number = protocol.as_deref().and_then(|p| p.parse::<u8>().ok());
    let port_protocol = PORT_PROTOCOLS
        .iter()
        .find(|(name, n)| protocol.as_deref() == Some(*name) || number == Some(*n))
        .map(|(name, _)| *name);
    let is_icmp = matches!(protocol.as_deref(), Some("icmp" | "icmpv6" | "ipv6-icmp"))
        || number == Some(1)
        || number == Some(58);
    let (min, max) = (rule.port_range_min, rule.port_range_max);
    if min.is_none() && max.is_some() {
        return Err("port_range_max without port_range_min".to_string());
    }
    if let Some(name) = port_protocol {
        match (min, max) {
            (None, _) => parts.push(format!("meta l4proto {name}")),
            (Some(low), high) => {
                let high = high.unwrap_or(low);
                if low == 0 || high > 65535 || low > high {
                    return Err(format!("port range {low}-{high} is not within 1-65535"));
                }
                if low == high {
                    parts.push(format!("{name} dport {low}"));
                } else {
                    parts.push(format!("{name} dport {low}-{high}"));
                }
            }
        }
    } else if is_icmp {
        let v4_only = protocol.as_deref() == Some("icmp") || number == Some(1);
        let (keyword, l4) = match family {
            // Neutron takes `icmp` on an IPv6 rule as ICMPv6.
            Family::V6 => ("icmpv6", "ipv6-icmp"),
            Family::V4 if v4_only => ("icmp", "icmp"),
            Family::V4 => return Err("ICMPv6 in an IPv4 rule".to_string()),
        };
        match (min, max) {
            (None, _) => parts.push(format!("meta l4proto {l4}")),
            (Some(icmp_type), code) => {
                if icmp_type > 255 || code.is_some_and(|c| c > 255) {
                    return Err("ICMP type and code must be within 0-255".to_string());
                }
                parts.push(format!("{keyword} type {icmp_type}"));
                if let Some(code) = code {
                    parts.push(format!("{keyword} code {code}"));
                }
            }
        }
    } else {
        if min.is_some() {
            return Err(format!(
                "a port range needs tcp, udp, sctp, udplite, dccp or icmp, not {:?}",
                rule.protocol.as_deref().unwrap_or("any")
            ));
        }
        match protocol.as_deref() {
            None | Some("any") => {}
            Some(name) => {
                let number = number
                    .or_else(|| {
                        NAMED_PROTOCOLS
                            .iter()
                            .find(|(known, _)| *known == name)
                            .map(|(_, n)| *n)
                    })
                    .ok_or_else(|| format!("unknown protocol {name:?}"))?;
                parts.push(format!("meta l4proto {number}"));
            }
        }
    }
    parts.push("accept".to_string());
    Ok(RenderedRule {
        direction,
        text: parts.join(" "),
    })
}

/// The ruleset text, indented as `nft list ruleset` would print it.
#[derive(Default)]
struct Ruleset {
    text: String,
}

impl Ruleset {
    fn line(&mut self, depth: usize, line: impl AsRef<str>) {
        for _ in 0..depth {
            self.text.push('\t');
        }
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn elements(&mut self, elements: &[String]) {
        if !elements.is_empty() {
            self.line(
                2,
                format!("elements = {{ {} }}", elements.join(",\n\t\t\t")),
            );
        }
    }

    fn set(&mut self, name: &str, kind: &str, prefixes: &[Prefix]) {
        self.line(1, format!("set {name} {{"));
        self.line(2, format!("type {kind}"));
        // Members may be CIDRs (allowed address pairs) that overlap single addresses.
        self.line(2, "flags interval");
        self.line(2, "auto-merge");
        let items: Vec<String> = prefixes.iter().map(Prefix::to_string).collect();
        self.elements(&items);
        self.line(1, "}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yunji_common::agent_api::{AddressPairSpec, NetworkSpec, PortAddressSpec};

    const WEB: &str = "11111111-aaaa-4000-8000-000000000001";
    const CLIENTS: &str = "22222222-bbbb-4000-8000-000000000002";

    fn port(id: &str, mac: &str, ip: &str, groups: &[&str]) -> PortSpec {
        PortSpec {
            id: id.to_string(),
            network_id: "net-a".to_string(),
            server_id: None,
            mac: mac.to_string(),
            fixed_ips: vec![PortAddressSpec {
                subnet_id: "subnet-a".to_string(),
                ip_address: ip.to_string(),
            }],
            port_security_enabled: true,
            allowed_address_pairs: Vec::new(),
            security_group_ids: groups.iter().map(|g| g.to_string()).collect(),
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

    fn ports_rule(protocol: &str, min: u32, max: u32) -> SecurityRuleSpec {
        SecurityRuleSpec {
            port_range_min: Some(min),
            port_range_max: Some(max),
            ..rule("ingress", "IPv4", Some(protocol))
        }
    }

    /// Ports A and B (web) and C (clients) on this node, D (clients) elsewhere.
    fn spec(web_rules: Vec<SecurityRuleSpec>) -> NodeNetworkSpec {
        NodeNetworkSpec {
            generation: 1,
            networks: vec![NetworkSpec {
                id: "net-a".to_string(),
                vni: 5,
                mtu: 1450,
                subnets: Vec::new(),
                peers: Vec::new(),
            }],
            ports: vec![
                port(
                    "aaaaaaaa-aaaa-aaaa",
                    "52:54:00:00:00:01",
                    "10.50.0.1",
                    &[WEB],
                ),
                port(
                    "bbbbbbbb-bbbb-bbbb",
                    "52:54:00:00:00:02",
                    "10.50.0.2",
                    &[WEB],
                ),
                port(
                    "cccccccc-cccc-cccc",
                    "52:54:00:00:00:03",
                    "10.50.0.3",
                    &[CLIENTS],
                ),
                port(
                    "dddddddd-dddd-dddd",
                    "52:54:00:00:00:04",
                    "10.50.0.4",
                    &[CLIENTS],
                ),
            ],
            security_groups: vec![
                SecurityGroupSpec {
                    id: WEB.to_string(),
                    rules: web_rules,
                    members: vec!["10.50.0.1".to_string(), "10.50.0.2".to_string()],
                },
                SecurityGroupSpec {
                    id: CLIENTS.to_string(),
                    rules: vec![rule("egress", "IPv4", None)],
                    members: vec!["10.50.0.4".to_string(), "10.50.0.3".to_string()],
                },
            ],
            routers: Vec::new(),
            load_balancers: Vec::new(),
            underlay: None,
        }
    }

    fn not_d(port: &PortSpec) -> bool {
        !port.id.starts_with('d')
    }

    #[test]
    fn tcp_port_from_a_prefix_renders_into_the_group_chain() {
        let ssh = SecurityRuleSpec {
            remote_ip_prefix: Some("203.0.113.7/24".to_string()),
            ..ports_rule("tcp", 22, 22)
        };

        let ruleset = render(&spec(vec![ssh]), not_d).unwrap();

        assert!(ruleset.contains(&format!(
            "\tchain sg_{WEB}_ingress {{\n\t\tmeta nfproto ipv4 ip saddr 203.0.113.0/24 tcp dport 22 accept\n\t}}"
        )));
    }

    #[test]
    fn remote_group_rule_matches_the_group_members_set() {
        let from_clients = SecurityRuleSpec {
            remote_group_id: Some(CLIENTS.to_string()),
            ..ports_rule("tcp", 8000, 8080)
        };

        let ruleset = render(&spec(vec![from_clients]), not_d).unwrap();

        assert!(ruleset.contains(&format!(
            "meta nfproto ipv4 ip saddr @remote_{CLIENTS}_v4 tcp dport 8000-8080 accept"
        )));
        assert!(ruleset.contains(&format!(
            "\tset remote_{CLIENTS}_v4 {{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t\telements = {{ 10.50.0.3,\n\t\t\t10.50.0.4 }}\n\t}}"
        )));
        assert!(ruleset.contains(&format!("\tset remote_{CLIENTS}_v6 {{")));
        assert!(!ruleset.contains(&format!("set remote_{WEB}")));
    }

    #[test]
    fn egress_remote_group_matches_the_destination() {
        let to_clients = SecurityRuleSpec {
            remote_group_id: Some(CLIENTS.to_string()),
            ..rule("egress", "IPv4", Some("udp"))
        };

        let ruleset = render(&spec(vec![to_clients]), not_d).unwrap();

        assert!(ruleset.contains(&format!(
            "\tchain sg_{WEB}_egress {{\n\t\tmeta nfproto ipv4 ip daddr @remote_{CLIENTS}_v4 meta l4proto udp accept\n"
        )));
    }

    #[test]
    fn icmp_type_and_code_come_from_the_port_range() {
        let echo = ports_rule("icmp", 8, 0);
        let any_unreachable = SecurityRuleSpec {
            port_range_max: None,
            ..ports_rule("1", 3, 0)
        };

        let ruleset = render(&spec(vec![echo, any_unreachable]), not_d).unwrap();

        assert!(ruleset.contains("meta nfproto ipv4 icmp type 8 icmp code 0 accept"));
        assert!(ruleset.contains("meta nfproto ipv4 icmp type 3 accept"));
    }

    #[test]
    fn ipv6_rules_use_ip6_and_icmpv6() {
        let dns = SecurityRuleSpec {
            remote_ip_prefix: Some("2001:db8::1/64".to_string()),
            port_range_min: Some(53),
            port_range_max: Some(53),
            ..rule("ingress", "IPv6", Some("udp"))
        };
        let ping6 = SecurityRuleSpec {
            port_range_min: Some(128),
            ..rule("ingress", "IPv6", Some("icmp"))
        };
        let gre = rule("egress", "IPv6", Some("gre"));

        let ruleset = render(&spec(vec![dns, ping6, gre]), not_d).unwrap();

        assert!(ruleset.contains("meta nfproto ipv6 ip6 saddr 2001:db8::/64 udp dport 53 accept"));
        assert!(ruleset.contains("meta nfproto ipv6 icmpv6 type 128 accept"));
        assert!(ruleset.contains("meta nfproto ipv6 meta l4proto 47 accept"));
    }

    #[test]
    fn ports_are_found_by_bridge_and_mac_and_jump_to_their_groups() {
        let ruleset = render(&spec(Vec::new()), not_d).unwrap();

        assert!(
            ruleset.contains("\"ybr-5\" . 52:54:00:00:00:02 : jump port_tapbbbbbbbb-bb_ingress")
        );
        assert!(
            ruleset.contains("\"ybr-5\" . 52:54:00:00:00:03 : jump port_tapcccccccc-cc_egress")
        );
        assert!(ruleset.contains(&format!(
            "\t\tjump sg_{WEB}_ingress\n\t\tdrop\n\t}}\n\tchain port_tapcccccccc-cc_egress {{"
        )));
        assert!(ruleset.contains("ct zone set iifname map { \"ybr-5\" : 5 }"));
        assert!(ruleset.starts_with(RESET));
    }

    #[test]
    fn ports_of_other_nodes_get_no_chains() {
        let ruleset = render(&spec(Vec::new()), not_d).unwrap();

        assert!(ruleset.contains("tapaaaaaaaa-aa"));
        assert!(!ruleset.contains("tapdddddddd-dd"));
        assert!(!ruleset.contains("52:54:00:00:00:04"));
    }

    #[test]
    fn port_security_off_leaves_the_port_unfiltered() {
        let mut spec = spec(Vec::new());
        spec.ports[1].port_security_enabled = false;

        let ruleset = render(&spec, not_d).unwrap();

        assert!(!ruleset.contains("tapbbbbbbbb-bb"));
        assert!(!ruleset.contains("52:54:00:00:00:02"));
        assert!(ruleset.contains("\"tapaaaaaaaa-aa\" : jump spoof_tapaaaaaaaa-aa"));
    }

    #[test]
    fn anti_spoofing_allows_only_the_port_mac_and_addresses() {
        let ruleset = render(&spec(Vec::new()), not_d).unwrap();

        let chain = "\tchain spoof_tapaaaaaaaa-aa {\n\
            \t\tether saddr 52:54:00:00:00:01 ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept\n\
            \t\tether saddr 52:54:00:00:00:01 ip saddr { 10.50.0.1 } accept\n\
            \t\tether saddr 52:54:00:00:00:01 arp saddr ether 52:54:00:00:00:01 arp saddr ip { 10.50.0.1 } accept\n\
            \t\tether saddr 52:54:00:00:00:01 arp saddr ether 52:54:00:00:00:01 arp saddr ip 0.0.0.0 accept\n\
            \t\tether saddr 52:54:00:00:00:01 icmpv6 type nd-neighbor-advert @th,64,128 != { 0xfe800000000000000000000000000000-0xfebfffffffffffffffffffffffffffff } drop\n\
            \t\tether saddr 52:54:00:00:00:01 ip6 saddr { fe80::/10 } accept\n\
            \t\tether saddr 52:54:00:00:00:01 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept\n\
            \t\tdrop\n\
            \t}\n";
        assert!(ruleset.contains(chain), "{ruleset}");
    }

    #[test]
    fn allowed_address_pairs_add_addresses_and_macs() {
        let mut spec = spec(Vec::new());
        spec.ports[0].allowed_address_pairs = vec![
            AddressPairSpec {
                ip_address: "10.50.0.100".to_string(),
                mac_address: String::new(),
            },
            AddressPairSpec {
                ip_address: "10.60.0.0/16".to_string(),
                mac_address: "00:00:5E:00:01:07".to_string(),
            },
            AddressPairSpec {
                ip_address: "fd00::17".to_string(),
                mac_address: "00:00:5e:00:01:07".to_string(),
            },
        ];

        let ruleset = render(&spec, not_d).unwrap();

        assert!(
            ruleset.contains(
                "ether saddr 52:54:00:00:00:01 ip saddr { 10.50.0.1, 10.50.0.100 } accept"
            )
        );
        assert!(ruleset.contains("ether saddr 00:00:5e:00:01:07 ip saddr { 10.60.0.0/16 } accept"));
        assert!(ruleset.contains(
            "ether saddr 00:00:5e:00:01:07 arp saddr ether 00:00:5e:00:01:07 arp saddr ip { 10.60.0.0/16 } accept"
        ));
        assert!(
            ruleset
                .contains("ether saddr 00:00:5e:00:01:07 ip6 saddr { fd00::17, fe80::/10 } accept")
        );
        assert!(ruleset.contains("0xfd000000000000000000000000000017, 0xfe80"));
        assert!(
            ruleset.contains("\"ybr-5\" . 00:00:5e:00:01:07 : jump port_tapaaaaaaaa-aa_ingress")
        );
    }

    #[test]
    fn a_mac_shared_by_two_ports_gets_the_union_of_their_groups() {
        let mut spec = spec(Vec::new());
        for index in [0, 2] {
            spec.ports[index].allowed_address_pairs = vec![AddressPairSpec {
                ip_address: "10.50.0.100".to_string(),
                mac_address: "00:00:5e:00:01:07".to_string(),
            }];
        }

        let ruleset = render(&spec, not_d).unwrap();

        assert!(
            ruleset
                .contains("\"ybr-5\" . 00:00:5e:00:01:07 : jump shared_ybr-5_00005e000107_ingress")
        );
        assert!(
            ruleset.contains(
                "\tchain shared_ybr-5_00005e000107_ingress {\n\t\tct state invalid drop\n"
            )
        );
        assert!(ruleset.contains(&format!(
            "\t\tjump sg_{WEB}_ingress\n\t\tjump sg_{CLIENTS}_ingress\n\t\tdrop\n"
        )));
    }

    #[test]
    fn malformed_fixed_ip_names_the_port() {
        let mut spec = spec(Vec::new());
        spec.ports[2].fixed_ips[0].ip_address = "10.50.0.300".to_string();

        let error = render(&spec, not_d).unwrap_err().to_string();

        assert_eq!(
            error,
            "port cccccccc-cccc-cccc: fixed IP: malformed IP address \"10.50.0.300\""
        );
    }

    #[test]
    fn malformed_mac_names_the_port() {
        let mut spec = spec(Vec::new());
        spec.ports[0].mac = "52:54:00:00:00".to_string();

        let error = render(&spec, not_d).unwrap_err().to_string();

        assert!(
            error.starts_with("port aaaaaaaa-aaaa-aaaa: malformed MAC"),
            "{error}"
        );
    }

    #[test]
    fn malformed_or_mismatched_rules_name_the_group_and_rule() {
        let bad_prefix = SecurityRuleSpec {
            remote_ip_prefix: Some("10.0.0.0/33".to_string()),
            ..rule("ingress", "IPv4", None)
        };
        let v6_prefix_in_v4_rule = SecurityRuleSpec {
            remote_ip_prefix: Some("fd00::/8".to_string()),
            ..rule("ingress", "IPv4", None)
        };
        let ports_on_gre = ports_rule("gre", 1, 2);
        let reversed_range = ports_rule("tcp", 90, 80);
        let cases = [
            (bad_prefix, "malformed address or CIDR \"10.0.0.0/33\""),
            (v6_prefix_in_v4_rule, "is not an IPv4 prefix"),
            (ports_on_gre, "a port range needs"),
            (reversed_range, "port range 90-80"),
            (rule("sideways", "IPv4", None), "direction \"sideways\""),
            (rule("ingress", "IPX", None), "ethertype \"IPX\""),
            (rule("ingress", "IPv4", Some("bogus")), "unknown protocol"),
        ];

        for (bad, expected) in cases {
            let error = render(&spec(vec![rule("ingress", "IPv4", None), bad]), not_d)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&format!("security group {WEB}, rule 1: ")),
                "{error}"
            );
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn malformed_member_names_the_group() {
        let from_clients = SecurityRuleSpec {
            remote_group_id: Some(CLIENTS.to_string()),
            ..rule("ingress", "IPv4", None)
        };
        let mut spec = spec(vec![from_clients]);
        spec.security_groups[1]
            .members
            .push("not-an-address".to_string());

        let error = render(&spec, not_d).unwrap_err().to_string();

        assert!(
            error.starts_with(&format!("security group {CLIENTS}: member: ")),
            "{error}"
        );
    }

    #[test]
    fn a_group_the_scheduler_did_not_send_allows_nothing() {
        let mut spec = spec(Vec::new());
        spec.ports[0].security_group_ids = vec!["missing".to_string()];

        let ruleset = render(&spec, not_d).unwrap();

        assert!(ruleset.contains("\tchain sg_missing_ingress {\n\t}\n"));
    }

    #[test]
    fn zones_fold_large_vnis_and_never_use_zero() {
        assert_eq!(conntrack_zone(1), 1);
        assert_eq!(conntrack_zone(65535), 65535);
        assert_eq!(conntrack_zone(65536), 1);
        assert_eq!(tap_name("0123456789abcdef"), "tap0123456789a");
    }
}
