//! Pushing networks to nodes. The scheduler keeps the desired state; each node is sent
//! the whole network document it must carry ([`NodeNetworkSpec`]) whenever a change
//! touches it. One worker per node coalesces changes (however many arrive while it
//! pushes, it pushes once more), retries with backoff, and a watcher pushes again to
//! every node that (re)joined or restarted since its last push — its agent's
//! `started_at` changed — which is what reconciliation builds on. A node's spec names
//! its own underlay address and, per network, the other nodes carrying it (the VXLAN
//! peers, at the IPv4 address of their agent URL); when a node joins or leaves a network
//! the network's other nodes are pushed again, so their peer lists follow.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use yunji_common::agent_api::{
    AddressPairSpec, FloatingIpSpec, HealthMonitorSpec, HostRouteSpec, ListenerSpec,
    LoadBalancerSpec, MemberSpec, NetworkSpec, NodeNetworkSpec, PoolSpec, PortAddressSpec,
    PortSpec, RouterGatewaySpec, RouterInterfaceSpec, RouterSpec, SecurityGroupSpec,
    SecurityRuleSpec, SubnetSpec,
};

use super::routers::{OWNER_GATEWAY, OWNER_INTERFACE};
use crate::core::error::{Error, Result};
use crate::core::{Core, error_chain};
use crate::model::{FloatingIpFilter, NodeState, Port, PortFilter};
use crate::store::Db;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The per-node workers and the generation counter; held by [`Core`].
#[derive(Default)]
pub struct NetworkSync {
    nodes: Mutex<HashMap<String, Arc<NodeSync>>>,
    /// Dropped with the core, which stops every worker.
    workers: Mutex<tokio::task::JoinSet<()>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for NetworkSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSync").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct NodeSync {
    wake: Notify,
    /// The agent start (`started_at`) the last successful push reached.
    pushed_for: Mutex<Option<DateTime<Utc>>>,
    /// The underlay address and networks of the node's last rendered spec.
    rendered: Mutex<(Option<String>, BTreeSet<String>)>,
    /// Held from rendering to applying, so that pushes to a node (the worker's and a
    /// load balancer's own) reach it in the order of their generations.
    pushing: tokio::sync::Mutex<()>,
}

impl NodeSync {
    fn pushed_for(&self) -> Option<DateTime<Utc>> {
        *self.pushed_for.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_pushed_for(&self, started_at: Option<DateTime<Utc>>) {
        *self.pushed_for.lock().unwrap_or_else(|p| p.into_inner()) = started_at;
    }

    /// Records what the node was just rendered with; answers the networks whose peer
    /// lists elsewhere name it differently now: those it joined or left, or all of them
    /// when its underlay address changed.
    fn rendered(&self, spec: &NodeNetworkSpec) -> BTreeSet<String> {
        let networks: BTreeSet<String> = spec.networks.iter().map(|n| n.id.clone()).collect();
        let mut rendered = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        let (underlay, before) = &*rendered;
        let changed = if *underlay == spec.underlay {
            before.symmetric_difference(&networks).cloned().collect()
        } else {
            before.union(&networks).cloned().collect()
        };
        *rendered = (spec.underlay.clone(), networks);
        changed
    }
}

impl NetworkSync {
    /// A generation above every earlier one, also across scheduler restarts: it
    /// starts from the clock.
    fn next_generation(&self) -> u64 {
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        let previous = self
            .generation
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |g| {
                Some(g.saturating_add(1).max(now))
            })
            .unwrap_or(0);
        previous.saturating_add(1).max(now)
    }

    /// The agent start the node's last successful push reached.
    fn pushed_for(&self, node: &str) -> Option<DateTime<Utc>> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes.get(node).and_then(|slot| slot.pushed_for())
    }

    /// The node's slot, and whether it was just made (its worker must start).
    fn slot(&self, node: &str) -> (Arc<NodeSync>, bool) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        match nodes.get(node) {
            Some(slot) => (slot.clone(), false),
            None => {
                let slot = Arc::new(NodeSync::default());
                nodes.insert(node.to_string(), slot.clone());
                (slot, true)
            }
        }
    }
}

