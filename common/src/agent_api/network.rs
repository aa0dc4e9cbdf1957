//! The network side of the agent API: the scheduler pushes each node the whole network
//! state it must carry (desired state, one document), and the node reports which
//! generation it applied. Every list defaults to empty so that security groups,
//! routers, NAT and load balancers join the same document without breaking either side.

use serde::{Deserialize, Serialize};

/// `PUT` applies a [`NodeNetworkSpec`]; the reply is a [`NetworkApplied`].
pub const NETWORK_PATH: &str = "/v1/network";

/// Everything a node's network side must carry, replacing what it carried before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNetworkSpec {
    /// Increases with every spec the scheduler renders; a node refuses an older one.
    pub generation: u64,
    #[serde(default)]
    pub networks: Vec<NetworkSpec>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
}

/// A tenant network: a VXLAN segment and its subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub id: String,
    pub vni: u32,
    pub mtu: u32,
    #[serde(default)]
    pub subnets: Vec<SubnetSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRouteSpec {
    pub destination: String,
    pub nexthop: String,
}

/// A server's interface on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAddressSpec {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPairSpec {
    pub ip_address: String,
    pub mac_address: String,
}

/// The reply to an apply: the generation the node now carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkApplied {
    pub generation: u64,
}

/// What a node's network side carries, in its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInventory {
    /// The generation last applied (0: none since the agent started).
    pub generation: u64,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
}
