//! Ports and IPAM: a port's addresses are picked in the store's write transaction,
//! and `port_fixed_ips`' primary key (subnet, address) is the final guard, so an
//! address is never handed out twice, even to ports created in parallel.

use std::collections::HashSet;

use chrono::Utc;

use super::cidr::{Cidr, format_ip, parse_ip};
use super::networks::{network_not_found, visible};
use super::security_groups::port_groups;
use super::{QuotaResource, check_quota, check_text, owner_project, page_limit};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::model::{AddressPair, Caller, FixedIp, IpamSubnet, Network, Port, PortFilter};
use crate::store::{StoreError, Tx};

/// Neutron's `max_allowed_address_pair`.
const MAX_ADDRESS_PAIRS: usize = 10;

/// One entry of a port's `fixed_ips`: a subnet, an address, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedIpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<String>,
}

/// An allowed address pair as asked: the MAC defaults to the port's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPairRequest {
    pub ip_address: String,
    pub mac_address: Option<String>,
}

/// A new port, as a user (or server create) asks for it.
#[derive(Debug, Clone, Default)]
pub struct PortCreate {
    pub network_id: String,
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<String>,
    /// `None`: Neutron's default addresses; `Some([])`: none.
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub port_security_enabled: Option<bool>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPairRequest>>,
    pub binding_host_id: Option<String>,
}

/// The changes a port update asks for.
#[derive(Debug, Clone, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub port_security_enabled: Option<bool>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPairRequest>>,
    pub binding_host_id: Option<String>,
}

/// A port list request: Neutron's filters and paging.
#[derive(Debug, Clone, Default)]
pub struct PortQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub network_id: Option<String>,
    pub project_id: Option<String>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub mac_address: Option<String>,
    pub status: Option<String>,
    pub binding_host_id: Option<String>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// One page of ports, and whether more follow it.
#[derive(Debug, Clone)]
pub struct PortPage {
    pub ports: Vec<Port>,
    pub more: bool,
}

pub(crate) fn port_not_found(id: &str) -> Error {
    Error::NotFound(format!("Port {id} could not be found."))
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("Invalid input for {field}. Reason: {reason}"))
}

/// A unicast MAC address in canonical form (lower case, colons).
pub(crate) fn check_mac(text: &str) -> Result<String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let octets: Option<Vec<u8>> = (parts.len() == 6)
        .then(|| {
            parts
                .iter()
                .map(|p| {
                    (p.len() == 2)
                        .then(|| u8::from_str_radix(p, 16).ok())
                        .flatten()
                })
                .collect()
        })
        .flatten();
    match octets {
        Some(o) if o[0] & 1 == 0 && o.iter().any(|b| *b != 0) => Ok(o
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")),
        _ => Err(invalid(
            "mac_address",
            format!("'{text}' is not a valid unicast MAC address (e.g. fa:16:3e:12:34:56)"),
        )),
    }
}

/// Generated MACs a port create tries before it gives up: each is taken with a chance of
/// the network's ports in 2^24.
const MAC_DRAWS: u32 = 8;

/// A MAC in OpenStack's `fa:16:3e` range.
pub(crate) fn random_mac() -> String {
    let tail: [u8; 3] = rand::random();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", tail[0], tail[1], tail[2])
}

/// The SLAAC (EUI-64) address of `mac` in a /64.
fn eui64(cidr: Cidr, mac: &str) -> u128 {
    let o: Vec<u8> = mac
        .split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    let iid = u64::from_be_bytes([o[0] ^ 0x02, o[1], o[2], 0xff, 0xfe, o[3], o[4], o[5]]);
    cidr.first() | u128::from(iid)
}

fn is_autoconf(s: &IpamSubnet) -> bool {
    matches!(
        s.ipv6_address_mode.as_deref(),
        Some("slaac" | "dhcpv6-stateless")
    )
}

fn subnet_cidr(s: &IpamSubnet) -> Result<Cidr> {
    Cidr::parse(&s.cidr).map_err(|e| Error::internal(anyhow::anyhow!("stored subnet cidr: {e}")))
}

fn pools_of(s: &IpamSubnet, cidr: Cidr) -> Vec<(u128, u128)> {
    s.allocation_pools
        .iter()
        .filter_map(|p| Some((parse_ip(&p.start)?.1, parse_ip(&p.end)?.1)))
        .filter(|(a, b)| cidr.contains(cidr.version, *a) && a <= b)
        .collect()
}

