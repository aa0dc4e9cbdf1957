//! The node's real network driver: it applies each pushed [`NodeNetworkSpec`] to the
//! kernel by composing the datapath pieces — per network a bridge and VXLAN device with
//! its peers and the VMs' taps (`links`), a DHCP server per IPv4 subnet (`dhcp`), the
//! security groups (`firewall`), the routers and their NAT (`router`) — and removes the
//! networks and routers the node no longer carries.
//! Also [`NetworkDriver`], the agent's choice between it and the sim.
//!
//! Everything acts on the network namespace the driver was created in (its netlink
//! socket, its DHCP sockets and `nft` all belong to the creating thread's namespace).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use yunji_common::agent_api::{self, NetworkApplied, NetworkInventory, NodeNetworkSpec, PortSpec};

use super::balancer::{self, BalancerError, BalancerPlan, Balancers};
use super::dhcp::{self, DhcpError, DhcpServer, LeaseTable, SubnetDhcp};
use super::firewall::{self, FirewallError};
use super::links::{self, Interface, LinkError, Links};
use super::router::{self, RouterError, RouterPlan, Routers};
use super::tap_name;
use crate::drivers::DriverError;
use crate::drivers::sim::Fault;
use crate::drivers::sim_network::{self, Carried, SimNetwork};

/// With these set, bridged IPv4 and IPv6 traffic crosses the `inet` forward hook, where
/// the security groups are; without them the firewall would silently enforce nothing.
const BRIDGE_NETFILTER_SYSCTLS: [&str; 2] = [
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
];

