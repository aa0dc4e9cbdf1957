//! Subnets: an IPv4 or IPv6 address plan on a network — the CIDR, its gateway, the
//! pools IPAM hands addresses out of, DHCP options. Checked as Neutron checks them, with
//! a message that says what to change.

use std::collections::HashSet;

use chrono::Utc;

use super::cidr::{Cidr, format_ip, parse_ip};
use super::networks::visible;
use super::{QuotaResource, check_quota, check_text, owner_project, page_limit};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_project};
use crate::model::{AllocationPool, Caller, HostRoute, Network, Subnet, SubnetFilter};

/// Neutron's `max_dns_nameservers` and `max_subnet_host_routes`.
const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;
/// The largest subnets accepted: beyond these, pools are too large to be meaningful.
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 48;
const IPV6_MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

/// A new subnet, as a user asks for it.
#[derive(Debug, Clone, Default)]
pub struct SubnetCreate {
    pub network_id: String,
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub ip_version: u8,
    pub cidr: String,
    /// Absent: the first address; `Some(None)`: no gateway.
    pub gateway_ip: Option<Option<String>>,
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: Option<Vec<String>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
}

/// The changes a subnet update asks for.
#[derive(Debug, Clone, Default)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub gateway_ip: Option<Option<String>>,
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: Option<Vec<String>>,
    pub host_routes: Option<Vec<HostRoute>>,
}

/// A subnet list request: Neutron's filters and paging.
#[derive(Debug, Clone, Default)]
pub struct SubnetQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub network_id: Option<String>,
    pub project_id: Option<String>,
    pub cidr: Option<String>,
    pub ip_version: Option<u8>,
    pub enable_dhcp: Option<bool>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// One page of subnets, and whether more follow it.
#[derive(Debug, Clone)]
pub struct SubnetPage {
    pub subnets: Vec<Subnet>,
    pub more: bool,
}

pub(crate) fn subnet_not_found(id: &str) -> Error {
    Error::NotFound(format!("Subnet {id} could not be found."))
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Invalid input for {field}. Reason: {reason}"))
}

/// An address of the subnet's family inside its CIDR.
fn address_in(cidr: Cidr, field: &str, text: &str) -> Result<u128> {
    match parse_ip(text) {
        Some((v, ip)) if cidr.contains(v, ip) => Ok(ip),
        Some(_) => Err(invalid(
            field,
            format!("{text} is not an address of {cidr}; give one inside the subnet"),
        )),
        None => Err(invalid(
            field,
            format!("'{text}' is not a valid IP address"),
        )),
    }
}

/// Checks the gateway against the CIDR and returns it as an integer.
fn check_gateway(cidr: Cidr, gateway: Option<&str>) -> Result<Option<u128>> {
    let Some(text) = gateway else {
        return Ok(None);
    };
    let ip = address_in(cidr, "gateway_ip", text)?;
    let (first, last) = cidr.usable();
    if ip < first || ip > last {
        return Err(invalid(
            "gateway_ip",
            format!(
                "{text} is the network or broadcast address of {cidr}; pick another address \
                 of the subnet"
            ),
        ));
    }
    Ok(Some(ip))
}

/// Checks pools inside the usable range, ordered, disjoint and clear of the gateway;
/// returns them in canonical form.
fn check_pools(
    cidr: Cidr,
    pools: &[AllocationPool],
    gateway: Option<u128>,
) -> Result<Vec<AllocationPool>> {
    let (first, last) = cidr.usable();
    let mut ranges = Vec::with_capacity(pools.len());
    for pool in pools {
        let start = address_in(cidr, "allocation_pools", &pool.start)?;
        let end = address_in(cidr, "allocation_pools", &pool.end)?;
        if start > end {
            return Err(invalid(
                "allocation_pools",
                format!("the pool {}-{} starts after it ends", pool.start, pool.end),
            ));
        }
        if start < first || end > last {
            return Err(invalid(
                "allocation_pools",
                format!(
                    "the pool {}-{} reaches the network or broadcast address of {cidr}; keep \
                     it within {}-{}",
                    pool.start,
                    pool.end,
                    format_ip(cidr.version, first),
                    format_ip(cidr.version, last)
                ),
            ));
        }
        ranges.push((start, end));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        if pair[1].0 <= pair[0].1 {
            return Err(invalid(
                "allocation_pools",
                format!(
                    "the pools {}-{} and {}-{} overlap",
                    format_ip(cidr.version, pair[0].0),
                    format_ip(cidr.version, pair[0].1),
                    format_ip(cidr.version, pair[1].0),
                    format_ip(cidr.version, pair[1].1)
                ),
            ));
        }
    }
    if let Some(g) = gateway
        && let Some((s, e)) = ranges.iter().find(|(s, e)| g >= *s && g <= *e)
    {
        return Err(Error::Conflict(format!(
            "Gateway ip {} conflicts with allocation pool {}-{}.",
            format_ip(cidr.version, g),
            format_ip(cidr.version, *s),
            format_ip(cidr.version, *e)
        )));
    }
    Ok(pool_list(cidr.version, &ranges))
}