/// Every address of `pools` once, beginning at `start` when it lies in one of them (the
/// pool's rest, the later pools, then the earlier ones and the skipped head), else at
/// the first pool's start. Lazy: an IPv6 pool can hold 2^64 addresses.
fn pool_walk(pools: &[(u128, u128)], start: Option<u128>) -> impl Iterator<Item = u128> + '_ {
    let at = start.and_then(|ip| pools.iter().position(|&(a, b)| (a..=b).contains(&ip)));
    let (first, from) = match at {
        Some(i) => (i, start.unwrap_or(pools[i].0)),
        None => (0, pools.first().map_or(0, |p| p.0)),
    };
    let n = pools.len();
    let tail = (0..n).map(move |k| {
        let (a, b) = pools[(first + k) % n];
        if k == 0 { from..=b } else { a..=b }
    });
    let head = pools
        .get(first)
        .filter(|&&(a, _)| from > a)
        .map(|&(a, _)| a..=from - 1);
    tail.chain(head).flatten()
}

fn check_pairs(pairs: Vec<AddressPairRequest>, port_mac: &str) -> Result<Vec<AddressPair>> {
    if pairs.len() > MAX_ADDRESS_PAIRS {
        return Err(invalid(
            "allowed_address_pairs",
            format!("at most {MAX_ADDRESS_PAIRS} pairs per port"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let ip_address = if pair.ip_address.contains('/') {
            Cidr::parse(&pair.ip_address)?.to_string()
        } else {
            parse_ip(&pair.ip_address)
                .map(|(v, ip)| format_ip(v, ip))
                .ok_or_else(|| {
                    invalid(
                        "allowed_address_pairs",
                        format!("'{}' is not an IP address or CIDR", pair.ip_address),
                    )
                })?
        };
        let mac_address = match pair.mac_address {
            Some(m) => check_mac(&m)?,
            None => port_mac.to_string(),
        };
        if !seen.insert((ip_address.clone(), mac_address.clone())) {
            return Err(invalid(
                "allowed_address_pairs",
                format!("Duplicate address pair {ip_address} {mac_address}"),
            ));
        }
        out.push(AddressPair {
            ip_address,
            mac_address,
        });
    }
    Ok(out)
}

fn check_security(port: &Port) -> Result<()> {
    if !port.port_security_enabled && !port.security_groups.is_empty() {
        return Err(Error::Conflict(
            "Port has security group associated. Cannot disable port security or ip address \
             until security group is removed."
                .into(),
        ));
    }
    if !port.port_security_enabled && !port.allowed_address_pairs.is_empty() {
        return Err(Error::Conflict(
            "Port Security must be enabled in order to have allowed address pairs on a port."
                .into(),
        ));
    }
    Ok(())
}

fn dedup_groups(groups: Vec<String>) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for g in groups {
        if g.is_empty() || g.len() > 255 {
            return Err(invalid(
                "security_groups",
                "a security group id must be 1 to 255 characters",
            ));
        }
        if seen.insert(g.clone()) {
            out.push(g);
        }
    }
    Ok(out)
}

/// IPAM for one port, inside the write transaction: keeps what `keep` already holds
/// when asked again, checks each requested address, and picks free ones.
pub(crate) fn allocate(
    tx: &Tx,
    network_id: &str,
    port: &Port,
    requests: Option<&[FixedIpRequest]>,
    keep: &[FixedIp],
) -> Result<Vec<FixedIp>> {
    let subnets = tx.network_ipam_subnets(network_id)?;
    let find = |id: &str| -> Result<&IpamSubnet> {
        subnets.iter().find(|s| s.id == id).ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for operation: subnet {id} is not a subnet of network \
                 {network_id}; list the network's subnets with GET /v2.0/subnets?network_id=\
                 {network_id}."
            ))
        })
    };
    let mut picked: Vec<FixedIp> = Vec::new();
    let mut taken_here: HashSet<(String, u128)> = HashSet::new();
    let take = |taken_here: &mut HashSet<(String, u128)>,
                subnet: &IpamSubnet,
                ip: u128,
                version: u8|
     -> Result<FixedIp> {
        if !taken_here.insert((subnet.id.clone(), ip)) {
            return Err(invalid(
                "fixed_ips",
                format!("{} is asked for twice", format_ip(version, ip)),
            ));
        }
        Ok(FixedIp {
            subnet_id: subnet.id.clone(),
            ip_address: format_ip(version, ip),
        })
    };
    let held_by_other = |subnet_id: &str, ip: &str| -> Result<bool> {
        Ok(tx
            .address_holder(subnet_id, ip)?
            .is_some_and(|holder| holder != port.id))
    };
    // A free address of a subnet's pools, not taken by this port already: probed from
    // the subnet's IPAM cursor onwards, wrapping once, so a create checks one or two
    // addresses instead of reading the subnet's every allocation. (A second address
    // from one subnet starts at the cursor as read: `also` skips the first.)
    let next_free =
        |subnet: &IpamSubnet, cidr: Cidr, also: &HashSet<(String, u128)>| -> Result<Option<u128>> {
            let pools = pools_of(subnet, cidr);
            let gateway = subnet
                .gateway_ip
                .as_deref()
                .and_then(parse_ip)
                .map(|(_, ip)| ip);
            for ip in pool_walk(&pools, subnet.cursor) {
                if Some(ip) == gateway || also.contains(&(subnet.id.clone(), ip)) {
                    continue;
                }
                if tx
                    .address_holder(&subnet.id, &format_ip(cidr.version, ip))?
                    .is_none()
                {
                    return Ok(Some(ip));
                }
            }
            Ok(None)
        };
    let exhausted = |subnet: &IpamSubnet| {
        Error::Conflict(format!(
            "No more IP addresses available on network {network_id}: subnet {} ({}) has no \
             free address left in its allocation pools; add a subnet or widen the pools.",
            subnet.id, subnet.cidr
        ))
    };

    let requests: Vec<FixedIpRequest> = match requests {
        Some(r) => r.to_vec(),
        None => {
            // Neutron's default: one IPv4 address, SLAAC addresses on every such IPv6
            // subnet, and one address from a stateful IPv6 subnet.
            let mut defaults = Vec::new();
            let v4: Vec<&IpamSubnet> = subnets.iter().filter(|s| s.ip_version == 4).collect();
            if !v4.is_empty() {
                // The first subnet with room gives its free address straight away.
                let mut chosen = None;
                for s in &v4 {
                    let cidr = subnet_cidr(s)?;
                    if let Some(ip) = next_free(s, cidr, &HashSet::new())? {
                        chosen = Some((s, cidr, ip));
                        break;
                    }
                }
                let Some((subnet, cidr, ip)) = chosen else {
                    return Err(exhausted(v4[0]));
                };
                tx.ipam_cursor_set(&subnet.id, ip.wrapping_add(1))?;
                picked.push(take(&mut taken_here, subnet, ip, cidr.version)?);
            }
            for s in subnets
                .iter()
                .filter(|s| s.ip_version == 6 && is_autoconf(s))
            {
                defaults.push(FixedIpRequest {
                    subnet_id: Some(s.id.clone()),
                    ip_address: None,
                });
            }
            if let Some(s) = subnets
                .iter()
                .find(|s| s.ip_version == 6 && !is_autoconf(s))
            {
                defaults.push(FixedIpRequest {
                    subnet_id: Some(s.id.clone()),
                    ip_address: None,
                });
            }
            defaults
        }
    };

    for request in requests {
        match (request.subnet_id.as_deref(), request.ip_address.as_deref()) {
            (None, None) => {
                return Err(invalid(
                    "fixed_ips",
                    "each entry needs a subnet_id, an ip_address, or both",
                ));
            }
            (subnet_id, Some(text)) => {
                let (version, ip) = parse_ip(text).ok_or_else(|| {
                    invalid("fixed_ips", format!("'{text}' is not a valid IP address"))
                })?;
                let subnet = match subnet_id {
                    Some(id) => find(id)?,
                    None => subnets
                        .iter()
                        .find(|s| subnet_cidr(s).is_ok_and(|c| c.contains(version, ip)))
                        .ok_or_else(|| {
                            invalid(
                                "fixed_ips",
                                format!("{text} is in no subnet of network {network_id}"),
                            )
                        })?,
                };
                let cidr = subnet_cidr(subnet)?;
                let (first, last) = cidr.usable();
                if !cidr.contains(version, ip) || ip < first || ip > last {
                    return Err(Error::BadRequest(format!(
                        "IP address {text} is not a valid IP for the specified subnet {} ({}).",
                        subnet.id, subnet.cidr
                    )));
                }
                let canonical = format_ip(version, ip);
                if subnet.gateway_ip.as_deref() == Some(canonical.as_str()) {
                    return Err(Error::Conflict(format!(
                        "IP address {canonical} already allocated in subnet {}: it is the \
                         subnet's gateway.",
                        subnet.id
                    )));
                }
                if held_by_other(&subnet.id, &canonical)? {
                    return Err(Error::Conflict(format!(
                        "IP address {canonical} already allocated in subnet {}",
                        subnet.id
                    )));
                }
                picked.push(take(&mut taken_here, subnet, ip, version)?);
            }
            (Some(id), None) => {
                let subnet = find(id)?;
                let cidr = subnet_cidr(subnet)?;
                if let Some(kept) = keep
                    .iter()
                    .find(|f| f.subnet_id == subnet.id && !picked.contains(f))
                {
                    let ip = parse_ip(&kept.ip_address).map_or(0, |(_, v)| v);
                    picked.push(take(&mut taken_here, subnet, ip, cidr.version)?);
                    continue;
                }
                let ip = if subnet.ip_version == 6 && is_autoconf(subnet) {
                    let ip = eui64(cidr, &port.mac_address);
                    let canonical = format_ip(cidr.version, ip);
                    if held_by_other(&subnet.id, &canonical)? {
                        return Err(Error::Conflict(format!(
                            "IP address {canonical} already allocated in subnet {}",
                            subnet.id
                        )));
                    }
                    ip
                } else {
                    // Free by construction: next_free checked it.
                    let ip =
                        next_free(subnet, cidr, &taken_here)?.ok_or_else(|| exhausted(subnet))?;
                    tx.ipam_cursor_set(&subnet.id, ip.wrapping_add(1))?;
                    ip
                };
                picked.push(take(&mut taken_here, subnet, ip, cidr.version)?);
            }
        }
    }
    Ok(picked)
}