/// What went wrong applying a spec, and on which network, subnet, port or device.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network spec: {0}")]
    InvalidSpec(String),
    // Link errors are boxed: they carry a whole netlink error message.
    #[error("cannot open the netlink connection")]
    Connect(#[source] Box<LinkError>),
    #[error("network {network} (VNI {vni})")]
    Links {
        network: String,
        vni: u32,
        #[source]
        source: Box<LinkError>,
    },
    #[error("port {port}: cannot attach its tap to the bridge of VNI {vni}")]
    Attach {
        port: String,
        vni: u32,
        #[source]
        source: Box<LinkError>,
    },
    #[error("cannot list or remove the node's yunji networks")]
    Cleanup(#[source] Box<LinkError>),
    #[error("subnet {subnet} of network {network}: DHCP")]
    Dhcp {
        network: String,
        subnet: String,
        #[source]
        source: DhcpError,
    },
    #[error("security groups")]
    Firewall(#[source] FirewallError),
    #[error("routers")]
    Router(#[source] RouterError),
    #[error("load balancers")]
    LoadBalancers(#[source] BalancerError),
    #[error("cannot turn on netfilter for bridged traffic ({path}; is br_netfilter loaded?)")]
    BridgeNetfilter {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    /// The agent API's form: `invalid` for a spec the scheduler rendered wrong (as the
    /// sim answers), `network` for the node failing to carry it.
    fn into_driver_error(self) -> DriverError {
        let code = match self {
            NetworkError::InvalidSpec(_) => "invalid",
            _ => "network",
        };
        DriverError {
            code,
            message: error_chain(&self),
        }
    }
}

/// The error and its sources, `: `-separated, for the API reply and the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The real network side of a node. One apply (or attach, or removal) at a time; the
/// carried spec is replaced only when an apply succeeded whole.
pub struct RealNetwork {
    carried: Carried,
    datapath: tokio::sync::Mutex<Datapath>,
}

/// What the driver holds in the kernel beyond what it can read back: the DHCP servers.
struct Datapath {
    links: Links,
    routers: Routers,
    /// By subnet id.
    dhcp: BTreeMap<String, SubnetServer>,
    balancers: Balancers,
}

/// A running DHCP server of one subnet and what it was started for: a server on a
/// recreated bridge or with another identity is restarted, otherwise only its leases
/// change.
struct SubnetServer {
    bridge: Interface,
    server_ip: Ipv4Addr,
    leases: LeaseTable,
    server: DhcpServer,
}

impl RealNetwork {
    /// Opens the netlink connection in the current thread's network namespace; call it
    /// inside the tokio runtime that will run the applies.
    pub fn new() -> Result<RealNetwork, NetworkError> {
        Ok(RealNetwork {
            carried: Carried::default(),
            datapath: tokio::sync::Mutex::new(Datapath {
                links: Links::new().map_err(|e| NetworkError::Connect(Box::new(e)))?,
                routers: Routers::new().map_err(NetworkError::Router)?,
                dhcp: BTreeMap::new(),
                balancers: Balancers::new().map_err(NetworkError::LoadBalancers)?,
            }),
        })
    }

    /// Makes the node carry exactly `spec`, or refuses it: an older generation than the
    /// carried one (`state`, as the sim), a spec that does not hang together
    /// (`invalid`), or a kernel step that failed (`network`, naming the step). After a
    /// failure the node may carry part of the new spec; the next apply finishes it.
    pub async fn apply(&self, spec: NodeNetworkSpec) -> Result<NetworkApplied, DriverError> {
        let mut datapath = self.datapath.lock().await;
        self.carried.check_newer(&spec)?;
        sim_network::check(&spec)?;
        let plan = Plan::of(&spec).map_err(NetworkError::into_driver_error)?;
        if let Err(error) = datapath.carry(&plan).await {
            let error = error.into_driver_error();
            tracing::warn!(generation = spec.generation, error = %error.message, "network spec not applied");
            return Err(error);
        }
        Ok(self.carried.replace(spec))
    }

    /// Attaches the tap of a port the node carries to its network's bridge: the VMM
    /// calls it once QEMU made the tap. `Ok(false)` when the node does not carry the
    /// port (yet): the apply that brings it attaches the tap.
    pub async fn attach_port(&self, port_id: &str) -> Result<bool, DriverError> {
        let datapath = self.datapath.lock().await;
        let carried = self.carried();
        let Some(port) = carried.ports.iter().find(|p| p.id == port_id) else {
            return Ok(false);
        };
        let Some(network) = carried.networks.iter().find(|n| n.id == port.network_id) else {
            return Ok(false);
        };
        datapath
            .links
            .attach(&tap_name(port_id), network.vni)
            .await
            .map_err(|source| {
                NetworkError::Attach {
                    port: port_id.to_string(),
                    vni: network.vni,
                    source: Box::new(source),
                }
                .into_driver_error()
            })?;
        Ok(true)
    }

    /// Removes everything the driver makes: DHCP servers, load balancers, both nft
    /// tables, this node's router namespaces with their veths, every `ybr-`/`yvx-` link
    /// (taps are QEMU's and are only released). Every step is tried; the first failure
    /// is answered. The carried spec becomes empty, its generation
    /// kept so that an older spec is still refused.
    pub async fn remove_all(&self) -> Result<(), DriverError> {
        let mut datapath = self.datapath.lock().await;
        let mut first_error = None;
        for subnet in std::mem::take(&mut datapath.dhcp).into_values() {
            subnet.server.stop().await;
        }
        if let Err(source) = datapath.balancers.remove_all().await {
            first_error.get_or_insert(NetworkError::LoadBalancers(source));
        }
        if let Err(source) = firewall::remove().await {
            first_error.get_or_insert(NetworkError::Firewall(source));
        }
        if let Err(source) = datapath.routers.remove_except(&BTreeSet::new()).await {
            first_error.get_or_insert(NetworkError::Router(source));
        }
        if let Err(error) = datapath.remove_networks_except(&BTreeSet::new()).await {
            first_error.get_or_insert(error);
        }
        let generation = self.carried().generation;
        self.carried.replace(NodeNetworkSpec {
            generation,
            ..NodeNetworkSpec::default()
        });
        match first_error {
            None => {
                tracing::info!("network datapath removed");
                Ok(())
            }
            Some(error) => Err(error.into_driver_error()),
        }
    }

    /// The spec the node carries now.
    pub fn carried(&self) -> NodeNetworkSpec {
        self.carried.get()
    }

    /// What the node carries, for its status.
    pub fn inventory(&self) -> NetworkInventory {
        self.carried.inventory()
    }
}

impl Datapath {
    /// Brings the kernel to `plan`. Firewall before taps, so that no VM's traffic flows
    /// before its rules exist; routers before taps, so that their ports' node ends are
    /// attached like VM taps; stale DHCP servers stop before their bridges go.
    async fn carry(&mut self, plan: &Plan) -> Result<(), NetworkError> {
        let wanted_subnets: BTreeSet<&str> = plan
            .networks
            .iter()
            .flat_map(|n| n.dhcp.iter().map(|d| d.subnet.as_str()))
            .collect();
        let stale: Vec<String> = self
            .dhcp
            .keys()
            .filter(|subnet| !wanted_subnets.contains(subnet.as_str()))
            .cloned()
            .collect();
        for subnet in stale {
            if let Some(running) = self.dhcp.remove(&subnet) {
                running.server.stop().await;
            }
        }
        let vnis = plan.networks.iter().map(|n| n.vni).collect();
        self.remove_networks_except(&vnis).await?;
        if !plan.networks.is_empty() {
            enable_bridge_netfilter().await?;
        }

        let mut bridges = BTreeMap::new();
        for network in &plan.networks {
            let in_network = |source| NetworkError::Links {
                network: network.id.clone(),
                vni: network.vni,
                source: Box::new(source),
            };
            let made = self
                .links
                .ensure_network(network.vni, network.mtu, plan.underlay)
                .await
                .map_err(in_network)?;
            self.links
                .sync_peers(network.vni, &network.peers)
                .await
                .map_err(in_network)?;
            bridges.insert(network.vni, made.bridge);
        }

        match &plan.ruleset {
            Some(ruleset) => firewall::apply(ruleset).await,
            None => firewall::remove().await,
        }
        .map_err(NetworkError::Firewall)?;

        self.routers
            .carry(&plan.routers)
            .await
            .map_err(NetworkError::Router)?;
        // Before the taps: a new VIP veth is then attached in this same apply.
        self.balancers
            .carry(&plan.balancers)
            .await
            .map_err(NetworkError::LoadBalancers)?;

        for network in &plan.networks {
            for port in &network.ports {
                self.attach_if_present(port, network.vni).await?;
            }
        }

        for network in &plan.networks {
            let bridge = &bridges[&network.vni];
            for subnet in &network.dhcp {
                self.serve_dhcp(&network.id, bridge, subnet)?;
            }
        }
        Ok(())
    }

    /// Attaches the port's tap; a tap QEMU has not made yet is left for a later apply
    /// or [`RealNetwork::attach_port`].
    async fn attach_if_present(&self, port: &str, vni: u32) -> Result<(), NetworkError> {
        let tap = tap_name(port);
        match self.links.attach(&tap, vni).await {
            Ok(()) => Ok(()),
            Err(LinkError::NoSuchDevice { device }) if device == tap => {
                tracing::debug!(%port, %tap, "tap not there yet; attached once QEMU makes it");
                Ok(())
            }
            Err(source) => Err(NetworkError::Attach {
                port: port.to_string(),
                vni,
                source: Box::new(source),
            }),
        }
    }

    /// Starts the subnet's server, or hands the running one its new leases.
    fn serve_dhcp(
        &mut self,
        network: &str,
        bridge: &Interface,
        subnet: &SubnetPlan,
    ) -> Result<(), NetworkError> {
        if let Some(running) = self.dhcp.get(&subnet.subnet)
            && running.bridge == *bridge
            && running.server_ip == subnet.dhcp.server_ip
        {
            running.leases.replace(subnet.dhcp.leases.iter().cloned());
            return Ok(());
        }
        // Dropping the old server aborts its task and closes its socket.
        self.dhcp.remove(&subnet.subnet);
        let leases = LeaseTable::new(subnet.dhcp.leases.iter().cloned());
        let server = DhcpServer::spawn(&bridge.name, subnet.dhcp.server_ip, leases.clone())
            .map_err(|source| NetworkError::Dhcp {
                network: network.to_string(),
                subnet: subnet.subnet.clone(),
                source,
            })?;
        self.dhcp.insert(
            subnet.subnet.clone(),
            SubnetServer {
                bridge: bridge.clone(),
                server_ip: subnet.dhcp.server_ip,
                leases,
                server,
            },
        );
        Ok(())
    }

    /// Deletes the links of every yunji network present whose VNI is not in `keep`.
    async fn remove_networks_except(&self, keep: &BTreeSet<u32>) -> Result<(), NetworkError> {
        let cleanup = |source| NetworkError::Cleanup(Box::new(source));
        let present = self.links.networks().await.map_err(cleanup)?;
        for vni in present.into_iter().filter(|vni| !keep.contains(vni)) {
            tracing::info!(vni, "removing a network the node no longer carries");
            self.links.remove_network(vni).await.map_err(cleanup)?;
        }
        Ok(())
    }
}

/// Writes `1` where it is not already set. The sysctls are per network namespace.
async fn enable_bridge_netfilter() -> Result<(), NetworkError> {
    for path in BRIDGE_NETFILTER_SYSCTLS {
        let failed = |source| NetworkError::BridgeNetfilter { path, source };
        let now = tokio::fs::read_to_string(path).await.map_err(failed)?;
        if now.trim() != "1" {
            tracing::info!(path, "turning on netfilter for bridged traffic");
            tokio::fs::write(path, "1\n").await.map_err(failed)?;
        }
    }
    Ok(())
}

/// What a spec asks of the kernel, derived and validated before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    underlay: Ipv4Addr,
    /// Ascending VNI.
    networks: Vec<NetworkPlan>,
    /// `None`: the node carries no network, so the tables go.
    ruleset: Option<String>,
    /// Ascending router id.
    routers: Vec<RouterPlan>,
    balancers: Vec<BalancerPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NetworkPlan {
    id: String,
    vni: u32,
    mtu: u32,
    peers: Vec<Ipv4Addr>,
    /// The ids of the network's ports; their taps are attached when present.
    ports: Vec<String>,
    dhcp: Vec<SubnetPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SubnetPlan {
    subnet: String,
    dhcp: SubnetDhcp,
}

/// Ports are bound to this node when the scheduler sends them; those with a server get
/// security-group chains.
fn is_local(port: &PortSpec) -> bool {
    port.server_id.is_some()
}

impl Plan {
    fn of(spec: &NodeNetworkSpec) -> Result<Plan, NetworkError> {
        let invalid = NetworkError::InvalidSpec;
        let underlay = match spec.underlay.as_deref() {
            Some(text) => text.parse::<Ipv4Addr>().map_err(|_| {
                invalid(format!(
                    "the node's underlay address {text:?} is not an IPv4 address"
                ))
            })?,
            None if spec.networks.is_empty() => Ipv4Addr::UNSPECIFIED,
            None => {
                return Err(invalid(
                    "the spec carries networks but names no underlay address for the node".into(),
                ));
            }
        };
        let mut networks = Vec::with_capacity(spec.networks.len());
        for network in &spec.networks {
            if network.vni == 0 || network.vni > links::MAX_VNI {
                return Err(invalid(format!(
                    "network {}: VNI {} is outside 1..={}",
                    network.id,
                    network.vni,
                    links::MAX_VNI
                )));
            }
            let peers = network
                .peers
                .iter()
                .map(|peer| {
                    peer.parse::<Ipv4Addr>().map_err(|_| {
                        invalid(format!(
                            "network {}: peer {peer:?} is not an IPv4 address",
                            network.id
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut dhcp = Vec::new();
            for subnet in &network.subnets {
                let derived = dhcp::subnet_dhcp(network, &subnet.id, &spec.ports)
                    .map_err(|error| invalid(format!("network {}: {error}", network.id)))?;
                if let Some(derived) = derived {
                    dhcp.push(SubnetPlan {
                        subnet: subnet.id.clone(),
                        dhcp: derived,
                    });
                }
            }
            networks.push(NetworkPlan {
                id: network.id.clone(),
                vni: network.vni,
                mtu: network.mtu,
                peers,
                ports: spec
                    .ports
                    .iter()
                    .filter(|p| p.network_id == network.id)
                    .map(|p| p.id.clone())
                    .collect(),
                dhcp,
            });
        }
        networks.sort_by_key(|n| n.vni);
        let ruleset = if networks.is_empty() {
            None
        } else {
            Some(firewall::render(spec, is_local).map_err(|error| invalid(error_chain(&error)))?)
        };
        let routers = router::plan(spec).map_err(|error| invalid(error_chain(&error)))?;
        let balancers = balancer::plan(spec).map_err(invalid)?;
        Ok(Plan {
            underlay,
            networks,
            ruleset,
            routers,
            balancers,
        })
    }
}

/// The agent's network side: the sim, or the real datapath (chosen at start-up).
pub enum NetworkDriver {
    Sim(SimNetwork),
    Real(RealNetwork),
}

impl NetworkDriver {
    pub async fn apply(&self, spec: NodeNetworkSpec) -> Result<NetworkApplied, DriverError> {
        match self {
            NetworkDriver::Sim(sim) => sim.apply(spec).await,
            NetworkDriver::Real(real) => real.apply(spec).await,
        }
    }

    pub fn carried(&self) -> NodeNetworkSpec {
        match self {
            NetworkDriver::Sim(sim) => sim.carried(),
            NetworkDriver::Real(real) => real.carried(),
        }
    }

    pub fn inventory(&self) -> NetworkInventory {
        match self {
            NetworkDriver::Sim(sim) => sim.inventory(),
            NetworkDriver::Real(real) => real.inventory(),
        }
    }

    /// The driver as the node's status names it.
    pub fn kind(&self) -> agent_api::NetworkDriver {
        match self {
            NetworkDriver::Sim(_) => agent_api::NetworkDriver::Sim,
            NetworkDriver::Real(_) => agent_api::NetworkDriver::Linux,
        }
    }

    /// Injects or clears an apply fault; the real driver takes none.
    pub fn set_fault(&self, fault: Option<Fault>) -> Result<(), DriverError> {
        match self {
            NetworkDriver::Sim(sim) => {
                sim.set_fault(fault);
                Ok(())
            }
            NetworkDriver::Real(_) => Err(DriverError {
                code: "bad-request",
                message: "faults are injected into the sim network driver only".into(),
            }),
        }
    }

    /// See [`RealNetwork::attach_port`]; the sim has no taps (`Ok(false)`).
    pub async fn attach_port(&self, port_id: &str) -> Result<bool, DriverError> {
        match self {
            NetworkDriver::Sim(_) => Ok(false),
            NetworkDriver::Real(real) => real.attach_port(port_id).await,
        }
    }

    /// See [`RealNetwork::remove_all`]; the sim makes nothing to remove.
    pub async fn remove_all(&self) -> Result<(), DriverError> {
        match self {
            NetworkDriver::Sim(_) => Ok(()),
            NetworkDriver::Real(real) => real.remove_all().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use yunji_common::agent_api::{NetworkSpec, PortAddressSpec, SubnetSpec};

    use super::*;

    fn network(id: &str, vni: u32, peers: &[&str]) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            vni,
            mtu: 1450,
            subnets: vec![
                SubnetSpec {
                    id: format!("{id}-v4"),
                    cidr: "10.1.0.0/24".into(),
                    gateway_ip: Some("10.1.0.1".into()),
                    dns: vec![],
                    host_routes: vec![],
                    enable_dhcp: true,
                },
                SubnetSpec {
                    id: format!("{id}-v6"),
                    cidr: "fd00:1::/64".into(),
                    gateway_ip: None,
                    dns: vec![],
                    host_routes: vec![],
                    enable_dhcp: true,
                },
                SubnetSpec {
                    id: format!("{id}-nodhcp"),
                    cidr: "10.2.0.0/24".into(),
                    gateway_ip: None,
                    dns: vec![],
                    host_routes: vec![],
                    enable_dhcp: false,
                },
            ],
            peers: peers.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn port(id: &str, network: &str, ip: &str, server: Option<&str>) -> PortSpec {
        PortSpec {
            id: id.into(),
            network_id: network.into(),
            server_id: server.map(str::to_string),
            mac: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![PortAddressSpec {
                subnet_id: format!("{network}-v4"),
                ip_address: ip.into(),
            }],
            port_security_enabled: true,
            allowed_address_pairs: vec![],
            security_group_ids: vec![],
        }
    }

    fn spec() -> NodeNetworkSpec {
        NodeNetworkSpec {
            generation: 1,
            networks: vec![
                network("net-b", 20, &[]),
                network("net-a", 10, &["10.99.0.2", "10.99.0.3"]),
            ],
            ports: vec![
                port("port-1", "net-a", "10.1.0.11", Some("vm-1")),
                port("port-2", "net-b", "10.1.0.12", None),
            ],
            underlay: Some("10.99.0.1".into()),
            ..NodeNetworkSpec::default()
        }
    }

    #[test]
    fn a_plan_has_each_network_with_its_peers_ports_and_ipv4_dhcp_subnets() {
        let plan = Plan::of(&spec()).unwrap();

        assert_eq!(plan.underlay, Ipv4Addr::new(10, 99, 0, 1));
        let vnis: Vec<u32> = plan.networks.iter().map(|n| n.vni).collect();
        assert_eq!(vnis, vec![10, 20]);
        let net_a = &plan.networks[0];
        assert_eq!(
            net_a.peers,
            vec![Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 3)]
        );
        assert_eq!(net_a.ports, vec!["port-1".to_string()]);
        let subnets: Vec<&str> = net_a.dhcp.iter().map(|d| d.subnet.as_str()).collect();
        assert_eq!(subnets, vec!["net-a-v4"]);
        assert_eq!(net_a.dhcp[0].dhcp.server_ip, Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(net_a.dhcp[0].dhcp.leases.len(), 1);
        assert_eq!(net_a.dhcp[0].dhcp.leases[0].ip, Ipv4Addr::new(10, 1, 0, 11));
    }

    #[test]
    fn only_ports_with_a_server_get_security_group_chains() {
        let ruleset = Plan::of(&spec()).unwrap().ruleset.unwrap();

        assert!(ruleset.contains("table inet yunji"));
        assert!(ruleset.contains(&tap_name("port-1")));
        assert!(!ruleset.contains(&tap_name("port-2")));
    }

    #[test]
    fn a_spec_without_networks_needs_no_underlay_and_removes_the_tables() {
        let plan = Plan::of(&NodeNetworkSpec::default()).unwrap();

        assert!(plan.networks.is_empty());
        assert_eq!(plan.ruleset, None);
    }

    #[test]
    fn networks_without_an_underlay_address_are_refused() {
        let mut spec = spec();
        spec.underlay = None;
        let missing = Plan::of(&spec).unwrap_err();
        spec.underlay = Some("node-1.example".into());
        let unreadable = Plan::of(&spec).unwrap_err();

        assert!(matches!(missing, NetworkError::InvalidSpec(ref m) if m.contains("underlay")));
        assert!(
            matches!(unreadable, NetworkError::InvalidSpec(ref m) if m.contains("node-1.example"))
        );
    }

    #[test]
    fn a_bad_peer_or_vni_is_refused_naming_the_network() {
        let mut bad_peer = spec();
        bad_peer.networks[1].peers.push("fd00::2".into());
        let mut bad_vni = spec();
        bad_vni.networks[0].vni = links::MAX_VNI + 1;

        let peer_error = Plan::of(&bad_peer).unwrap_err();
        let vni_error = Plan::of(&bad_vni).unwrap_err();

        assert!(
            matches!(peer_error, NetworkError::InvalidSpec(ref m) if m.contains("net-a") && m.contains("fd00::2"))
        );
        assert!(matches!(vni_error, NetworkError::InvalidSpec(ref m) if m.contains("net-b")));
    }

    #[test]
    fn an_invalid_spec_is_answered_as_invalid_and_a_kernel_failure_as_network() {
        let invalid = NetworkError::InvalidSpec("x".into()).into_driver_error();
        let kernel = NetworkError::Links {
            network: "net-a".into(),
            vni: 10,
            source: Box::new(LinkError::NoSuchDevice {
                device: "yvx-10".into(),
            }),
        }
        .into_driver_error();

        assert_eq!(invalid.code, "invalid");
        assert_eq!(kernel.code, "network");
        assert_eq!(
            kernel.message,
            "network net-a (VNI 10): device yvx-10 does not exist"
        );
    }
}
