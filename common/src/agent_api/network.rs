//! The network side of the agent API: the scheduler pushes each node the whole network
//! state it must carry (desired state, one document), and the node reports which
//! generation it applied. Every list defaults to empty so that security groups,
//! routers, NAT and load balancers join the same document without breaking either side.
//! `GET` on the same path answers the spec a node carries.

use serde::{Deserialize, Serialize};

/// `PUT` applies a [`NodeNetworkSpec`]; the reply is a [`NetworkApplied`].
pub const NETWORK_PATH: &str = "/v1/network";

/// Everything a node's network side must carry, replacing what it carried before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeNetworkSpec {
    /// Increases with every spec the scheduler renders; a node refuses an older one.
    pub generation: u64,
    #[serde(default)]
    pub networks: Vec<NetworkSpec>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// The groups the node's ports use, and the groups their rules name as remote.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupSpec>,
    /// The routers whose NAT the node carries.
    #[serde(default)]
    pub routers: Vec<RouterSpec>,
    /// The load balancers whose VIP the node carries (their VIP ports are in `ports`).
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancerSpec>,
    /// This node's own underlay IPv4 address, the local end of its VXLAN tunnels (`None`
    /// when the scheduler knows no IPv4 address for the node).
    #[serde(default)]
    pub underlay: Option<String>,
}

/// A security group as a node enforces it: stateful, ingress denied unless a rule
/// allows it, egress allowed only by rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecurityGroupSpec {
    pub id: String,
    #[serde(default)]
    pub rules: Vec<SecurityRuleSpec>,
    /// The addresses of every port in the group, on any node (fixed IPs and allowed
    /// address pairs): what a rule naming this group as remote matches.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecurityRuleSpec {
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// Lower-case name or number; `None` is any protocol.
    pub protocol: Option<String>,
    /// Ports for TCP/UDP-like protocols; ICMP type and code for ICMP.
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<String>,
    /// Matches the addresses in that group's `members`.
    pub remote_group_id: Option<String>,
}

/// A router's NAT on the node that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouterSpec {
    pub id: String,
    pub gateway: Option<RouterGatewaySpec>,
    #[serde(default)]
    pub interfaces: Vec<RouterInterfaceSpec>,
    /// DNAT/SNAT pairs: floating (and public) IPs associated through this router.
    #[serde(default)]
    pub floating_ips: Vec<FloatingIpSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouterGatewaySpec {
    pub network_id: String,
    pub port_id: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Whether traffic out through the gateway is source-NATed to its address.
    pub enable_snat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RouterInterfaceSpec {
    pub port_id: String,
    pub network_id: String,
    pub subnet_id: String,
    /// The subnet's gateway address, which the router answers.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FloatingIpSpec {
    pub id: String,
    pub floating_ip: String,
    pub fixed_ip: String,
    pub port_id: String,
}

/// A load balancer as its node runs it: the VIP (an address of its VIP port) and the
/// listeners that are up, each forwarding to its default pool's members that are up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadBalancerSpec {
    pub id: String,
    pub vip_port_id: String,
    pub vip_address: String,
    #[serde(default)]
    pub listeners: Vec<ListenerSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListenerSpec {
    pub id: String,
    /// `TCP` or `HTTP` (HTTP is forwarded as TCP: one connection to one member).
    pub protocol: String,
    pub protocol_port: u16,
    /// Concurrent connections at most; `None`: unlimited.
    pub connection_limit: Option<u32>,
    /// `None`: no default pool yet, so connections are refused.
    pub pool: Option<PoolSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PoolSpec {
    pub id: String,
    /// `ROUND_ROBIN`, `LEAST_CONNECTIONS` or `SOURCE_IP`.
    pub algorithm: String,
    #[serde(default)]
    pub members: Vec<MemberSpec>,
    pub health_monitor: Option<HealthMonitorSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberSpec {
    pub id: String,
    pub address: String,
    pub protocol_port: u16,
    /// 0 takes no new connections; otherwise relative to the pool's other members.
    pub weight: u32,
}

/// How a node checks its pool's members: a member is out after `max_retries_down`
/// failed checks in a row and back after `max_retries` successful ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthMonitorSpec {
    /// `TCP`, `HTTP` or `PING`.
    pub kind: String,
    pub delay_secs: u32,
    pub timeout_secs: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
    /// For `HTTP`: the request and the status codes that mean healthy (`200`, `200-204`,
    /// `200,202`).
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
}

/// A tenant network: a VXLAN segment and its subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkSpec {
    pub id: String,
    pub vni: u32,
    pub mtu: u32,
    #[serde(default)]
    pub subnets: Vec<SubnetSpec>,
    /// The underlay IPv4 addresses of the OTHER nodes carrying the network: where this
    /// node's VXLAN device floods broadcast and unknown-unicast frames.
    #[serde(default)]
    pub peers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubnetSpec {
    pub id: String,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub host_routes: Vec<HostRouteSpec>,
    pub enable_dhcp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostRouteSpec {
    pub destination: String,
    pub nexthop: String,
}

/// A server's interface on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortSpec {
    pub id: String,
    pub network_id: String,
    /// The server the port belongs to, if any.
    pub server_id: Option<String>,
    pub mac: String,
    #[serde(default)]
    pub fixed_ips: Vec<PortAddressSpec>,
    pub port_security_enabled: bool,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPairSpec>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortAddressSpec {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressPairSpec {
    pub ip_address: String,
    pub mac_address: String,
}

/// The reply to an apply: the generation the node now carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkApplied {
    pub generation: u64,
}

/// What a node's network side carries, in its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkInventory {
    /// The generation last applied (0: none since the agent started).
    pub generation: u64,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
}
