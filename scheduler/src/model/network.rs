//! Networking's domain types (Neutron v2.0): networks, subnets, network quotas.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A tenant network: one VXLAN segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    /// `router:external`: floating and public IPs come from it.
    pub external: bool,
    pub mtu: u32,
    pub port_security_enabled: bool,
    /// The VXLAN network identifier (`provider:segmentation_id`).
    pub vni: u32,
    pub status: String,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its subnets, in creation order.
    pub subnets: Vec<SubnetRef>,
}

/// A subnet as a network lists it (the standard's 子网 table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRef {
    pub id: String,
    pub name: String,
    pub cidr: String,
}

/// Which networks a list asks for; every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct NetworkFilter {
    /// Not an admin: only this project's networks, shared ones and external ones.
    pub visible_to: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub status: Option<String>,
    pub admin_state_up: Option<bool>,
    /// Networks created after this one (by id).
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// A route a subnet's DHCP hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

/// A range of addresses IPAM may hand out, both ends included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

/// An IPv4 or IPv6 subnet of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<String>,
    pub host_routes: Vec<HostRoute>,
    pub allocation_pools: Vec<AllocationPool>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What IPAM reads of a subnet: where its addresses may come from, and where the
/// search for a free one starts.
#[derive(Debug, Clone)]
pub struct IpamSubnet {
    pub id: String,
    pub ip_version: u8,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<AllocationPool>,
    pub ipv6_address_mode: Option<String>,
    /// The address after the last one handed out (a hint: it may have been taken back).
    pub cursor: Option<u128>,
}

/// Which subnets a list asks for; every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct SubnetFilter {
    /// Not an admin: subnets of this project, and of networks it may see.
    pub visible_to: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub network_id: Option<String>,
    pub project_id: Option<String>,
    pub cidr: Option<String>,
    pub ip_version: Option<u8>,
    pub enable_dhcp: Option<bool>,
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// A project's network limits; -1 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkQuota {
    pub network: i64,
    pub subnet: i64,
    pub port: i64,
    pub router: i64,
    pub floatingip: i64,
    pub security_group: i64,
    pub security_group_rule: i64,
}

impl Default for NetworkQuota {
    /// Neutron's defaults.
    fn default() -> Self {
        NetworkQuota {
            network: 100,
            subnet: 100,
            port: 500,
            router: 10,
            floatingip: 50,
            security_group: 10,
            security_group_rule: 100,
        }
    }
}

/// An address a port holds on a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// Another address (or prefix) a port may send from, past anti-spoofing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    pub ip_address: String,
    pub mac_address: String,
}

/// A port: a network interface on a network, with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub id: String,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    /// DOWN until the node it is bound to carries it, then ACTIVE.
    pub status: String,
    pub device_id: String,
    pub device_owner: String,
    pub port_security_enabled: bool,
    /// `binding:host_id`: the node carrying it; empty when unbound.
    pub binding_host_id: String,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub fixed_ips: Vec<FixedIp>,
    /// Security group ids, as given.
    pub security_groups: Vec<String>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which ports a list asks for; every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct PortFilter {
    /// Not an admin: only this project's ports.
    pub project_scope: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub network_id: Option<String>,
    pub project_id: Option<String>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub mac_address: Option<String>,
    pub status: Option<String>,
    pub binding_host_id: Option<String>,
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// One of a server's addresses, as Nova's `addresses` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    pub network_name: String,
    pub addr: String,
    pub version: u8,
    pub mac: String,
    /// A floating (or public) IP NATed to the fixed address before it, rather than
    /// a fixed address of the port.
    pub floating: bool,
}

/// A Neutron security group with its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    /// The project's `default` group, made on first use.
    pub is_default: bool,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub rules: Vec<SecurityGroupRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub project_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// Lower-case name (`tcp`) or decimal number; `None` is any protocol.
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    /// Normalised to its network address.
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A Neutron router: its gateway and interfaces are ports it owns
/// (`device_owner` `network:router_gateway` / `network:router_interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub status: String,
    /// The external network of its gateway, when it has one.
    pub external_network_id: Option<String>,
    pub enable_snat: bool,
    /// The node carrying its NAT (the "network node"); empty when no node was up.
    pub host: String,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A floating IP (and, seen through the `publicips` extension, a public IP): an address
/// on an external network, held by a port of its own (`network:floatingip`), NATed to
/// one fixed address of a port when associated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub router_id: Option<String>,
    pub status: String,
    pub description: String,
    /// The name a public IP was given (`publicips`).
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which floating IPs a list asks for; every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct FloatingIpFilter {
    pub project_id: Option<String>,
    pub floating_ip_address: Option<String>,
    pub port_id: Option<String>,
    pub router_id: Option<String>,
    pub floating_network_id: Option<String>,
    pub status: Option<String>,
}