/// Pushes to one node whenever woken, until the core is gone.
async fn worker(core: Weak<Core>, node: String, slot: Arc<NodeSync>) {
    loop {
        slot.wake.notified().await;
        let mut backoff = BACKOFF_MIN;
        loop {
            let Some(core) = core.upgrade() else { return };
            let pushed = core.network_push(&node).await;
            drop(core);
            match pushed {
                Ok(started_at) => {
                    slot.set_pushed_for(started_at);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%node, error = %error_chain(&error), retry_in = ?backoff,
                        "pushing the node's network failed");
                    slot.set_pushed_for(None);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = slot.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl Core {
    /// Schedules a push of `node`'s network state.
    pub(crate) fn network_dirty(&self, node: &str) {
        if node.is_empty() {
            return;
        }
        self.node_sync(node).wake.notify_one();
    }

    /// The node's sync slot, its worker started with it.
    fn node_sync(&self, node: &str) -> Arc<NodeSync> {
        let (slot, new) = self.network_sync.slot(node);
        if new {
            let mut workers = self
                .network_sync
                .workers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            workers.spawn(worker(self.me.clone(), node.to_string(), slot.clone()));
        }
        slot
    }

    /// Schedules a push to every node carrying ports on `network_id`.
    /// A failure to read is logged: the change itself is made, and the watcher's next
    /// round or the next change pushes it.
    pub(crate) async fn network_dirty_for_network(&self, network_id: &str) {
        let id = network_id.to_string();
        match self.store.read(move |db| db.network_hosts(&id)).await {
            Ok(hosts) => hosts.iter().for_each(|h| self.network_dirty(h)),
            Err(error) => {
                tracing::warn!(network = network_id, error = %error_chain(&error),
                    "finding the nodes of a network failed");
            }
        }
    }

    /// Schedules a push to the nodes other than `node` carrying one of `networks`: their
    /// VXLAN peer lists name `node`. Logged on failure, as [`Self::network_dirty_for_network`].
    async fn network_peers_dirty(&self, node: &str, networks: BTreeSet<String>) {
        if networks.is_empty() {
            return;
        }
        let hosts = self
            .store
            .read(move |db| {
                let mut hosts = BTreeSet::new();
                for network in &networks {
                    hosts.extend(db.network_hosts(network)?);
                }
                Ok(hosts)
            })
            .await;
        match hosts {
            Ok(hosts) => hosts
                .iter()
                .filter(|h| h.as_str() != node)
                .for_each(|h| self.network_dirty(h)),
            Err(error) => {
                tracing::warn!(%node, error = %error_chain(&error),
                    "finding the peer nodes of a node's networks failed");
            }
        }
    }

    /// Schedules a push to every node whose rendering involves one of `groups` (see
    /// `security_group_nodes`), after a rule or membership change. The look-up runs in
    /// the background, off the request's path.
    pub(crate) fn security_groups_dirty(&self, groups: Vec<String>) {
        if groups.is_empty() {
            return;
        }
        let core = self.me.clone();
        tokio::spawn(async move {
            let Some(core) = core.upgrade() else { return };
            let nodes = core
                .store
                .read(move |db| {
                    let mut nodes = BTreeSet::new();
                    for g in &groups {
                        nodes.extend(db.security_group_nodes(g)?);
                    }
                    Ok(nodes)
                })
                .await;
            match nodes {
                Ok(nodes) => nodes.iter().for_each(|n| core.network_dirty(n)),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error),
                        "finding the nodes of security groups failed");
                }
            }
        });
    }

    /// Every heartbeat, pushes again to each node that is up but has not received its
    /// network since its agent (re)started.
    pub fn spawn_network_sync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let core = Arc::downgrade(self);
        let every = Duration::from_secs(self.config.agents.heartbeat_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(core) = core.upgrade() else { return };
                match core.nodes().await {
                    Ok(nodes) => {
                        for node in nodes.iter().filter(|n| n.state == NodeState::Up) {
                            let started = node.status.as_ref().map(|s| s.started_at);
                            if started.is_some()
                                && core.network_sync.pushed_for(&node.name) != started
                            {
                                core.network_dirty(&node.name);
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "reading nodes for network sync failed");
                    }
                }
            }
        })
    }

    /// Renders and pushes `node`'s network; returns the agent start it reached.
    pub(crate) async fn network_push(&self, node_name: &str) -> Result<Option<DateTime<Utc>>> {
        let node = self.node_named(node_name).await?;
        if node.state != NodeState::Up {
            return Err(Error::Conflict(format!("node {node_name} is not up")));
        }
        let started_at = node.status.as_ref().map(|s| s.started_at);
        let slot = self.node_sync(node_name);
        let _pushing = slot.pushing.lock().await;
        let spec = self.network_spec_for(node_name).await?;
        self.network_peers_dirty(node_name, slot.rendered(&spec))
            .await;
        let ports: Vec<String> = spec.ports.iter().map(|p| p.id.clone()).collect();
        let applied = self
            .agents
            .network_apply(&node, &spec)
            .await
            .map_err(Error::internal)?;
        tracing::debug!(
            node = node_name,
            generation = applied.generation,
            "network pushed"
        );
        let host = node_name.to_string();
        self.store
            .write(move |tx| Ok::<_, Error>(tx.ports_activate(&host, &ports)?))
            .await?;
        Ok(started_at)
    }

    /// What `node` must carry: the ports bound to it and their networks, with the other
    /// nodes carrying each network as VXLAN peers.
    pub(crate) async fn network_spec_for(&self, node: &str) -> Result<NodeNetworkSpec> {
        let host = node.to_string();
        let (ports, networks, security_groups, routers, load_balancers, underlay) = self
            .store
            .read(move |db| {
                let ports = db.ports_list(&PortFilter {
                    binding_host_id: Some(host.clone()),
                    ..PortFilter::default()
                })?;
                let groups = render_groups(db, &ports)?;
                let routers = render_routers(db, &host)?;
                let load_balancers = render_load_balancers(db, &host)?;
                let ids: BTreeSet<&str> = ports.iter().map(|p| p.network_id.as_str()).collect();
                let mut networks = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(n) = db.network_get(id)? {
                        let peers = network_peers(db, id, &host)?;
                        networks.push((n, db.network_subnet_list(id)?, peers));
                    }
                }
                let underlay = node_underlay(db, &host)?;
                Ok((ports, networks, groups, routers, load_balancers, underlay))
            })
            .await?;
        Ok(NodeNetworkSpec {
            generation: self.network_sync.next_generation(),
            networks: networks
                .into_iter()
                .map(|(n, subnets, peers)| NetworkSpec {
                    id: n.id,
                    vni: n.vni,
                    mtu: n.mtu,
                    subnets: subnets
                        .into_iter()
                        .map(|s| SubnetSpec {
                            id: s.id,
                            cidr: s.cidr,
                            gateway_ip: s.gateway_ip,
                            dns: s.dns_nameservers,
                            host_routes: s
                                .host_routes
                                .into_iter()
                                .map(|r| HostRouteSpec {
                                    destination: r.destination,
                                    nexthop: r.nexthop,
                                })
                                .collect(),
                            enable_dhcp: s.enable_dhcp,
                        })
                        .collect(),
                    peers,
                })
                .collect(),
            ports: ports
                .into_iter()
                .map(|p| PortSpec {
                    id: p.id,
                    network_id: p.network_id,
                    server_id: (!p.device_id.is_empty()).then_some(p.device_id),
                    mac: p.mac_address,
                    fixed_ips: p
                        .fixed_ips
                        .into_iter()
                        .map(|f| PortAddressSpec {
                            subnet_id: f.subnet_id,
                            ip_address: f.ip_address,
                        })
                        .collect(),
                    port_security_enabled: p.port_security_enabled,
                    allowed_address_pairs: p
                        .allowed_address_pairs
                        .into_iter()
                        .map(|a| AddressPairSpec {
                            ip_address: a.ip_address,
                            mac_address: a.mac_address,
                        })
                        .collect(),
                    security_group_ids: p.security_groups,
                })
                .collect(),
            security_groups,
            routers,
            load_balancers,
            underlay,
        })
    }
}

