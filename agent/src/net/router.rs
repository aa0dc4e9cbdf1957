//! Routers on the node, as Neutron's L3 agent builds them: per router a network
//! namespace `yrt-<id>` with forwarding on, joined to each of its networks by a veth pair
//! whose node end is named like a VM tap ([`tap_name`] of the router port, so the links
//! module enslaves it to the network's bridge) and whose router end (`qg-…` for the
//! gateway, `qr-…` for an interface) carries the port's MAC and addresses; and in that
//! namespace one nftables table `ip yunji-nat`: DNAT of floating IPs to their fixed IPs,
//! SNAT of those fixed IPs back to their floating IPs, and SNAT of the interface subnets
//! to the gateway address. The namespace keeps tenant routing out of the node's own IP
//! stack, whose addresses may overlap the tenants'.
//!
//! The namespaces live in `/run/netns`, shared by every network namespace on the host;
//! a router belongs to this node when it has a namespace id here (assigned when it is
//! made), so that nodes of a one-machine rig never remove each other's routers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use rustix::io::Errno;
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use tokio::task::JoinHandle;
use yunji_common::agent_api::{NodeNetworkSpec, RouterSpec};
use yunji_common::execute::execute;

use super::{netns, parse_mac, tap_name};

/// Every router namespace is named this prefix and the first 11 characters of its id.
pub const NAMESPACE_PREFIX: &str = "yrt-";
/// The router end of the gateway port's veth: this prefix and 11 characters of the port id.
const GATEWAY_PREFIX: &str = "qg-";
/// The router end of an interface port's veth.
const INTERFACE_PREFIX: &str = "qr-";
const NAT_TABLE: &str = "yunji-nat";
/// How long `nft` may take to load one router's NAT table.
const NFT_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, naming the router and the step.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("router {router}: {reason}")]
    Invalid { router: String, reason: String },
    #[error("router {router}: cannot {step}")]
    Step {
        router: String,
        step: String,
        #[source]
        source: BoxError,
    },
    #[error("routers: cannot {step}")]
    Node {
        step: String,
        #[source]
        source: BoxError,
    },
}

/// The namespace of a router.
pub fn namespace_name(router_id: &str) -> String {
    format!(
        "{NAMESPACE_PREFIX}{}",
        router_id.chars().take(11).collect::<String>()
    )
}

/// A router as the node must carry it, derived and validated from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPlan {
    pub id: String,
    pub namespace: String,
    /// The gateway port first, then the interface ports by id.
    pub ports: Vec<RouterPortPlan>,
    /// The external subnet's gateway: the router's default route, on the gateway port.
    pub default_gateway: Option<Ipv4Addr>,
    /// The `nft -f` transaction of the router's NAT table.
    pub nat: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterPortPlan {
    pub port_id: String,
    /// The veth end in the node's namespace: the port's tap name.
    pub outer: String,
    /// The veth end in the router's namespace.
    pub inner: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// With their subnets' prefix lengths; floating IPs as /32 on the gateway port.
    pub addresses: BTreeSet<IpNet>,
}

/// The routers of a spec, ordered by id. Pure: every id, address and reference is
/// checked here, so that a bad spec fails naming the router before anything changes.
pub fn plan(spec: &NodeNetworkSpec) -> Result<Vec<RouterPlan>, RouterError> {
    let mut routers = Vec::with_capacity(spec.routers.len());
    let mut namespaces = BTreeMap::new();
    for router in &spec.routers {
        let planned = plan_router(spec, router)?;
        if let Some(other) = namespaces.insert(planned.namespace.clone(), router.id.clone()) {
            return Err(RouterError::Invalid {
                router: router.id.clone(),
                reason: format!(
                    "its namespace {} is router {other}'s too",
                    planned.namespace
                ),
            });
        }
        routers.push(planned);
    }
    routers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(routers)
}