/// May `caller` put a port on `network` (which it can see)? Only on its own or a shared
/// network, and choosing the MAC or an address is for the network's owner.
fn check_port_on_network(
    caller: &Caller,
    network: &Network,
    asks_address: bool,
    chooses_mac: bool,
) -> Result<()> {
    let network_owner =
        caller.is_admin() || caller.project_id() == Some(network.project_id.as_str());
    if !network_owner && !network.shared {
        return Err(Error::Forbidden(format!(
            "network {} belongs to another project and is not shared; only an \
             administrator may create ports on it",
            network.id
        )));
    }
    if !network_owner && (asks_address || chooses_mac) {
        return Err(Error::Forbidden(format!(
            "choosing a port's MAC or IP address on network {} is for its owner or an \
             administrator; leave them out to have them assigned",
            network.id
        )));
    }
    Ok(())
}

/// The store's last guard, in the user's terms.
pub(crate) fn port_write_error(e: StoreError, port: &Port) -> Error {
    match e {
        StoreError::Duplicate(what) if what.contains("mac_address") => Error::Conflict(format!(
            "Unable to complete operation for network {}. The mac address {} is in use.",
            port.network_id, port.mac_address
        )),
        StoreError::Duplicate(_) => Error::Conflict(
            "IP address already allocated in subnet: another port took it at the same time; \
             retry"
                .into(),
        ),
        other => other.into(),
    }
}