/// The IPv4 address in an agent URL (`https://10.99.0.2:8443`): the node's underlay
/// address. `None` for a host name or an IPv6 address, which VXLAN here cannot use.
fn underlay_of_url(url: &str) -> Option<Ipv4Addr> {
    let uri: http::Uri = url.parse().ok()?;
    uri.host()?.parse().ok()
}

/// The underlay address of `node`, from its agent URL.
fn node_underlay(db: &Db, node: &str) -> crate::store::Result<Option<String>> {
    let Some(found) = db.node_get(node)? else {
        return Ok(None);
    };
    let underlay = underlay_of_url(&found.url);
    if underlay.is_none() {
        tracing::warn!(%node, url = %found.url, "the node's agent URL names no IPv4 underlay address");
    }
    Ok(underlay.map(|ip| ip.to_string()))
}

/// The underlay addresses of the nodes other than `node` with a bound port on the
/// network, each once, in order.
fn network_peers(db: &Db, network_id: &str, node: &str) -> crate::store::Result<Vec<String>> {
    let mut peers = BTreeSet::new();
    for host in db.network_hosts(network_id)? {
        if host != node
            && let Some(underlay) = node_underlay(db, &host)?
        {
            peers.insert(underlay);
        }
    }
    Ok(peers.into_iter().collect())
}