fn plan_router(spec: &NodeNetworkSpec, router: &RouterSpec) -> Result<RouterPlan, RouterError> {
    let invalid = |reason: String| RouterError::Invalid {
        router: router.id.clone(),
        reason,
    };
    check_identifier(&router.id).map_err(invalid)?;
    let mut ports: Vec<RouterPortPlan> = Vec::new();
    let mut gateway_address = None;
    let mut default_gateway = None;
    let mut gateway_inner = None;
    if let Some(gateway) = &router.gateway {
        let mut port = port_plan(spec, &gateway.port_id, &gateway.network_id, GATEWAY_PREFIX)
            .map_err(|reason| invalid(format!("gateway: {reason}")))?;
        let network = spec
            .networks
            .iter()
            .find(|n| n.id == gateway.network_id)
            .ok_or_else(|| {
                invalid(format!(
                    "gateway: network {} is not in the spec",
                    gateway.network_id
                ))
            })?;
        for text in &gateway.addresses {
            let address: IpAddr = text
                .parse()
                .map_err(|_| invalid(format!("gateway address {text:?} is not an IP address")))?;
            let subnet = network
                .subnets
                .iter()
                .filter_map(|s| Some((s, s.cidr.parse::<IpNet>().ok()?)))
                .find(|(_, cidr)| cidr.contains(&address))
                .ok_or_else(|| {
                    invalid(format!(
                        "gateway address {address} is in no subnet of network {}",
                        network.id
                    ))
                })?;
            port.addresses
                .insert(host_in(address, subnet.1.prefix_len()));
            if let IpAddr::V4(v4) = address
                && gateway_address.is_none()
            {
                gateway_address = Some(v4);
                default_gateway = match subnet.0.gateway_ip.as_deref() {
                    Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
                        invalid(format!("external gateway {text:?} is not an IPv4 address"))
                    })?),
                    None => None,
                };
            }
        }
        gateway_inner = Some(port.inner.clone());
        ports.push(port);
    }

    let mut floating = Vec::new();
    for fip in &router.floating_ips {
        let parse = |text: &str| {
            text.parse::<Ipv4Addr>().map_err(|_| {
                invalid(format!(
                    "floating IP {}: {text:?} is not an IPv4 address",
                    fip.id
                ))
            })
        };
        let pair = (parse(&fip.floating_ip)?, parse(&fip.fixed_ip)?);
        if ports.is_empty() {
            return Err(invalid(format!(
                "floating IP {} needs the router's gateway",
                fip.id
            )));
        }
        ports[0].addresses.insert(host_in(IpAddr::V4(pair.0), 32));
        floating.push(pair);
    }

    let mut snat_sources = BTreeSet::new();
    let mut interfaces: BTreeMap<&str, RouterPortPlan> = BTreeMap::new();
    for interface in &router.interfaces {
        let at =
            |reason: String| invalid(format!("interface port {}: {reason}", interface.port_id));
        if !interfaces.contains_key(interface.port_id.as_str()) {
            let port = port_plan(
                spec,
                &interface.port_id,
                &interface.network_id,
                INTERFACE_PREFIX,
            )
            .map_err(at)?;
            interfaces.insert(&interface.port_id, port);
        }
        let subnet = spec
            .networks
            .iter()
            .filter(|n| n.id == interface.network_id)
            .flat_map(|n| n.subnets.iter())
            .find(|s| s.id == interface.subnet_id)
            .ok_or_else(|| at(format!("subnet {} is not in the spec", interface.subnet_id)))?;
        let cidr: IpNet = subnet.cidr.parse().map_err(|_| {
            at(format!(
                "subnet {} has a malformed CIDR {:?}",
                subnet.id, subnet.cidr
            ))
        })?;
        let address: IpAddr = interface.address.parse().map_err(|_| {
            at(format!(
                "address {:?} is not an IP address",
                interface.address
            ))
        })?;
        if !cidr.contains(&address) {
            return Err(at(format!(
                "address {address} is outside its subnet {cidr}"
            )));
        }
        if let Some(port) = interfaces.get_mut(interface.port_id.as_str()) {
            port.addresses.insert(host_in(address, cidr.prefix_len()));
        }
        if let IpNet::V4(v4) = cidr {
            snat_sources.insert(v4.trunc());
        }
    }
    ports.extend(interfaces.into_values());

    let snat = router
        .gateway
        .as_ref()
        .filter(|g| g.enable_snat)
        .and(gateway_address)
        .filter(|_| !snat_sources.is_empty())
        .map(|to| (snat_sources.into_iter().collect::<Vec<_>>(), to));
    let nat = render_nat(gateway_inner.as_deref(), &floating, snat.as_ref());
    Ok(RouterPlan {
        id: router.id.clone(),
        namespace: namespace_name(&router.id),
        ports,
        default_gateway,
        nat,
    })
}

/// The plan of one router port, its addresses still empty.
fn port_plan(
    spec: &NodeNetworkSpec,
    port_id: &str,
    network_id: &str,
    inner_prefix: &str,
) -> Result<RouterPortPlan, String> {
    check_identifier(port_id)?;
    let port = spec
        .ports
        .iter()
        .find(|p| p.id == port_id)
        .ok_or_else(|| format!("port {port_id} is not in the node's ports"))?;
    if port.network_id != network_id {
        return Err(format!(
            "port {port_id} is on network {}, not {network_id}",
            port.network_id
        ));
    }
    let network = spec
        .networks
        .iter()
        .find(|n| n.id == network_id)
        .ok_or_else(|| format!("network {network_id} is not in the spec"))?;
    Ok(RouterPortPlan {
        port_id: port_id.to_string(),
        outer: tap_name(port_id),
        inner: format!(
            "{inner_prefix}{}",
            port_id.chars().take(11).collect::<String>()
        ),
        mac: parse_mac(&port.mac)
            .ok_or_else(|| format!("port {port_id}: malformed MAC {:?}", port.mac))?,
        mtu: network.mtu,
        addresses: BTreeSet::new(),
    })
}