fn pool_list(version: u8, ranges: &[(u128, u128)]) -> Vec<AllocationPool> {
    ranges
        .iter()
        .map(|(s, e)| AllocationPool {
            start: format_ip(version, *s),
            end: format_ip(version, *e),
        })
        .collect()
}

fn check_dns(servers: &[String]) -> Result<Vec<String>> {
    if servers.len() > MAX_DNS {
        return Err(invalid(
            "dns_nameservers",
            format!("at most {MAX_DNS} name servers per subnet"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(servers.len());
    for text in servers {
        let canonical = parse_ip(text)
            .map(|(v, ip)| format_ip(v, ip))
            .ok_or_else(|| {
                invalid(
                    "dns_nameservers",
                    format!("'{text}' is not a valid IP address"),
                )
            })?;
        if !seen.insert(canonical.clone()) {
            return Err(invalid(
                "dns_nameservers",
                format!("Duplicate nameserver '{text}'"),
            ));
        }
        out.push(canonical);
    }
    Ok(out)
}

fn check_routes(version: u8, routes: &[HostRoute]) -> Result<Vec<HostRoute>> {
    if routes.len() > MAX_ROUTES {
        return Err(invalid(
            "host_routes",
            format!("at most {MAX_ROUTES} host routes per subnet"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(routes.len());
    for route in routes {
        let destination = Cidr::parse(&route.destination)?;
        let nexthop = parse_ip(&route.nexthop).ok_or_else(|| {
            invalid(
                "host_routes",
                format!("nexthop '{}' is not a valid IP address", route.nexthop),
            )
        })?;
        if destination.version != version || nexthop.0 != version {
            return Err(invalid(
                "host_routes",
                format!(
                    "the route {} via {} is not IPv{version} like the subnet",
                    route.destination, route.nexthop
                ),
            ));
        }
        let route = HostRoute {
            destination: destination.to_string(),
            nexthop: format_ip(nexthop.0, nexthop.1),
        };
        if !seen.insert(route.clone().destination + " " + &route.nexthop) {
            return Err(invalid(
                "host_routes",
                format!(
                    "Duplicate hostroute '{} {}'",
                    route.destination, route.nexthop
                ),
            ));
        }
        out.push(route);
    }
    Ok(out)
}

fn check_ipv6_modes(cidr: Cidr, ra_mode: Option<&str>, address_mode: Option<&str>) -> Result<()> {
    for (field, mode) in [
        ("ipv6_ra_mode", ra_mode),
        ("ipv6_address_mode", address_mode),
    ] {
        let Some(mode) = mode else { continue };
        if cidr.version != 6 {
            return Err(invalid(
                field,
                "ipv6_ra_mode and ipv6_address_mode are for IPv6 subnets only",
            ));
        }
        if !IPV6_MODES.contains(&mode) {
            return Err(invalid(
                field,
                format!("'{mode}' is not one of {}", IPV6_MODES.join(", ")),
            ));
        }
    }
    if let (Some(ra), Some(address)) = (ra_mode, address_mode)
        && ra != address
    {
        return Err(invalid(
            "ipv6_address_mode",
            format!(
                "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{address}' is not \
                 valid; set both to the same mode"
            ),
        ));
    }
    let autoconf = matches!(address_mode.or(ra_mode), Some("slaac" | "dhcpv6-stateless"));
    if autoconf && cidr.prefix != 64 {
        return Err(invalid("cidr", format!("{cidr}: SLAAC needs a /64 prefix")));
    }
    Ok(())
}

impl Core {
    /// A subnet the caller may see: its project's, or on a network it may see.
    pub async fn subnet_get(&self, caller: &Caller, id: &str) -> Result<Subnet> {
        let key = id.to_string();
        let found = self
            .store
            .read(move |db| {
                let Some(subnet) = db.subnet_get(&key)? else {
                    return Ok(None);
                };
                let network = db.network_get(&subnet.network_id)?;
                Ok(Some((subnet, network)))
            })
            .await?;
        match found {
            Some((subnet, network))
                if caller.is_admin()
                    || caller.project_id() == Some(subnet.project_id.as_str())
                    || network.as_ref().is_some_and(|n| visible(caller, n)) =>
            {
                Ok(subnet)
            }
            _ => Err(subnet_not_found(id)),
        }
    }

    /// A subnet the caller may change: 403 when it may see but not change it.
    async fn subnet_for_change(&self, caller: &Caller, id: &str) -> Result<Subnet> {
        let subnet = self.subnet_get(caller, id).await?;
        if !caller.is_admin() && caller.project_id() != Some(subnet.project_id.as_str()) {
            return Err(Error::Forbidden(format!(
                "subnet {id} belongs to another project; only its project or an administrator \
                 may change it"
            )));
        }
        authorize(
            caller,
            &subnet.project_id,
            Access::Write,
            &format!("subnet {id}"),
        )?;
        Ok(subnet)
    }

    /// The network a subnet is created on: 404 when invisible, 403 when another
    /// project's (shared or external networks get subnets from their owner).
    async fn network_for_subnet(&self, caller: &Caller, network_id: &str) -> Result<Network> {
        let network = self.network_get(caller, network_id).await?;
        if !caller.is_admin() && caller.project_id() != Some(network.project_id.as_str()) {
            return Err(Error::Forbidden(format!(
                "network {network_id} belongs to another project; only its project or an \
                 administrator may add subnets to it"
            )));
        }
        Ok(network)
    }

    /// `POST /v2.0/subnets`.
    pub async fn subnet_create(&self, caller: &Caller, input: SubnetCreate) -> Result<Subnet> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(caller, &project_id, Access::Write, "subnets of the project")?;
        let network = self.network_for_subnet(caller, &input.network_id).await?;
        if !matches!(input.ip_version, 4 | 6) {
            return Err(invalid(
                "ip_version",
                format!("{} is not a valid IP version; use 4 or 6", input.ip_version),
            ));
        }
        let cidr = Cidr::parse(&input.cidr)?;
        if cidr.version != input.ip_version {
            return Err(invalid(
                "cidr",
                format!(
                    "{} is an IPv{} prefix but ip_version is {}",
                    input.cidr, cidr.version, input.ip_version
                ),
            ));
        }
        let (min_prefix, max_prefix) = if cidr.version == 4 {
            (MIN_PREFIX_V4, 30)
        } else {
            (MIN_PREFIX_V6, 126)
        };
        if cidr.prefix < min_prefix || cidr.prefix > max_prefix {
            return Err(invalid(
                "cidr",
                format!(
                    "{cidr} has a /{} prefix; IPv{} subnets here take /{min_prefix} to \
                     /{max_prefix}",
                    cidr.prefix, cidr.version
                ),
            ));
        }
        check_ipv6_modes(
            cidr,
            input.ipv6_ra_mode.as_deref(),
            input.ipv6_address_mode.as_deref(),
        )?;
        let gateway_text = match input.gateway_ip {
            None => Some(format_ip(cidr.version, cidr.first() + 1)),
            Some(g) => g,
        };
        let gateway = check_gateway(cidr, gateway_text.as_deref())?;
        let allocation_pools = match &input.allocation_pools {
            Some(pools) => check_pools(cidr, pools, gateway)?,
            None => pool_list(cidr.version, &cidr.default_pools(gateway)),
        };
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let now = Utc::now();
        let subnet = Subnet {
            id: uuid::Uuid::new_v4().to_string(),
            network_id: network.id.clone(),
            project_id,
            name,
            description,
            ip_version: cidr.version,
            cidr: cidr.to_string(),
            gateway_ip: gateway.map(|g| format_ip(cidr.version, g)),
            enable_dhcp: input.enable_dhcp.unwrap_or(true),
            dns_nameservers: check_dns(&input.dns_nameservers.unwrap_or_default())?,
            host_routes: check_routes(cidr.version, &input.host_routes.unwrap_or_default())?,
            allocation_pools,
            ipv6_ra_mode: input.ipv6_ra_mode,
            ipv6_address_mode: input.ipv6_address_mode,
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let defaults = self.config.network.default_quota;
        let row = subnet.clone();
        self.store
            .write(move |tx| {
                if tx.network_get(&row.network_id)?.is_none() {
                    return Err(super::networks::network_not_found(&row.network_id));
                }
                for other in tx.network_subnet_list(&row.network_id)? {
                    if Cidr::parse(&other.cidr).is_ok_and(|c| c.overlaps(cidr)) {
                        return Err(Error::BadRequest(format!(
                            "Invalid input for operation: Requested subnet with cidr: {} for \
                             network: {} overlaps with another subnet ({} {}).",
                            row.cidr, row.network_id, other.id, other.cidr
                        )));
                    }
                }
                check_quota(tx, &defaults, &row.project_id, QuotaResource::Subnet)?;
                tx.subnet_insert(&row)?;
                Ok(())
            })
            .await?;
        tracing::info!(subnet = %subnet.id, network = %subnet.network_id, cidr = %subnet.cidr, "subnet created");
        self.network_dirty_for_network(&subnet.network_id).await;
        Ok(subnet)
    }

    /// `GET /v2.0/subnets`.
    pub async fn subnets_list(&self, caller: &Caller, query: SubnetQuery) -> Result<SubnetPage> {
        let visible_to = if caller.is_admin() {
            None
        } else {
            Some(require_project(caller)?.to_string())
        };
        let limit = page_limit(query.limit);
        let filter = SubnetFilter {
            visible_to,
            id: query.id,
            name: query.name,
            network_id: query.network_id,
            project_id: query.project_id,
            cidr: query.cidr,
            ip_version: query.ip_version,
            enable_dhcp: query.enable_dhcp,
            marker: query.marker,
            limit: limit.map(|l| l + 1),
        };
        let mut subnets = self.store.read(move |db| db.subnets_list(&filter)).await?;
        let more = limit.is_some_and(|l| subnets.len() > l);
        if let Some(l) = limit {
            subnets.truncate(l);
        }
        Ok(SubnetPage { subnets, more })
    }

    /// `PUT /v2.0/subnets/{id}`.
    pub async fn subnet_update(
        &self,
        caller: &Caller,
        id: &str,
        change: SubnetUpdate,
    ) -> Result<Subnet> {
        let mut subnet = self.subnet_for_change(caller, id).await?;
        let cidr = Cidr::parse(&subnet.cidr)
            .map_err(|e| Error::internal(anyhow::anyhow!("stored subnet cidr: {e}")))?;
        if let Some(name) = change.name {
            check_text("name", &name, 255)?;
            subnet.name = name;
        }
        if let Some(description) = change.description {
            check_text("description", &description, 255)?;
            subnet.description = description;
        }
        if let Some(gateway) = change.gateway_ip {
            subnet.gateway_ip =
                check_gateway(cidr, gateway.as_deref())?.map(|g| format_ip(cidr.version, g));
        }
        let gateway = subnet
            .gateway_ip
            .as_deref()
            .and_then(parse_ip)
            .map(|(_, ip)| ip);
        let pools = change
            .allocation_pools
            .unwrap_or_else(|| subnet.allocation_pools.clone());
        subnet.allocation_pools = check_pools(cidr, &pools, gateway)?;
        if let Some(dns) = change.dns_nameservers {
            subnet.dns_nameservers = check_dns(&dns)?;
        }
        if let Some(routes) = change.host_routes {
            subnet.host_routes = check_routes(cidr.version, &routes)?;
        }
        subnet.enable_dhcp = change.enable_dhcp.unwrap_or(subnet.enable_dhcp);
        subnet.revision_number += 1;
        subnet.updated_at = Utc::now();
        let row = subnet.clone();
        self.store
            .write(move |tx| {
                if tx.subnet_get(&row.id)?.is_none() {
                    return Err(subnet_not_found(&row.id));
                }
                tx.subnet_update(&row)?;
                Ok(())
            })
            .await?;
        self.network_dirty_for_network(&subnet.network_id).await;
        Ok(subnet)
    }

    /// `DELETE /v2.0/subnets/{id}`: refused while ports hold addresses on it.
    pub async fn subnet_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let subnet = self.subnet_for_change(caller, id).await?;
        let network_id = subnet.network_id.clone();
        self.store
            .write(move |tx| {
                if tx.subnet_allocated(&subnet.id)? > 0 {
                    return Err(Error::Conflict(format!(
                        "Unable to complete operation on subnet {}: One or more ports have an \
                         IP allocation from this subnet.",
                        subnet.id
                    )));
                }
                tx.subnet_delete(&subnet.id)?;
                Ok(())
            })
            .await?;
        tracing::info!(subnet = %id, "subnet deleted");
        self.network_dirty_for_network(&network_id).await;
        Ok(())
    }
}