/// The groups the ports use, with their rules and members, and the groups those rules
/// name as remote, with their members only (the node enforces no port of theirs).
fn render_groups(db: &Db, ports: &[Port]) -> crate::store::Result<Vec<SecurityGroupSpec>> {
    let own: BTreeSet<&str> = ports
        .iter()
        .flat_map(|p| p.security_groups.iter().map(String::as_str))
        .collect();
    let mut specs = Vec::with_capacity(own.len());
    let mut remotes = BTreeSet::new();
    for id in &own {
        let Some(group) = db.security_group_get(id)? else {
            continue;
        };
        let rules = group
            .rules
            .into_iter()
            .map(|r| {
                if let Some(remote) = &r.remote_group_id {
                    remotes.insert(remote.clone());
                }
                SecurityRuleSpec {
                    direction: r.direction,
                    ethertype: r.ethertype,
                    protocol: r.protocol,
                    port_range_min: r.port_range_min.and_then(|p| u32::try_from(p).ok()),
                    port_range_max: r.port_range_max.and_then(|p| u32::try_from(p).ok()),
                    remote_ip_prefix: r.remote_ip_prefix,
                    remote_group_id: r.remote_group_id,
                }
            })
            .collect();
        specs.push(SecurityGroupSpec {
            id: group.id,
            rules,
            members: db.security_group_members(id)?,
        });
    }
    for id in remotes.iter().filter(|r| !own.contains(r.as_str())) {
        specs.push(SecurityGroupSpec {
            id: id.clone(),
            rules: Vec::new(),
            members: db.security_group_members(id)?,
        });
    }
    Ok(specs)
}

/// The routers whose NAT `host` carries: gateway, interfaces, floating IPs.
fn render_routers(db: &Db, host: &str) -> crate::store::Result<Vec<RouterSpec>> {
    let mut specs = Vec::new();
    for router in db.routers_on_host(host)? {
        let ports = db.ports_list(&PortFilter {
            device_id: Some(router.id.clone()),
            ..PortFilter::default()
        })?;
        let gateway = ports
            .iter()
            .find(|p| p.device_owner == OWNER_GATEWAY)
            .map(|p| RouterGatewaySpec {
                network_id: p.network_id.clone(),
                port_id: p.id.clone(),
                addresses: p.fixed_ips.iter().map(|f| f.ip_address.clone()).collect(),
                enable_snat: router.enable_snat,
            });
        let interfaces = ports
            .iter()
            .filter(|p| p.device_owner == OWNER_INTERFACE)
            .flat_map(|p| {
                p.fixed_ips.iter().map(|f| RouterInterfaceSpec {
                    port_id: p.id.clone(),
                    network_id: p.network_id.clone(),
                    subnet_id: f.subnet_id.clone(),
                    address: f.ip_address.clone(),
                })
            })
            .collect();
        let floating_ips = db
            .floating_ips_list(&FloatingIpFilter {
                router_id: Some(router.id.clone()),
                ..FloatingIpFilter::default()
            })?
            .into_iter()
            .filter_map(|f| {
                Some(FloatingIpSpec {
                    port_id: f.port_id?,
                    fixed_ip: f.fixed_ip_address?,
                    floating_ip: f.floating_ip_address,
                    id: f.id,
                })
            })
            .collect();
        specs.push(RouterSpec {
            id: router.id,
            gateway,
            interfaces,
            floating_ips,
        });
    }
    Ok(specs)
}