impl Core {
    /// A port the caller may see: its project's (or an admin's view).
    pub async fn port_get(&self, caller: &Caller, id: &str) -> Result<Port> {
        let key = id.to_string();
        self.store
            .read(move |db| db.port_get(&key))
            .await?
            .filter(|p| caller.is_admin() || caller.project_id() == Some(p.project_id.as_str()))
            .ok_or_else(|| port_not_found(id))
    }

    /// `POST /v2.0/ports`.
    pub async fn port_create(&self, caller: &Caller, input: PortCreate) -> Result<Port> {
        let project_id = owner_project(caller, input.project_id.clone())?;
        authorize(caller, &project_id, Access::Write, "ports of the project")?;
        if input
            .binding_host_id
            .as_deref()
            .is_some_and(|h| !h.is_empty())
        {
            require_admin(caller, "binding a port to a host (binding:host_id)")?;
        }
        self.port_create_checked(project_id, Some(caller.clone()), input)
            .await
    }

    /// Creates a port once policy has been checked, in one write transaction with the
    /// network look-up, the quota check and IPAM. `requester` is the user asking, whose
    /// right to the network is checked there; `None` for the scheduler's own ports
    /// (servers'), whose network was checked when the server was.
    pub(crate) async fn port_create_checked(
        &self,
        project_id: String,
        requester: Option<Caller>,
        input: PortCreate,
    ) -> Result<Port> {
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let given_mac = input.mac_address.as_deref().map(check_mac).transpose()?;
        let asks_address = input
            .fixed_ips
            .as_ref()
            .is_some_and(|ips| ips.iter().any(|f| f.ip_address.is_some()));
        let now = Utc::now();
        let mut port = Port {
            id: uuid::Uuid::new_v4().to_string(),
            network_id: input.network_id,
            project_id,
            name,
            description,
            mac_address: given_mac.clone().unwrap_or_else(random_mac),
            admin_state_up: input.admin_state_up.unwrap_or(true),
            status: "DOWN".into(),
            device_id: input.device_id.unwrap_or_default(),
            device_owner: input.device_owner.unwrap_or_default(),
            // Settled from the network's default in the transaction.
            port_security_enabled: input.port_security_enabled.unwrap_or(true),
            binding_host_id: input.binding_host_id.unwrap_or_default(),
            allowed_address_pairs: Vec::new(),
            fixed_ips: Vec::new(),
            security_groups: Vec::new(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        port.allowed_address_pairs = check_pairs(
            input.allowed_address_pairs.unwrap_or_default(),
            &port.mac_address,
        )?;
        check_text("device_id", &port.device_id, 255)?;
        check_text("device_owner", &port.device_owner, 255)?;
        let port_security = input.port_security_enabled;
        let asked_groups = input.security_groups.map(dedup_groups).transpose()?;
        // The scheduler's own ports (servers') name their groups as Nova was given them.
        let by_name = requester.is_none();
        let defaults = self.config.network.default_quota;
        let requests = input.fixed_ips;
        let row = port;
        let port = self
            .store
            .write(move |tx| {
                let mut port = row;
                let network = tx
                    .network_without_subnets(&port.network_id)?
                    .filter(|n| requester.as_ref().is_none_or(|c| visible(c, n)))
                    .ok_or_else(|| network_not_found(&port.network_id))?;
                if let Some(caller) = &requester {
                    check_port_on_network(caller, &network, asks_address, given_mac.is_some())?;
                }
                port.port_security_enabled = port_security.unwrap_or(network.port_security_enabled);
                // The network's own ports (router, DHCP, floating IP) are not filtered.
                let filtered =
                    port.port_security_enabled && !port.device_owner.starts_with("network:");
                port.security_groups = match &asked_groups {
                    // A server's groups do not apply where port security is off.
                    _ if by_name && !filtered => Vec::new(),
                    Some(asked) if !port.port_security_enabled && !asked.is_empty() => {
                        asked.clone()
                    }
                    asked => port_groups(
                        tx,
                        requester.as_ref(),
                        &port.project_id,
                        filtered,
                        asked.as_deref(),
                        by_name,
                    )?,
                };
                check_security(&port)?;
                check_quota(tx, &defaults, &port.project_id, QuotaResource::Port)?;
                // The (network, MAC) key finds a MAC in use; a generated one (24 random
                // bits) is drawn again, which spares every create a look-up of its own.
                let mut draws = 1;
                loop {
                    // SLAAC addresses derive from the MAC: allocated for each draw.
                    port.fixed_ips =
                        allocate(tx, &port.network_id, &port, requests.as_deref(), &[])?;
                    match tx.port_insert(&port) {
                        Err(StoreError::Duplicate(what))
                            if given_mac.is_none()
                                && what.contains("mac_address")
                                && draws < MAC_DRAWS =>
                        {
                            draws += 1;
                            port.mac_address = random_mac();
                            for pair in &mut port.allowed_address_pairs {
                                pair.mac_address = port.mac_address.clone();
                            }
                        }
                        result => break result.map_err(|e| port_write_error(e, &port))?,
                    }
                }
                Ok::<_, Error>(port)
            })
            .await?;
        tracing::info!(port = %port.id, network = %port.network_id, "port created");
        self.network_dirty(&port.binding_host_id);
        // A bound port's addresses join its groups, which peers' rules may name.
        if !port.binding_host_id.is_empty() {
            self.security_groups_dirty(port.security_groups.clone());
        }
        Ok(port)
    }

    /// `GET /v2.0/ports`.
    pub async fn ports_list(&self, caller: &Caller, query: PortQuery) -> Result<PortPage> {
        let project_scope = if caller.is_admin() {
            None
        } else {
            Some(require_project(caller)?.to_string())
        };
        let limit = page_limit(query.limit);
        let filter = PortFilter {
            project_scope,
            id: query.id,
            name: query.name,
            network_id: query.network_id,
            project_id: query.project_id,
            device_id: query.device_id,
            device_owner: query.device_owner,
            mac_address: query.mac_address,
            status: query.status,
            binding_host_id: query.binding_host_id,
            marker: query.marker,
            limit: limit.map(|l| l + 1),
        };
        let mut ports = self.store.read(move |db| db.ports_list(&filter)).await?;
        let more = limit.is_some_and(|l| ports.len() > l);
        if let Some(l) = limit {
            ports.truncate(l);
        }
        Ok(PortPage { ports, more })
    }

    /// `PUT /v2.0/ports/{id}`.
    pub async fn port_update(&self, caller: &Caller, id: &str, change: PortUpdate) -> Result<Port> {
        let mut port = self.port_get(caller, id).await?;
        authorize(
            caller,
            &port.project_id,
            Access::Write,
            &format!("port {id}"),
        )?;
        let old_host = port.binding_host_id.clone();
        let old_groups = port.security_groups.clone();
        if change.binding_host_id.is_some() {
            require_admin(caller, "binding a port to a host (binding:host_id)")?;
        }
        if change.mac_address.is_some() {
            require_admin(caller, "changing a port's MAC address")?;
        }
        if let Some(name) = change.name {
            check_text("name", &name, 255)?;
            port.name = name;
        }
        if let Some(description) = change.description {
            check_text("description", &description, 255)?;
            port.description = description;
        }
        let new_mac = change.mac_address.as_deref().map(check_mac).transpose()?;
        if let Some(mac) = &new_mac {
            if !port.binding_host_id.is_empty() {
                return Err(Error::Conflict(format!(
                    "Unable to complete operation on port {id}: the MAC address of a bound port \
                     cannot change; unbind it first."
                )));
            }
            port.mac_address = mac.clone();
        }
        if let Some(device_id) = change.device_id {
            check_text("device_id", &device_id, 255)?;
            port.device_id = device_id;
        }
        if let Some(device_owner) = change.device_owner {
            check_text("device_owner", &device_owner, 255)?;
            port.device_owner = device_owner;
        }
        if let Some(host) = change.binding_host_id {
            port.binding_host_id = host;
        }
        port.admin_state_up = change.admin_state_up.unwrap_or(port.admin_state_up);
        port.port_security_enabled = change
            .port_security_enabled
            .unwrap_or(port.port_security_enabled);
        let new_groups = change.security_groups.map(dedup_groups).transpose()?;
        if let Some(groups) = &new_groups {
            port.security_groups = groups.clone();
        }
        if let Some(pairs) = change.allowed_address_pairs {
            port.allowed_address_pairs = check_pairs(pairs, &port.mac_address)?;
        }
        check_security(&port)?;
        port.revision_number += 1;
        port.updated_at = Utc::now();
        let requests = change.fixed_ips;
        let caller = caller.clone();
        let row = port;
        let port = self
            .store
            .write(move |tx| {
                let mut port = row;
                let Some(current) = tx.port_get(&port.id)? else {
                    return Err(port_not_found(&port.id));
                };
                if let Some(asked) = &new_groups {
                    port.security_groups = port_groups(
                        tx,
                        Some(&caller),
                        &port.project_id,
                        true,
                        Some(asked),
                        false,
                    )?;
                }
                if new_mac.is_some()
                    && new_mac.as_deref() != Some(current.mac_address.as_str())
                    && tx.mac_in_use(&port.network_id, &port.mac_address)?
                {
                    return Err(Error::Conflict(format!(
                        "Unable to complete operation for network {}. The mac address {} is \
                         in use.",
                        port.network_id, port.mac_address
                    )));
                }
                if let Some(requests) = &requests {
                    port.fixed_ips = allocate(
                        tx,
                        &port.network_id,
                        &port,
                        Some(requests),
                        &current.fixed_ips,
                    )?;
                }
                tx.port_update(&port)
                    .map_err(|e| port_write_error(e, &port))?;
                Ok(port)
            })
            .await?;
        self.network_dirty(&old_host);
        self.network_dirty(&port.binding_host_id);
        if !old_host.is_empty() || !port.binding_host_id.is_empty() {
            let mut groups = old_groups;
            groups.extend(port.security_groups.iter().cloned());
            groups.sort();
            groups.dedup();
            self.security_groups_dirty(groups);
        }
        Ok(port)
    }

    /// `DELETE /v2.0/ports/{id}`: its addresses return to their pools.
    pub async fn port_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let port = self.port_get(caller, id).await?;
        authorize(
            caller,
            &port.project_id,
            Access::Write,
            &format!("port {id}"),
        )?;
        if port.device_owner.starts_with("network:router_")
            || port.device_owner == "network:floatingip"
        {
            return Err(Error::Conflict(format!(
                "Port {id} cannot be deleted directly via the port API: has device owner {}; \
                 use the router's remove_router_interface, clear its gateway, or delete the \
                 floating IP.",
                port.device_owner
            )));
        }
        let (host, groups) = (port.binding_host_id.clone(), port.security_groups.clone());
        self.store
            .write(move |tx| Ok::<_, Error>(tx.port_delete(&port.id)?))
            .await?;
        tracing::info!(port = %id, "port deleted");
        self.network_dirty(&host);
        if !host.is_empty() {
            self.security_groups_dirty(groups);
        }
        Ok(())
    }
}

impl Core {
    /// Moves a server's ports to the node it now runs on (after a live migration) and
    /// re-pushes both the nodes it left and the one it reached.
    pub(crate) async fn server_ports_rebind(&self, server_id: &str, host: &str) -> Result<()> {
        let (device, node) = (server_id.to_string(), host.to_string());
        let left = self
            .store
            .write(move |tx| {
                let mut left = Vec::new();
                let ports = tx.ports_list(&PortFilter {
                    device_id: Some(device),
                    ..PortFilter::default()
                })?;
                for mut port in ports.into_iter().filter(|p| p.binding_host_id != node) {
                    left.push(std::mem::replace(&mut port.binding_host_id, node.clone()));
                    port.status = "DOWN".into();
                    port.revision_number += 1;
                    port.updated_at = Utc::now();
                    tx.port_update(&port)?;
                }
                Ok::<_, Error>(left)
            })
            .await?;
        for old in &left {
            self.network_dirty(old);
        }
        self.network_dirty(host);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_canonical_and_unicast() {
        assert_eq!(check_mac("FA-16-3E-00-11-22").unwrap(), "fa:16:3e:00:11:22");
        assert!(check_mac("01:00:5e:00:00:01").is_err());
        assert!(check_mac("00:00:00:00:00:00").is_err());
        assert!(check_mac("fa:16:3e:00:11").is_err());
        assert!(random_mac().starts_with("fa:16:3e:"));
    }

    #[test]
    fn the_pool_walk_starts_at_the_cursor_and_wraps_once() {
        let pools = [(10, 12), (20, 21)];
        let walk = |start| pool_walk(&pools, start).collect::<Vec<_>>();
        assert_eq!(walk(None), [10, 11, 12, 20, 21]);
        assert_eq!(walk(Some(11)), [11, 12, 20, 21, 10]);
        assert_eq!(walk(Some(21)), [21, 10, 11, 12, 20]);
        // A cursor outside every pool (pools changed, or past the last address).
        assert_eq!(walk(Some(22)), [10, 11, 12, 20, 21]);
        assert_eq!(pool_walk(&[], Some(3)).count(), 0);
        // Lazy over a /64.
        assert_eq!(
            pool_walk(&[(1, u128::from(u64::MAX))], None).nth(2),
            Some(3)
        );
    }

    #[test]
    fn slaac_addresses_follow_eui64() {
        let cidr = Cidr::parse("fd00::/64").unwrap();
        let ip = eui64(cidr, "fa:16:3e:12:34:56");
        assert_eq!(format_ip(6, ip), "fd00::f816:3eff:fe12:3456");
    }
}