/// An address with its subnet's prefix length (host bits kept).
fn host_in(address: IpAddr, prefix_len: u8) -> IpNet {
    // The prefix length comes from a parsed CIDR of the same family.
    IpNet::new(address, prefix_len).unwrap_or_else(|_| IpNet::from(address))
}

/// Ids become parts of interface, namespace and nft names: no character needing quotes.
fn check_identifier(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "id {id:?} must be 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

/// The router's NAT table as one transaction replacing the old one. `gateway` is the
/// router end of the gateway port; `floating` pairs (floating, fixed); `snat` the
/// interface subnets SNATed to the gateway address.
fn render_nat(
    gateway: Option<&str>,
    floating: &[(Ipv4Addr, Ipv4Addr)],
    snat: Option<&(Vec<ipnet::Ipv4Net>, Ipv4Addr)>,
) -> String {
    let mut out = format!(
        "table ip {NAT_TABLE} {{}}\ndelete table ip {NAT_TABLE}\ntable ip {NAT_TABLE} {{\n"
    );
    out.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    for (floating_ip, fixed_ip) in floating {
        out.push_str(&format!("\t\tip daddr {floating_ip} dnat to {fixed_ip}\n"));
    }
    out.push_str("\t}\n");
    out.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    if let Some(gateway) = gateway {
        // A VM with a floating IP leaves by it; the first SNAT that matches wins.
        for (floating_ip, fixed_ip) in floating {
            out.push_str(&format!(
                "\t\toifname \"{gateway}\" ip saddr {fixed_ip} snat to {floating_ip}\n"
            ));
        }
        if let Some((subnets, to)) = snat {
            let subnets: Vec<String> = subnets.iter().map(|s| s.to_string()).collect();
            out.push_str(&format!(
                "\t\toifname \"{gateway}\" ip saddr {{ {} }} snat to {to}\n",
                subnets.join(", ")
            ));
        }
    }
    out.push_str("\t}\n}\n");
    out
}

/// The node's routers, over a netlink connection in the node's namespace. Create it
/// inside the namespace whose bridges the routers attach to, in the tokio runtime that
/// will run it.
pub struct Routers {
    node: Handle,
    connection: JoinHandle<()>,
    /// The NAT transaction last loaded, by namespace: an unchanged table is not reloaded.
    loaded_nat: BTreeMap<String, String>,
}

impl Drop for Routers {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A link as a router step needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkState {
    index: u32,
    name: String,
    kind: Option<InfoKind>,
    mac: Option<Vec<u8>>,
    mtu: Option<u32>,
    up: bool,
}

impl LinkState {
    fn of(message: &LinkMessage) -> LinkState {
        let mut state = LinkState {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            up: message.header.flags.contains(LinkFlags::Up),
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => state.name = name.clone(),
                LinkAttribute::Address(mac) => state.mac = Some(mac.clone()),
                LinkAttribute::Mtu(mtu) => state.mtu = Some(*mtu),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            state.kind = Some(kind.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        state
    }
}

/// A netlink connection opened inside a router's namespace; its task ends on drop.
struct Inside {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for Inside {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Routers {
    pub fn new() -> Result<Routers, RouterError> {
        let (connection, node, _) =
            rtnetlink::new_connection().map_err(|source| RouterError::Node {
                step: "open a netlink connection".into(),
                source: source.into(),
            })?;
        Ok(Routers {
            node,
            connection: tokio::spawn(connection),
            loaded_nat: BTreeMap::new(),
        })
    }

    /// Makes the node carry exactly `routers`: the others of this node are removed whole,
    /// then each is made or corrected. Re-applying the same plan changes nothing.
    pub async fn carry(&mut self, routers: &[RouterPlan]) -> Result<(), RouterError> {
        let keep = routers.iter().map(|r| r.namespace.clone()).collect();
        self.remove_except(&keep).await?;
        for router in routers {
            self.ensure(router).await?;
        }
        Ok(())
    }

    /// Removes every router namespace of this node not in `keep` (namespace names),
    /// with its veths.
    pub async fn remove_except(&mut self, keep: &BTreeSet<String>) -> Result<(), RouterError> {
        for namespace in self.present().await? {
            if !keep.contains(&namespace) {
                self.remove(&namespace).await?;
            }
        }
        Ok(())
    }

    /// The namespaces of this node's routers, sorted.
    pub async fn present(&self) -> Result<Vec<String>, RouterError> {
        let failed = |step: &str, source: BoxError| RouterError::Node {
            step: step.to_string(),
            source,
        };
        let mut found = Vec::new();
        let mut entries = match tokio::fs::read_dir(netns::NETNS_DIR).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(error) => return Err(failed(&format!("list {}", netns::NETNS_DIR), error.into())),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| failed(&format!("list {}", netns::NETNS_DIR), e.into()))?
        {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !name.starts_with(NAMESPACE_PREFIX) {
                continue;
            }
            let file = match tokio::fs::File::open(entry.path()).await {
                Ok(file) => file.into_std().await,
                // Removed meanwhile.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(failed(&format!("open namespace {name}"), error.into())),
            };
            // A name whose namespace is mounted in another mount namespace only (an
            // agent run by `ip netns exec` has its own) is a plain file here: not ours.
            if !netns::is_namespace(&file) {
                continue;
            }
            let id = namespace_id(&self.node, &file)
                .await
                .map_err(|e| failed(&format!("read the id of namespace {name}"), e))?;
            if id >= 0 {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Deletes the router's veths (synchronously, so that a router made again at once
    /// finds no leftover) and then its namespace.
    async fn remove(&mut self, namespace: &str) -> Result<(), RouterError> {
        tracing::info!(%namespace, "removing a router the node no longer carries");
        let step = |step: String| {
            move |source: BoxError| RouterError::Step {
                router: namespace.to_string(),
                step,
                source,
            }
        };
        self.loaded_nat.remove(namespace);
        let inside = open_inside(namespace)
            .await
            .map_err(step("open a netlink connection in its namespace".into()))?;
        for link in list_links(&inside.handle)
            .await
            .map_err(step("list its links".into()))?
        {
            if link.kind == Some(InfoKind::Veth) {
                delete_link(&inside.handle, link.index)
                    .await
                    .map_err(step(format!("delete its link {}", link.name)))?;
            }
        }
        drop(inside);
        netns::delete(&netns::path(namespace))
            .await
            .map_err(|e| step("delete its namespace".into())(e.into()))
    }

    /// Makes one router exist as planned.
    async fn ensure(&mut self, router: &RouterPlan) -> Result<(), RouterError> {
        let step = |step: &str| {
            let step = step.to_string();
            move |source: BoxError| RouterError::Step {
                router: router.id.clone(),
                step,
                source,
            }
        };
        let path = netns::path(&router.namespace);
        if !tokio::fs::try_exists(&path)
            .await
            .map_err(|e| step("look for its namespace")(e.into()))?
        {
            tracing::info!(router = %router.id, namespace = %router.namespace, "creating router namespace");
            self.loaded_nat.remove(&router.namespace);
            netns::create(&path)
                .await
                .map_err(|e| step("create its namespace")(e.into()))?;
            let file = open_namespace(&path)
                .await
                .map_err(step("open its namespace"))?;
            assign_namespace_id(&self.node, &file)
                .await
                .map_err(step("give its namespace an id in the node's"))?;
        } else {
            let file = open_namespace(&path)
                .await
                .map_err(step("open its namespace"))?;
            let id = namespace_id(&self.node, &file)
                .await
                .map_err(step("read the id of its namespace"))?;
            if id < 0 {
                // Another node's of a one-machine rig: never take it over.
                return Err(step("use its namespace")(
                    format!("{} belongs to another node", router.namespace).into(),
                ));
            }
        }
        run_on_thread(Some(path.clone()), enable_forwarding)
            .await
            .map_err(step("turn on forwarding"))?;
        let inside = open_inside(&router.namespace)
            .await
            .map_err(step("open a netlink connection in its namespace"))?;
        let links = list_links(&inside.handle)
            .await
            .map_err(step("list its links"))?;
        if let Some(lo) = links.iter().find(|l| l.name == "lo")
            && !lo.up
        {
            set_link(
                &inside.handle,
                LinkUnspec::new_with_index(lo.index).up().build(),
            )
            .await
            .map_err(step("bring up lo"))?;
        }
        let wanted: BTreeSet<&str> = router.ports.iter().map(|p| p.inner.as_str()).collect();
        for stale in links.iter().filter(|l| {
            (l.name.starts_with(GATEWAY_PREFIX) || l.name.starts_with(INTERFACE_PREFIX))
                && !wanted.contains(l.name.as_str())
        }) {
            tracing::info!(router = %router.id, link = %stale.name, "removing a router port no longer carried");
            delete_link(&inside.handle, stale.index)
                .await
                .map_err(step(&format!("delete its link {}", stale.name)))?;
        }

        let namespace_file = open_namespace(&path)
            .await
            .map_err(step("open its namespace"))?;
        let mut gateway_index = None;
        for port in &router.ports {
            let index = self
                .ensure_port(&inside.handle, &namespace_file, port)
                .await
                .map_err(step(&format!(
                    "set up port {} ({} / {})",
                    port.port_id, port.outer, port.inner
                )))?;
            sync_addresses(&inside.handle, index, &port.addresses)
                .await
                .map_err(step(&format!("set the addresses of {}", port.inner)))?;
            if port.inner.starts_with(GATEWAY_PREFIX) {
                gateway_index = Some(index);
            }
        }
        drop(namespace_file);
        let default = router.default_gateway.zip(gateway_index);
        sync_default_route(&inside.handle, default)
            .await
            .map_err(step("set its default route"))?;

        if self.loaded_nat.get(&router.namespace) != Some(&router.nat) {
            load_nat(&router.namespace, &router.nat)
                .await
                .map_err(step("load its NAT table"))?;
            self.loaded_nat
                .insert(router.namespace.clone(), router.nat.clone());
        }
        Ok(())
    }

    /// Makes the port's veth pair exist with the router end's MAC, MTU and up; answers
    /// the router end's index. The node end is brought up when it is attached to its
    /// bridge.
    async fn ensure_port(
        &self,
        inside: &Handle,
        namespace: &File,
        port: &RouterPortPlan,
    ) -> Result<u32, BoxError> {
        let outer = link_by_name(&self.node, &port.outer).await?;
        let inner = link_by_name(inside, &port.inner).await?;
        let inner = match (outer, inner) {
            (Some(o), Some(i))
                if o.kind == Some(InfoKind::Veth) && i.kind == Some(InfoKind::Veth) =>
            {
                i
            }
            (outer, inner) => {
                if let Some(outer) = outer {
                    delete_link(&self.node, outer.index).await?;
                }
                if let Some(inner) = inner {
                    delete_link(inside, inner.index).await?;
                }
                tracing::info!(port = %port.port_id, outer = %port.outer, inner = %port.inner, "creating router port veth");
                let peer = LinkMessageBuilder::<LinkUnspec>::new()
                    .name(port.inner.clone())
                    .address(port.mac.to_vec())
                    .mtu(port.mtu)
                    .setns_by_fd(namespace.as_fd().as_raw_fd())
                    .build();
                let message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
                    .name(port.outer.clone())
                    .mtu(port.mtu)
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                    .build();
                self.node.link().add(message).execute().await?;
                link_by_name(inside, &port.inner).await?.ok_or_else(|| {
                    format!("{} did not appear in the router namespace", port.inner)
                })?
            }
        };
        if inner.mac.as_deref() != Some(&port.mac[..]) || inner.mtu != Some(port.mtu) || !inner.up {
            let change = LinkUnspec::new_with_index(inner.index)
                .address(port.mac.to_vec())
                .mtu(port.mtu)
                .up()
                .build();
            set_link(inside, change).await?;
        }
        Ok(inner.index)
    }
}

/// Runs blocking work on a fresh thread (in the namespace at `netns`, if given) that
/// ends with it: a thread that entered or unshared a namespace is never reused.
async fn run_on_thread<T: Send + 'static>(
    netns: Option<PathBuf>,
    work: impl FnOnce() -> Result<T, BoxError> + Send + 'static,
) -> Result<T, BoxError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("yunji-netns".into())
        .spawn(move || {
            let outcome = (|| {
                if let Some(path) = netns {
                    let file = File::open(&path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                    move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                        .map_err(|e| format!("cannot enter {}: {e}", path.display()))?;
                }
                work()
            })();
            let _ = done.send(outcome);
        })?;
    result
        .await
        .map_err(|_| "the namespace thread ended without an answer")?
}

async fn open_namespace(path: &Path) -> Result<File, BoxError> {
    Ok(tokio::fs::File::open(path).await?.into_std().await)
}

/// A netlink connection whose socket lives in the router's namespace (opened on a
/// thread inside it), driven by the current runtime.
async fn open_inside(namespace: &str) -> Result<Inside, BoxError> {
    let runtime = tokio::runtime::Handle::current();
    let (connection, handle, _) = run_on_thread(Some(netns::path(namespace)), move || {
        // The socket registers with the caller's runtime, whatever thread polls it.
        let _entered = runtime.enter();
        Ok(rtnetlink::new_connection()?)
    })
    .await?;
    Ok(Inside {
        handle,
        connection: tokio::spawn(connection),
    })
}

/// Runs inside the router's namespace: IPv4 (and IPv6, where the kernel has it)
/// forwarding on; the sysctls are per namespace.
fn enable_forwarding() -> Result<(), BoxError> {
    for (path, required) in [
        ("/proc/sys/net/ipv4/ip_forward", true),
        ("/proc/sys/net/ipv6/conf/all/forwarding", false),
    ] {
        match std::fs::read_to_string(path) {
            Ok(now) if now.trim() == "1" => {}
            Ok(_) => {
                std::fs::write(path, "1\n").map_err(|e| format!("cannot write {path}: {e}"))?
            }
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("cannot read {path}: {error}").into()),
        }
    }
    Ok(())
}

/// The id the node's namespace gives the namespace `file` is (-1: none).
async fn namespace_id(node: &Handle, file: &File) -> Result<i32, BoxError> {
    let mut message = NsidMessage::default();
    message
        .attributes
        .push(NsidAttribute::Fd(file.as_raw_fd() as u32));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(message));
    request.header.flags = NLM_F_REQUEST;
    let mut replies = node.clone().request(request)?;
    let mut id = -1;
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(answer)) => {
                for attribute in answer.attributes {
                    if let NsidAttribute::Id(found) = attribute {
                        id = found;
                    }
                }
            }
            NetlinkPayload::Error(error) => {
                return Err(rtnetlink::Error::NetlinkError(error).into());
            }
            _ => {}
        }
    }
    Ok(id)
}

/// `ip netns set <name> auto`: gives the namespace an id in the node's namespace, which
/// marks the router as this node's.
async fn assign_namespace_id(node: &Handle, file: &File) -> Result<(), BoxError> {
    let mut message = NsidMessage::default();
    message
        .attributes
        .push(NsidAttribute::Fd(file.as_raw_fd() as u32));
    message.attributes.push(NsidAttribute::Id(-1));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewNsId(message));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let mut replies = node.clone().request(request)?;
    while let Some(reply) = replies.next().await {
        if let NetlinkPayload::Error(error) = reply.payload
            && error.raw_code() != -Errno::EXIST.raw_os_error()
        {
            return Err(rtnetlink::Error::NetlinkError(error).into());
        }
    }
    Ok(())
}

async fn list_links(handle: &Handle) -> Result<Vec<LinkState>, BoxError> {
    let mut links = Vec::new();
    let mut stream = handle.link().get().execute();
    while let Some(message) = stream.try_next().await? {
        links.push(LinkState::of(&message));
    }
    Ok(links)
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkState>, BoxError> {
    let mut reply = handle.link().get().match_name(name.to_string()).execute();
    match reply.try_next().await {
        Ok(found) => Ok(found.map(|m| LinkState::of(&m))),
        Err(error) if is_errno(&error, Errno::NODEV) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn set_link(handle: &Handle, message: LinkMessage) -> Result<(), BoxError> {
    Ok(handle.link().set(message).execute().await?)
}

/// Deletes a link (a veth takes its peer with it); one already gone is fine.
async fn delete_link(handle: &Handle, index: u32) -> Result<(), BoxError> {
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(error) if is_errno(&error, Errno::NODEV) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn is_errno(error: &rtnetlink::Error, errno: Errno) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -errno.raw_os_error())
}

/// Makes the link's global addresses exactly `wanted` (link-local ones are the kernel's).
async fn sync_addresses(
    handle: &Handle,
    index: u32,
    wanted: &BTreeSet<IpNet>,
) -> Result<(), BoxError> {
    let mut present: Vec<(IpNet, AddressMessage)> = Vec::new();
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(message) = stream.try_next().await? {
        if message.header.index != index || message.header.scope != AddressScope::Universe {
            continue;
        }
        if let Some(address) = address_of(&message) {
            present.push((address, message));
        }
    }
    for (address, message) in &present {
        if !wanted.contains(address) {
            tracing::info!(%address, "removing a router address");
            handle.address().del(message.clone()).execute().await?;
        }
    }
    for address in wanted {
        if !present.iter().any(|(p, _)| p == address) {
            tracing::info!(%address, "adding a router address");
            handle
                .address()
                .add(index, address.addr(), address.prefix_len())
                .execute()
                .await?;
        }
    }
    Ok(())
}

/// The address a message carries (for IPv4 the local address, not the peer).
fn address_of(message: &AddressMessage) -> Option<IpNet> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    IpNet::new(local.or(address)?, message.header.prefix_len).ok()
}

/// Makes the IPv4 default route of the main table exactly `wanted` (via, device index).
async fn sync_default_route(
    handle: &Handle,
    wanted: Option<(Ipv4Addr, u32)>,
) -> Result<(), BoxError> {
    let mut present: Vec<(Option<Ipv4Addr>, Option<u32>, RouteMessage)> = Vec::new();
    let mut stream = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(message) = stream.try_next().await? {
        if message.header.destination_prefix_length != 0
            || message.header.table != RouteHeader::RT_TABLE_MAIN
        {
            continue;
        }
        let mut via = None;
        let mut device = None;
        for attribute in &message.attributes {
            match attribute {
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => via = Some(*ip),
                RouteAttribute::Oif(index) => device = Some(*index),
                _ => {}
            }
        }
        present.push((via, device, message));
    }
    let already = match (wanted, present.as_slice()) {
        (Some((via, device)), [(Some(v), Some(d), _)]) => *v == via && *d == device,
        (None, []) => true,
        _ => false,
    };
    if already {
        return Ok(());
    }
    for (_, _, message) in present {
        handle.route().del(message).execute().await?;
    }
    if let Some((via, device)) = wanted {
        tracing::info!(%via, "setting a router's default route");
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(via)
            .output_interface(device)
            .build();
        handle.route().add(route).execute().await?;
    }
    Ok(())
}

/// Loads the NAT transaction with `nft -f` inside the router's namespace.
async fn load_nat(namespace: &str, transaction: &str) -> Result<(), BoxError> {
    // `execute` gives the tool no stdin, so the transaction goes through a file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "yunji-router-{}-{}.nft",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    tokio::fs::write(&path, transaction).await?;
    let result = execute(
        "nsenter",
        [
            format!("--net={}", netns::path(namespace).display()),
            "nft".to_string(),
            "-f".to_string(),
            path.display().to_string(),
        ],
        NFT_TIMEOUT,
    )
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    result?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use yunji_common::agent_api::{
        FloatingIpSpec, NetworkSpec, PortAddressSpec, PortSpec, RouterGatewaySpec,
        RouterInterfaceSpec, SubnetSpec,
    };

    use super::*;

    const ROUTER: &str = "5e1f0000-aaaa-4bbb-8ccc-000000000001";
    const GATEWAY_PORT: &str = "9a000000-0000-4000-8000-000000000001";
    const INTERFACE_PORT: &str = "9b000000-0000-4000-8000-000000000002";

    fn network(id: &str, cidr: &str, gateway: &str) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            vni: 7,
            mtu: 1450,
            subnets: vec![SubnetSpec {
                id: format!("{id}-subnet"),
                cidr: cidr.into(),
                gateway_ip: Some(gateway.into()),
                dns: vec![],
                host_routes: vec![],
                enable_dhcp: false,
            }],
            peers: vec![],
        }
    }

    fn router_port(id: &str, network: &str, mac: &str, ip: &str) -> PortSpec {
        PortSpec {
            id: id.into(),
            network_id: network.into(),
            server_id: None,
            mac: mac.into(),
            fixed_ips: vec![PortAddressSpec {
                subnet_id: format!("{network}-subnet"),
                ip_address: ip.into(),
            }],
            port_security_enabled: false,
            allowed_address_pairs: vec![],
            security_group_ids: vec![],
        }
    }

    fn spec(enable_snat: bool, floating: bool) -> NodeNetworkSpec {
        NodeNetworkSpec {
            generation: 1,
            networks: vec![
                network("ext", "203.0.113.0/24", "203.0.113.1"),
                network("tenant", "10.30.0.0/24", "10.30.0.1"),
            ],
            ports: vec![
                router_port(GATEWAY_PORT, "ext", "fa:16:3e:00:00:a1", "203.0.113.2"),
                router_port(INTERFACE_PORT, "tenant", "fa:16:3e:00:00:b1", "10.30.0.1"),
            ],
            routers: vec![RouterSpec {
                id: ROUTER.into(),
                gateway: Some(RouterGatewaySpec {
                    network_id: "ext".into(),
                    port_id: GATEWAY_PORT.into(),
                    addresses: vec!["203.0.113.2".into()],
                    enable_snat,
                }),
                interfaces: vec![RouterInterfaceSpec {
                    port_id: INTERFACE_PORT.into(),
                    network_id: "tenant".into(),
                    subnet_id: "tenant-subnet".into(),
                    address: "10.30.0.1".into(),
                }],
                floating_ips: if floating {
                    vec![FloatingIpSpec {
                        id: "fip-1".into(),
                        floating_ip: "203.0.113.10".into(),
                        fixed_ip: "10.30.0.11".into(),
                        port_id: "vm-port".into(),
                    }]
                } else {
                    vec![]
                },
            }],
            underlay: Some("10.99.0.1".into()),
            ..NodeNetworkSpec::default()
        }
    }

    fn nets(addresses: &[&str]) -> BTreeSet<IpNet> {
        addresses.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_router_gets_a_namespace_and_a_veth_per_port_with_the_ports_mac_and_addresses() {
        let plans = plan(&spec(true, true)).unwrap();

        assert_eq!(plans.len(), 1);
        let router = &plans[0];
        assert_eq!(router.namespace, "yrt-5e1f0000-aa");
        assert_eq!(router.default_gateway, Some(Ipv4Addr::new(203, 0, 113, 1)));
        let gateway = &router.ports[0];
        assert_eq!(gateway.outer, tap_name(GATEWAY_PORT));
        assert_eq!(gateway.inner, "qg-9a000000-00");
        assert_eq!(gateway.mac, [0xfa, 0x16, 0x3e, 0, 0, 0xa1]);
        assert_eq!(gateway.mtu, 1450);
        assert_eq!(
            gateway.addresses,
            nets(&["203.0.113.2/24", "203.0.113.10/32"])
        );
        let interface = &router.ports[1];
        assert_eq!(interface.outer, tap_name(INTERFACE_PORT));
        assert_eq!(interface.inner, "qr-9b000000-00");
        assert_eq!(interface.addresses, nets(&["10.30.0.1/24"]));
    }

    #[test]
    fn nat_dnats_floating_ips_and_snats_fixed_ips_and_subnets_leaving_by_the_gateway() {
        let nat = plan(&spec(true, true)).unwrap().remove(0).nat;

        assert!(nat.starts_with("table ip yunji-nat {}\ndelete table ip yunji-nat\n"));
        assert!(nat.contains("ip daddr 203.0.113.10 dnat to 10.30.0.11\n"));
        let floating = nat
            .find("oifname \"qg-9a000000-00\" ip saddr 10.30.0.11 snat to 203.0.113.10\n")
            .expect("floating SNAT");
        let subnets = nat
            .find("oifname \"qg-9a000000-00\" ip saddr { 10.30.0.0/24 } snat to 203.0.113.2\n")
            .expect("subnet SNAT");
        assert!(
            floating < subnets,
            "a floating IP's SNAT comes first:\n{nat}"
        );
    }

    #[test]
    fn without_enable_snat_only_floating_ips_are_translated() {
        let with_floating = plan(&spec(false, true)).unwrap().remove(0).nat;
        let without = plan(&spec(false, false)).unwrap().remove(0).nat;

        assert!(!with_floating.contains("10.30.0.0/24"));
        assert!(with_floating.contains("dnat to 10.30.0.11"));
        assert!(!without.contains("snat"));
        assert!(!without.contains("dnat"));
    }

    #[test]
    fn a_missing_port_or_a_floating_ip_without_gateway_is_refused_naming_the_router() {
        let mut no_port = spec(true, false);
        no_port.ports.remove(1);
        let mut no_gateway = spec(true, true);
        no_gateway.routers[0].gateway = None;
        let mut bad_id = spec(true, false);
        bad_id.routers[0].id = "r 1".into();

        let missing = plan(&no_port).unwrap_err();
        let floating = plan(&no_gateway).unwrap_err();
        let id = plan(&bad_id).unwrap_err();

        assert!(
            matches!(&missing, RouterError::Invalid { router, reason } if router == ROUTER && reason.contains(INTERFACE_PORT)),
            "{missing}"
        );
        assert!(
            matches!(&floating, RouterError::Invalid { reason, .. } if reason.contains("gateway")),
            "{floating}"
        );
        assert!(matches!(id, RouterError::Invalid { .. }));
    }

    #[test]
    fn two_routers_sharing_a_namespace_name_are_refused() {
        let mut twins = spec(true, false);
        let mut other = twins.routers[0].clone();
        other.id = format!("{ROUTER}-twin");
        other.gateway = None;
        other.interfaces.clear();
        twins.routers.push(other);

        let error = plan(&twins).unwrap_err();

        assert!(
            matches!(error, RouterError::Invalid { reason, .. } if reason.contains("yrt-5e1f0000-aa"))
        );
    }

    #[test]
    fn macs_are_six_hex_pairs() {
        assert_eq!(
            parse_mac("fa:16:3e:00:00:a1"),
            Some([0xfa, 0x16, 0x3e, 0, 0, 0xa1])
        );
        assert_eq!(parse_mac("fa:16:3e:00:00"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:a1:02"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:g1"), None);
    }
}