/// The load balancers whose VIP `host` carries, with what is up of them: listeners,
/// their default pools, the members that take traffic and the pools' health monitors.
fn render_load_balancers(db: &Db, host: &str) -> crate::store::Result<Vec<LoadBalancerSpec>> {
    let mut specs = Vec::new();
    for lb in db.load_balancers_on_host(host)? {
        let mut listeners = Vec::new();
        for listener in db.listeners_list(Some(&lb.id), None)? {
            if !lb.admin_state_up || !listener.admin_state_up {
                continue;
            }
            let pool = match &listener.default_pool_id {
                Some(id) => db.pool_get(id)?.filter(|p| p.admin_state_up),
                None => None,
            };
            let pool = match pool {
                Some(pool) => Some(render_pool(db, pool)?),
                None => None,
            };
            listeners.push(ListenerSpec {
                id: listener.id,
                protocol: listener.protocol,
                protocol_port: u16::try_from(listener.protocol_port).unwrap_or_default(),
                connection_limit: u32::try_from(listener.connection_limit).ok(),
                pool,
            });
        }
        specs.push(LoadBalancerSpec {
            id: lb.id,
            vip_port_id: lb.vip_port_id,
            vip_address: lb.vip_address,
            listeners,
        });
    }
    Ok(specs)
}

fn render_pool(db: &Db, pool: crate::model::Pool) -> crate::store::Result<PoolSpec> {
    let members = db
        .members_list(&pool.id)?
        .into_iter()
        .filter(|m| m.admin_state_up)
        .map(|m| MemberSpec {
            id: m.id,
            address: m.address,
            protocol_port: u16::try_from(m.protocol_port).unwrap_or_default(),
            weight: u32::try_from(m.weight).unwrap_or_default(),
        })
        .collect();
    let health_monitor = db
        .health_monitor_of_pool(&pool.id)?
        .filter(|h| h.admin_state_up)
        .map(|h| HealthMonitorSpec {
            kind: h.kind,
            delay_secs: u32::try_from(h.delay).unwrap_or(1),
            timeout_secs: u32::try_from(h.timeout).unwrap_or(1),
            max_retries: u32::try_from(h.max_retries).unwrap_or(1),
            max_retries_down: u32::try_from(h.max_retries_down).unwrap_or(1),
            http_method: h.http_method,
            url_path: h.url_path,
            expected_codes: h.expected_codes,
        });
    Ok(PoolSpec {
        id: pool.id,
        algorithm: pool.lb_algorithm,
        members,
        health_monitor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_underlay_is_the_ipv4_address_of_the_agent_url() {
        assert_eq!(
            underlay_of_url("https://10.99.0.2:8443"),
            Some(Ipv4Addr::new(10, 99, 0, 2))
        );
        assert_eq!(underlay_of_url("https://node-2.example:8443"), None);
        assert_eq!(underlay_of_url("https://[fd00::2]:8443"), None);
        assert_eq!(underlay_of_url("not a url"), None);
    }

    fn rendered(underlay: &str, networks: &[&str]) -> NodeNetworkSpec {
        NodeNetworkSpec {
            underlay: Some(underlay.to_string()),
            networks: networks
                .iter()
                .map(|id| NetworkSpec {
                    id: id.to_string(),
                    vni: 1,
                    mtu: 1450,
                    subnets: Vec::new(),
                    peers: Vec::new(),
                })
                .collect(),
            ..NodeNetworkSpec::default()
        }
    }

    #[test]
    fn peers_are_pushed_again_for_the_networks_a_node_joins_or_leaves() {
        let slot = NodeSync::default();
        let first = slot.rendered(&rendered("10.99.0.1", &["a", "b"]));
        let same = slot.rendered(&rendered("10.99.0.1", &["a", "b"]));
        let moved = slot.rendered(&rendered("10.99.0.1", &["b", "c"]));
        let readdressed = slot.rendered(&rendered("10.99.0.9", &["b", "c"]));

        let set = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(first, set(&["a", "b"]));
        assert!(same.is_empty());
        assert_eq!(moved, set(&["a", "c"]));
        assert_eq!(readdressed, set(&["b", "c"]));
    }

    #[test]
    fn generations_only_grow() {
        let sync = NetworkSync::default();
        let a = sync.next_generation();
        let b = sync.next_generation();
        assert!(b > a && a > 1_000_000_000_000_000);
    }
}
