//! The node's load balancers: per load balancer a network namespace `ylb-<id>` holding
//! its VIP on the inside end of a veth pair (the node end is the VIP port's tap, which
//! the driver enslaves to the network's bridge like a VM's), and one OS thread inside
//! that namespace running a tokio proxy: listeners on VIP:port, a member picked per
//! connection by the pool's algorithm among the healthy ones, bytes copied both ways,
//! and the pool's health monitor.
//!
//! Why a userspace proxy rather than nftables DNAT: at the request rates VMs serve, an
//! L4 proxy costs little (see docs/network-datapath.md for the measurement), it knows
//! each member's open connections (LEAST_CONNECTIONS) and health without extra kernel
//! state, and it needs no per-member conntrack or NAT rules in the node's tables; DNAT
//! would neither see a member go unhealthy nor count its connections.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use rustix::io::Errno;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use yunji_common::agent_api::{
    HealthMonitorSpec, ListenerSpec, LoadBalancerSpec, NodeNetworkSpec, PoolSpec,
};

use super::{netns, tap_name};

/// Every load balancer's namespace is named this prefix and the first 11 characters of
/// its id (the same cut as [`tap_name`]).
pub const NAMESPACE_PREFIX: &str = "ylb-";
/// Where named network namespaces are bound, as `ip netns` does.
/// The VIP's interface inside the load balancer's namespace.
pub const INSIDE_INTERFACE: &str = "eth0";
/// How long a connection to a member may take before the client's connection is closed.
const MEMBER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace of a load balancer.
pub fn namespace_name(load_balancer_id: &str) -> String {
    format!(
        "{NAMESPACE_PREFIX}{}",
        load_balancer_id.chars().take(11).collect::<String>()
    )
}

/// What went wrong, on which load balancer and at which step.
#[derive(Debug, thiserror::Error)]
#[error("load balancer {load_balancer}: cannot {step}")]
pub struct BalancerError {
    pub load_balancer: String,
    pub step: String,
    #[source]
    pub source: StepError,
}

/// The cause of a failed step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Netlink(#[from] rtnetlink::Error),
    #[error("device {0} does not exist")]
    NoSuchDevice(String),
    #[error("the load balancer's thread ended: {0}")]
    Thread(String),
}

fn step_failed(load_balancer: &str, step: &str) -> impl FnOnce(StepError) -> BalancerError + use<> {
    let load_balancer = load_balancer.to_string();
    let step = step.to_string();
    move |source| BalancerError {
        load_balancer,
        step,
        source,
    }
}

// ---------------------------------------------------------------------------------
// The plan: a spec's load balancers, validated before anything changes.

/// One load balancer as the node carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerPlan {
    pub id: String,
    pub namespace: String,
    /// The node end of the veth: the VIP port's tap name.
    pub tap: String,
    pub mac: [u8; 6],
    pub vip: IpAddr,
    /// The VIP's subnet prefix length.
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    pub mtu: u32,
    pub config: BalancerConfig,
}

/// What the proxy thread serves: swapped whole on every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalancerConfig {
    pub listeners: Vec<ListenerConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub id: String,
    pub address: SocketAddr,
    pub connection_limit: Option<u32>,
    pub pool: Option<PoolConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub id: String,
    pub algorithm: Algorithm,
    pub members: Vec<MemberConfig>,
    pub monitor: Option<MonitorConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastConnections,
    SourceIp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    pub id: String,
    pub address: SocketAddr,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    pub check: Check,
    pub delay: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring a member back (`max_retries`).
    pub rise: u32,
    /// Consecutive failures that take a member out (`max_retries_down`).
    pub fall: u32,
}

/// How one member is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// A TCP connect within the timeout. `PING` monitors are run as this too: the proxy
    /// has no raw socket, and a member that accepts on its port is what matters.
    Connect,
    /// `<method> <path> HTTP/1.0`, healthy when the status is one of `expected`.
    Http {
        method: String,
        path: String,
        expected: ExpectedCodes,
    },
}

/// Status codes that mean healthy: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCodes(Vec<(u16, u16)>);

impl ExpectedCodes {
    /// `200`, `200-204`, `200,202`, or a mix (`200,300-302`).
    pub fn parse(text: &str) -> Result<ExpectedCodes, String> {
        let code = |part: &str| {
            part.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("expected codes {text:?}: {part:?} is not a status code"))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((low, high)) => (code(low)?, code(high)?),
                None => (code(part)?, code(part)?),
            };
            if range.0 > range.1 {
                return Err(format!(
                    "expected codes {text:?}: {part:?} is an empty range"
                ));
            }
            ranges.push(range);
        }
        Ok(ExpectedCodes(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

/// The load balancers of `spec`, each with its VIP port's MAC, its subnet's prefix
/// length and gateway, and its network's MTU. An error names what does not hang together.
pub fn plan(spec: &NodeNetworkSpec) -> Result<Vec<BalancerPlan>, String> {
    spec.load_balancers
        .iter()
        .map(|lb| plan_one(spec, lb).map_err(|reason| format!("load balancer {}: {reason}", lb.id)))
        .collect()
}

fn plan_one(spec: &NodeNetworkSpec, lb: &LoadBalancerSpec) -> Result<BalancerPlan, String> {
    let port = spec
        .ports
        .iter()
        .find(|p| p.id == lb.vip_port_id)
        .ok_or_else(|| format!("its VIP port {} is not in the spec", lb.vip_port_id))?;
    let network = spec
        .networks
        .iter()
        .find(|n| n.id == port.network_id)
        .ok_or_else(|| {
            format!(
                "the VIP port's network {} is not in the spec",
                port.network_id
            )
        })?;
    let vip: IpAddr = lb
        .vip_address
        .parse()
        .map_err(|_| format!("VIP {:?} is not an IP address", lb.vip_address))?;
    let mut subnet = None;
    for candidate in &network.subnets {
        let cidr: IpNet = candidate
            .cidr
            .parse()
            .map_err(|_| format!("subnet {} has no valid CIDR", candidate.id))?;
        if cidr.contains(&vip) {
            subnet = Some((candidate, cidr));
            break;
        }
    }
    let (subnet, cidr) =
        subnet.ok_or_else(|| format!("no subnet of network {} holds VIP {vip}", network.id))?;
    let gateway = subnet
        .gateway_ip
        .as_deref()
        .map(|gw| {
            gw.parse::<IpAddr>()
                .map_err(|_| format!("subnet {}: gateway {gw:?} is not an IP address", subnet.id))
        })
        .transpose()?;
    let listeners = lb
        .listeners
        .iter()
        .map(|listener| plan_listener(vip, listener))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BalancerPlan {
        id: lb.id.clone(),
        namespace: namespace_name(&lb.id),
        tap: tap_name(&lb.vip_port_id),
        mac: super::parse_mac(&port.mac)
            .ok_or_else(|| format!("MAC {:?} is not a MAC address", port.mac))?,
        vip,
        prefix_len: cidr.prefix_len(),
        gateway,
        mtu: network.mtu,
        config: BalancerConfig { listeners },
    })
}

fn plan_listener(vip: IpAddr, listener: &ListenerSpec) -> Result<ListenerConfig, String> {
    let in_listener = |reason: String| format!("listener {}: {reason}", listener.id);
    if !matches!(listener.protocol.as_str(), "TCP" | "HTTP") {
        return Err(in_listener(format!(
            "protocol {:?} is not TCP or HTTP",
            listener.protocol
        )));
    }
    let pool = listener
        .pool
        .as_ref()
        .map(plan_pool)
        .transpose()
        .map_err(in_listener)?;
    Ok(ListenerConfig {
        id: listener.id.clone(),
        address: SocketAddr::new(vip, listener.protocol_port),
        connection_limit: listener.connection_limit,
        pool,
    })
}

fn plan_pool(pool: &PoolSpec) -> Result<PoolConfig, String> {
    let in_pool = |reason: String| format!("pool {}: {reason}", pool.id);
    let algorithm = match pool.algorithm.as_str() {
        "ROUND_ROBIN" => Algorithm::RoundRobin,
        "LEAST_CONNECTIONS" => Algorithm::LeastConnections,
        "SOURCE_IP" => Algorithm::SourceIp,
        other => return Err(in_pool(format!("unknown algorithm {other:?}"))),
    };
    let members = pool
        .members
        .iter()
        .map(|member| {
            let ip: IpAddr = member.address.parse().map_err(|_| {
                in_pool(format!(
                    "member {}: {:?} is not an IP address",
                    member.id, member.address
                ))
            })?;
            Ok(MemberConfig {
                id: member.id.clone(),
                address: SocketAddr::new(ip, member.protocol_port),
                weight: member.weight,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let monitor = pool
        .health_monitor
        .as_ref()
        .map(plan_monitor)
        .transpose()
        .map_err(in_pool)?;
    Ok(PoolConfig {
        id: pool.id.clone(),
        algorithm,
        members,
        monitor,
    })
}

fn plan_monitor(monitor: &HealthMonitorSpec) -> Result<MonitorConfig, String> {
    let check = match monitor.kind.as_str() {
        "TCP" | "PING" => Check::Connect,
        "HTTP" => Check::Http {
            method: monitor
                .http_method
                .clone()
                .unwrap_or_else(|| "GET".to_string()),
            path: monitor.url_path.clone().unwrap_or_else(|| "/".to_string()),
            expected: ExpectedCodes::parse(monitor.expected_codes.as_deref().unwrap_or("200"))?,
        },
        other => return Err(format!("unknown health monitor type {other:?}")),
    };
    if let Check::Http { method, path, .. } = &check
        && (method.contains(char::is_whitespace) || path.contains(char::is_whitespace))
    {
        return Err("the HTTP method and URL path may not contain spaces".to_string());
    }
    Ok(MonitorConfig {
        check,
        delay: Duration::from_secs(u64::from(monitor.delay_secs.max(1))),
        timeout: Duration::from_secs(u64::from(monitor.timeout_secs.max(1))),
        rise: monitor.max_retries.max(1),
        fall: monitor.max_retries_down.max(1),
    })
}

// ---------------------------------------------------------------------------------
// The balancers of a node: namespaces, veths and threads.

/// The load balancers the node runs. Create it in the node's namespace, inside the
/// runtime that applies specs: its netlink socket acts on that namespace.
pub struct Balancers {
    node: Handle,
    connection: JoinHandle<()>,
    running: BTreeMap<String, RunningBalancer>,
}

impl Drop for Balancers {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// A member's health as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHealth {
    pub load_balancer: String,
    pub pool: String,
    pub member: String,
    /// `None`: the pool has no health monitor.
    pub healthy: Option<bool>,
}

struct RunningBalancer {
    plan: BalancerPlan,
    config: watch::Sender<Arc<BalancerConfig>>,
    /// Netlink inside the load balancer's namespace (its connection runs on the thread).
    inside: Handle,
    members: MemberRegistry,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Closed when the thread's runtime has ended and its sockets are closed.
    exited: oneshot::Receiver<()>,
}

impl Balancers {
    pub fn new() -> Result<Balancers, BalancerError> {
        let (connection, node, _) = rtnetlink::new_connection()
            .map_err(|e| step_failed("(all)", "open a netlink socket")(e.into()))?;
        Ok(Balancers {
            node,
            connection: tokio::spawn(connection),
            running: BTreeMap::new(),
        })
    }

    /// Runs exactly `plans`: starts new load balancers (adopting a namespace left by an
    /// earlier agent), refreshes the VIP interface and hands the proxy its new config,
    /// and stops and removes the load balancers no longer planned.
    pub async fn carry(&mut self, plans: &[BalancerPlan]) -> Result<(), BalancerError> {
        let stale: Vec<String> = self
            .running
            .keys()
            .filter(|id| !plans.iter().any(|p| &p.id == *id))
            .cloned()
            .collect();
        for id in stale {
            self.remove(&id).await?;
        }
        for plan in plans {
            self.ensure(plan).await?;
        }
        Ok(())
    }

    /// Stops and removes every load balancer this node runs; every one is tried, the
    /// first failure answered.
    pub async fn remove_all(&mut self) -> Result<(), BalancerError> {
        let mut first_error = None;
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            if let Err(error) = self.remove(&id).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The health of every member of every pool, for the node's status.
    pub fn member_health(&self) -> Vec<MemberHealth> {
        let mut health = Vec::new();
        for (id, running) in &self.running {
            let members = lock(&running.members);
            for listener in &running.plan.config.listeners {
                let Some(pool) = &listener.pool else { continue };
                for member in &pool.members {
                    let state = members.get(&MemberKey::of(&pool.id, member));
                    health.push(MemberHealth {
                        load_balancer: id.clone(),
                        pool: pool.id.clone(),
                        member: member.id.clone(),
                        healthy: pool
                            .monitor
                            .as_ref()
                            .map(|_| state.is_none_or(|s| s.healthy.load(Ordering::Relaxed))),
                    });
                }
            }
        }
        health
    }

    async fn ensure(&mut self, plan: &BalancerPlan) -> Result<(), BalancerError> {
        let failed = |step: &str| step_failed(&plan.id, step);
        if self
            .running
            .get(&plan.id)
            .is_some_and(RunningBalancer::thread_ended)
        {
            tracing::warn!(load_balancer = %plan.id, "the load balancer's thread ended; restarting it");
            self.running.remove(&plan.id);
        }
        if !self.running.contains_key(&plan.id) {
            let path = netns::path(&plan.namespace);
            if !netns::is_namespace_at(&path) {
                tracing::info!(load_balancer = %plan.id, namespace = %plan.namespace, "creating the load balancer's namespace");
                netns::create(&path).await.map_err(|e| {
                    failed(&format!("create namespace {}", plan.namespace))(StepError::Io(e))
                })?;
            }
            let started = start_thread(plan)
                .await
                .map_err(failed("start its thread"))?;
            self.running.insert(plan.id.clone(), started);
        }
        let running = self.running.get_mut(&plan.id).expect("inserted above");
        ensure_veth(&self.node, &running.inside, plan).await?;
        configure_inside(&running.inside, plan).await?;
        running.plan = plan.clone();
        running.config.send_replace(Arc::new(plan.config.clone()));
        Ok(())
    }

    async fn remove(&mut self, id: &str) -> Result<(), BalancerError> {
        let Some(mut running) = self.running.remove(id) else {
            return Ok(());
        };
        tracing::info!(load_balancer = %id, "removing the load balancer");
        let namespace = running.plan.namespace.clone();
        // Closing the config channel ends the thread; its sockets close with its runtime.
        drop(running.config);
        let _ = (&mut running.exited).await;
        // The thread has left its runtime: joining only reaps it.
        if let Some(thread) = running.thread.take() {
            let _ = thread.join();
        }
        // Deleting the node end deletes both ends now; the namespace's own teardown
        // would remove them only once the kernel gets to it.
        delete_link_named(&self.node, &running.plan.tap)
            .await
            .map_err(step_failed(
                id,
                &format!("delete its veth {}", running.plan.tap),
            ))?;
        netns::delete(&netns::path(&namespace))
            .await
            .map_err(StepError::Io)
            .map_err(step_failed(id, &format!("remove namespace {namespace}")))
    }
}

impl RunningBalancer {
    /// Only a panic ends the thread while its config channel is open.
    fn thread_ended(&self) -> bool {
        self.thread
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
    }
}

type MemberRegistry = Arc<Mutex<HashMap<MemberKey, Arc<MemberState>>>>;

/// A poisoned lock only means another thread panicked mid-update of plain counters.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts the load balancer's thread in its namespace; answers once its runtime runs,
/// with a netlink handle inside the namespace.
async fn start_thread(plan: &BalancerPlan) -> Result<RunningBalancer, StepError> {
    let netns = std::fs::File::open(netns::path(&plan.namespace))?;
    let (config_tx, config_rx) = watch::channel(Arc::new(BalancerConfig::default()));
    let members: MemberRegistry = Arc::default();
    let (ready_tx, ready_rx) = oneshot::channel::<Result<Handle, StepError>>();
    let (exited_tx, exited_rx) = oneshot::channel::<()>();
    let load_balancer = plan.id.clone();
    let thread_members = members.clone();
    let thread = std::thread::Builder::new()
        .name(format!(
            "lb-{}",
            load_balancer.chars().take(11).collect::<String>()
        ))
        .spawn(move || {
            let entered = rustix::thread::move_into_link_name_space(
                netns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            );
            drop(netns);
            if let Err(error) = entered {
                let _ = ready_tx.send(Err(std::io::Error::from(error).into()));
                return;
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                match rtnetlink::new_connection() {
                    Ok((connection, handle, _)) => {
                        tokio::spawn(connection);
                        let _ = ready_tx.send(Ok(handle));
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                }
                supervise(load_balancer, config_rx, thread_members).await;
            });
            drop(runtime);
            drop(exited_tx);
        })?;
    let inside = ready_rx
        .await
        .map_err(|_| StepError::Thread("it ended before starting".to_string()))??;
    Ok(RunningBalancer {
        plan: plan.clone(),
        config: config_tx,
        inside,
        members,
        thread: Some(thread),
        exited: exited_rx,
    })
}

// ---------------------------------------------------------------------------------
// The VIP's interface.

/// What the kernel says of one link.
struct LinkFacts {
    index: u32,
    kind: Option<InfoKind>,
    mac: Option<Vec<u8>>,
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkFacts>, StepError> {
    let mut reply = handle.link().get().match_name(name.to_string()).execute();
    match reply.try_next().await {
        Ok(Some(message)) => {
            let mut facts = LinkFacts {
                index: message.header.index,
                kind: None,
                mac: None,
            };
            for attribute in message.attributes {
                match attribute {
                    LinkAttribute::Address(mac) => facts.mac = Some(mac),
                    LinkAttribute::LinkInfo(infos) => {
                        for info in infos {
                            if let LinkInfo::Kind(kind) = info {
                                facts.kind = Some(kind);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(Some(facts))
        }
        Ok(None) => Ok(None),
        Err(error) if is_errno(&error, Errno::NODEV) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn is_errno(error: &rtnetlink::Error, errno: Errno) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -errno.raw_os_error())
}

async fn delete_link_named(handle: &Handle, name: &str) -> Result<(), StepError> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(link.index).execute().await {
        Err(error) if !is_errno(&error, Errno::NODEV) => Err(error.into()),
        _ => Ok(()),
    }
}

/// Makes the veth pair exist: the node end named after the VIP port, the inside end
/// `eth0` with the port's MAC. A pair whose inside end has another MAC is remade.
async fn ensure_veth(
    node: &Handle,
    inside: &Handle,
    plan: &BalancerPlan,
) -> Result<(), BalancerError> {
    let failed = |step: String| step_failed(&plan.id, &step);
    let node_end = link_by_name(node, &plan.tap)
        .await
        .map_err(failed(format!("look up {}", plan.tap)))?;
    let inside_end = link_by_name(inside, INSIDE_INTERFACE)
        .await
        .map_err(failed(format!("look up {INSIDE_INTERFACE} inside")))?;
    let paired = node_end
        .as_ref()
        .is_some_and(|l| l.kind == Some(InfoKind::Veth))
        && inside_end
            .as_ref()
            .is_some_and(|l| l.mac.as_deref() == Some(&plan.mac[..]));
    if paired {
        return Ok(());
    }
    for (handle, name, end) in [
        (node, plan.tap.as_str(), node_end),
        (inside, INSIDE_INTERFACE, inside_end),
    ] {
        if let Some(link) = end {
            tracing::warn!(load_balancer = %plan.id, device = name, "replacing a VIP link that is not the expected veth");
            match handle.link().del(link.index).execute().await {
                Err(error) if !is_errno(&error, Errno::NODEV) => {
                    return Err(failed(format!("delete {name}"))(error.into()));
                }
                _ => {}
            }
        }
    }
    tracing::info!(load_balancer = %plan.id, device = %plan.tap, "creating the VIP veth");
    let netns = std::fs::File::open(netns::path(&plan.namespace))
        .map_err(|e| failed(format!("open namespace {}", plan.namespace))(e.into()))?;
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(INSIDE_INTERFACE.to_string())
        .address(plan.mac.to_vec())
        .mtu(plan.mtu)
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let message = LinkVeth::new(&plan.tap, INSIDE_INTERFACE)
        .mtu(plan.mtu)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    node.link()
        .add(message)
        .execute()
        .await
        .map_err(|e| failed(format!("create veth {}", plan.tap))(e.into()))
}

/// Inside the namespace: `lo` and `eth0` up, `eth0` with the network's MTU and exactly
/// the VIP, and a default route via the subnet's gateway when it has one.
async fn configure_inside(inside: &Handle, plan: &BalancerPlan) -> Result<(), BalancerError> {
    let failed = |step: &str| step_failed(&plan.id, &format!("{step} inside its namespace"));
    let lo = link_by_name(inside, "lo")
        .await
        .map_err(failed("look up lo"))?
        .ok_or_else(|| failed("find lo")(StepError::NoSuchDevice("lo".into())))?;
    inside
        .link()
        .set(LinkUnspec::new_with_index(lo.index).up().build())
        .execute()
        .await
        .map_err(|e| failed("bring up lo")(e.into()))?;
    let eth = link_by_name(inside, INSIDE_INTERFACE)
        .await
        .map_err(failed("look up eth0"))?
        .ok_or_else(|| failed("find eth0")(StepError::NoSuchDevice(INSIDE_INTERFACE.into())))?;
    inside
        .link()
        .set(
            LinkUnspec::new_with_index(eth.index)
                .mtu(plan.mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(|e| failed("set the MTU of and bring up eth0")(e.into()))?;

    let mut present = Vec::new();
    let mut addresses = inside
        .address()
        .get()
        .set_link_index_filter(eth.index)
        .execute();
    while let Some(message) = addresses
        .try_next()
        .await
        .map_err(|e| failed("list the addresses of eth0")(e.into()))?
    {
        let address = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        let is_link_local = matches!(address, Some(IpAddr::V6(v6)) if v6.is_unicast_link_local());
        if address == Some(plan.vip) && message.header.prefix_len == plan.prefix_len {
            present.push(message);
        } else if !is_link_local {
            inside
                .address()
                .del(message)
                .execute()
                .await
                .map_err(|e| failed("remove a stale address of eth0")(e.into()))?;
        }
    }
    if present.is_empty() {
        let mut add = inside.address().add(eth.index, plan.vip, plan.prefix_len);
        // A VIP must be bindable at once, not tentative for the length of DAD.
        add.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        add.execute()
            .await
            .map_err(|e| failed(&format!("add VIP {}/{}", plan.vip, plan.prefix_len))(e.into()))?;
    }

    let default_route = || -> Result<RouteMessageBuilder<IpAddr>, StepError> {
        let unspecified = match plan.vip {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        };
        RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(unspecified, 0)
            .map_err(|e| StepError::Io(std::io::Error::other(e.to_string())))
    };
    match plan.gateway {
        Some(gateway) => {
            let route = default_route()
                .and_then(|r| {
                    r.gateway(gateway)
                        .map_err(|e| StepError::Io(std::io::Error::other(e.to_string())))
                })
                .map_err(failed("build the default route"))?
                .output_interface(eth.index)
                .build();
            inside
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(|e| failed(&format!("route via gateway {gateway}"))(e.into()))?;
        }
        None => {
            let route = default_route()
                .map_err(failed("build the default route"))?
                .build();
            match inside.route().del(route).execute().await {
                Err(error) if !is_errno(&error, Errno::SRCH) && !is_errno(&error, Errno::NOENT) => {
                    return Err(failed("remove the default route")(error.into()));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Inside the namespace: listeners, member choice, proxying, health checks.

/// Members keep their state (health, open connections) across config changes as long
/// as their pool, id and address stay the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MemberKey {
    pool: String,
    member: String,
    address: SocketAddr,
}

impl MemberKey {
    fn of(pool: &str, member: &MemberConfig) -> MemberKey {
        MemberKey {
            pool: pool.to_string(),
            member: member.id.clone(),
            address: member.address,
        }
    }
}

#[derive(Debug)]
struct MemberState {
    id: String,
    address: SocketAddr,
    /// Members start healthy: a failing one is out after `fall` checks.
    healthy: AtomicBool,
    active: AtomicU32,
}

/// One pool's members as a listener picks among them.
struct PoolRuntime {
    algorithm: Algorithm,
    members: Vec<(Arc<MemberState>, u32)>,
    chooser: Mutex<Chooser>,
}

impl PoolRuntime {
    /// A healthy member with a weight above 0, by the pool's algorithm.
    fn pick(&self, client: IpAddr) -> Option<Arc<MemberState>> {
        let candidates: Vec<Candidate> = self
            .members
            .iter()
            .map(|(state, weight)| Candidate {
                weight: if state.healthy.load(Ordering::Relaxed) {
                    *weight
                } else {
                    0
                },
                active: state.active.load(Ordering::Relaxed),
                key: &state.id,
            })
            .collect();
        let index = lock(&self.chooser).choose(self.algorithm, &candidates, client)?;
        Some(self.members[index].0.clone())
    }
}

/// What a listener does with its next connection; swapped whole on every change.
struct Route {
    limit: Option<Arc<Semaphore>>,
    pool: Option<Arc<PoolRuntime>>,
}

/// A member as the algorithms see it; weight 0 is not eligible.
#[derive(Debug, Clone)]
struct Candidate<'a> {
    weight: u32,
    active: u32,
    key: &'a str,
}

/// The algorithms' state: smooth weighted round robin (nginx's) and a rotating start
/// for ties between least-connected members.
#[derive(Debug, Default)]
struct Chooser {
    current: Vec<i64>,
    rotation: usize,
}

impl Chooser {
    fn choose(
        &mut self,
        algorithm: Algorithm,
        candidates: &[Candidate<'_>],
        client: IpAddr,
    ) -> Option<usize> {
        if candidates.iter().all(|c| c.weight == 0) {
            return None;
        }
        match algorithm {
            Algorithm::RoundRobin => Some(self.round_robin(candidates)),
            Algorithm::LeastConnections => Some(self.least_connections(candidates)),
            Algorithm::SourceIp => Some(source_ip(candidates, client)),
        }
    }

    fn round_robin(&mut self, candidates: &[Candidate<'_>]) -> usize {
        self.current.resize(candidates.len(), 0);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            if candidate.weight == 0 {
                self.current[index] = 0;
                continue;
            }
            let weight = i64::from(candidate.weight);
            self.current[index] += weight;
            total += weight;
            if best.is_none_or(|b| self.current[index] > self.current[b]) {
                best = Some(index);
            }
        }
        let best = best.expect("one candidate has a weight");
        self.current[best] -= total;
        best
    }

    fn least_connections(&mut self, candidates: &[Candidate<'_>]) -> usize {
        let start = self.rotation % candidates.len();
        self.rotation = self.rotation.wrapping_add(1);
        let mut best: Option<usize> = None;
        for offset in 0..candidates.len() {
            let index = (start + offset) % candidates.len();
            let candidate = &candidates[index];
            if candidate.weight == 0 {
                continue;
            }
            // active/weight smallest, compared without division.
            let fewer = |b: &Candidate<'_>| {
                u64::from(candidate.active) * u64::from(b.weight)
                    < u64::from(b.active) * u64::from(candidate.weight)
            };
            if best.is_none_or(|b| fewer(&candidates[b])) {
                best = Some(index);
            }
        }
        best.expect("one candidate has a weight")
    }
}

/// Weighted rendezvous hashing: a client stays on its member while that member is
/// eligible, and only the clients of a member that leaves move.
fn source_ip(candidates: &[Candidate<'_>], client: IpAddr) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.weight == 0 {
            continue;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client.hash(&mut hasher);
        candidate.key.hash(&mut hasher);
        let unit = ((hasher.finish() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = f64::from(candidate.weight) / -unit.ln();
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((index, score));
        }
    }
    best.expect("one candidate has a weight").0
}

/// Consecutive results of one member's checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Streak {
    successes: u32,
    failures: u32,
}

impl Streak {
    /// Records a check; answers the member's new health when it changes.
    fn record(&mut self, ok: bool, healthy: bool, rise: u32, fall: u32) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
            (!healthy && self.successes >= rise).then_some(true)
        } else {
            self.failures += 1;
            self.successes = 0;
            (healthy && self.failures >= fall).then_some(false)
        }
    }
}

/// Aborts its task when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct RunningListener {
    id: String,
    route: watch::Sender<Arc<Route>>,
    _task: Task,
}

/// The thread's main task: follows the config until its channel closes.
async fn supervise(
    load_balancer: String,
    mut config: watch::Receiver<Arc<BalancerConfig>>,
    members: MemberRegistry,
) {
    let mut listeners: HashMap<SocketAddr, RunningListener> = HashMap::new();
    let mut monitors: HashMap<String, (PoolConfig, Task)> = HashMap::new();
    loop {
        let current = config.borrow_and_update().clone();
        reconcile(
            &load_balancer,
            &current,
            &members,
            &mut listeners,
            &mut monitors,
        )
        .await;
        if config.changed().await.is_err() {
            break;
        }
    }
    tracing::info!(load_balancer = %load_balancer, "load balancer stopped");
}

async fn reconcile(
    load_balancer: &str,
    config: &BalancerConfig,
    registry: &MemberRegistry,
    listeners: &mut HashMap<SocketAddr, RunningListener>,
    monitors: &mut HashMap<String, (PoolConfig, Task)>,
) {
    // Member states, kept for members still configured.
    let mut kept = HashMap::new();
    {
        let mut registry = lock(registry);
        for pool in config.listeners.iter().filter_map(|l| l.pool.as_ref()) {
            for member in &pool.members {
                let key = MemberKey::of(&pool.id, member);
                let state = registry.remove(&key).unwrap_or_else(|| {
                    Arc::new(MemberState {
                        id: member.id.clone(),
                        address: member.address,
                        healthy: AtomicBool::new(true),
                        active: AtomicU32::new(0),
                    })
                });
                kept.insert(key, state);
            }
        }
        *registry = kept.clone();
    }

    listeners.retain(|address, running| {
        let keep = config.listeners.iter().any(|l| l.address == *address);
        if !keep {
            tracing::info!(load_balancer, listener = %running.id, %address, "listener stopped");
        }
        keep
    });
    for listener in &config.listeners {
        let route = Arc::new(Route {
            limit: listener
                .connection_limit
                .map(|limit| Arc::new(Semaphore::new(limit as usize))),
            pool: listener.pool.as_ref().map(|pool| {
                Arc::new(PoolRuntime {
                    algorithm: pool.algorithm,
                    members: pool
                        .members
                        .iter()
                        .map(|m| (kept[&MemberKey::of(&pool.id, m)].clone(), m.weight))
                        .collect(),
                    chooser: Mutex::default(),
                })
            }),
        });
        if let Some(running) = listeners.get_mut(&listener.address) {
            running.id = listener.id.clone();
            running.route.send_replace(route);
            continue;
        }
        match TcpListener::bind(listener.address).await {
            Ok(socket) => {
                tracing::info!(load_balancer, listener = %listener.id, address = %listener.address, "listening");
                let (route_tx, route_rx) = watch::channel(route);
                listeners.insert(
                    listener.address,
                    RunningListener {
                        id: listener.id.clone(),
                        route: route_tx,
                        _task: Task(tokio::spawn(serve(socket, route_rx))),
                    },
                );
            }
            Err(error) => {
                tracing::error!(load_balancer, listener = %listener.id, address = %listener.address, %error, "cannot listen");
            }
        }
    }

    let pools: HashMap<&str, &PoolConfig> = config
        .listeners
        .iter()
        .filter_map(|l| l.pool.as_ref())
        .filter(|p| p.monitor.is_some())
        .map(|p| (p.id.as_str(), p))
        .collect();
    monitors.retain(|id, (running, _)| pools.get(id.as_str()).is_some_and(|p| **p == *running));
    for (id, pool) in pools {
        if monitors.contains_key(id) {
            continue;
        }
        let members = pool
            .members
            .iter()
            .map(|m| kept[&MemberKey::of(&pool.id, m)].clone())
            .collect();
        let monitor = pool.monitor.clone().expect("filtered on monitors");
        let task = Task(tokio::spawn(monitor_pool(
            load_balancer.to_string(),
            id.to_string(),
            monitor,
            members,
        )));
        monitors.insert(id.to_string(), (pool.clone(), task));
    }
    // Without a monitor every member counts healthy.
    for pool in config.listeners.iter().filter_map(|l| l.pool.as_ref()) {
        if pool.monitor.is_none() {
            for member in &pool.members {
                kept[&MemberKey::of(&pool.id, member)]
                    .healthy
                    .store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Accepts connections and hands each to a member, or closes it: beyond the
/// connection limit, without a pool, or with no healthy member.
async fn serve(socket: TcpListener, route: watch::Receiver<Arc<Route>>) {
    loop {
        let (client, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let route = route.borrow().clone();
        let permit = match &route.limit {
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => continue,
            },
            None => None,
        };
        let Some(member) = route.pool.as_ref().and_then(|pool| pool.pick(peer.ip())) else {
            continue;
        };
        tokio::spawn(proxy(client, member, permit));
    }
}

/// Counts a member's open connection while it lives.
struct Active(Arc<MemberState>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn proxy(
    mut client: TcpStream,
    member: Arc<MemberState>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    member.active.fetch_add(1, Ordering::Relaxed);
    let _active = Active(member.clone());
    let mut upstream = match tokio::time::timeout(
        MEMBER_CONNECT_TIMEOUT,
        TcpStream::connect(member.address),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(member = %member.id, address = %member.address, %error, "cannot reach member");
            return;
        }
        Err(_) => {
            tracing::debug!(member = %member.id, address = %member.address, "member did not answer in time");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Checks every member each `delay`, all at once, and moves them in and out.
async fn monitor_pool(
    load_balancer: String,
    pool: String,
    monitor: MonitorConfig,
    members: Vec<Arc<MemberState>>,
) {
    let mut streaks = vec![Streak::default(); members.len()];
    let mut ticker = tokio::time::interval(monitor.delay);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let results =
            futures_util::future::join_all(members.iter().map(|m| check(m.address, &monitor)))
                .await;
        for ((member, streak), result) in members.iter().zip(&mut streaks).zip(results) {
            let healthy = member.healthy.load(Ordering::Relaxed);
            let Some(now) = streak.record(result.is_ok(), healthy, monitor.rise, monitor.fall)
            else {
                continue;
            };
            member.healthy.store(now, Ordering::Relaxed);
            match (now, result) {
                (true, _) => {
                    tracing::info!(%load_balancer, %pool, member = %member.id, address = %member.address, "member healthy again")
                }
                (false, Err(reason)) => {
                    tracing::warn!(%load_balancer, %pool, member = %member.id, address = %member.address, %reason, "member unhealthy, taken out")
                }
                (false, Ok(())) => {}
            }
        }
    }
}

/// One check of one member; the error says why it failed.
async fn check(address: SocketAddr, monitor: &MonitorConfig) -> Result<(), String> {
    let attempt = async {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let Check::Http {
            method,
            path,
            expected,
        } = &monitor.check
        else {
            return Ok(());
        };
        stream
            .write_all(format!("{method} {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("send the request: {e}"))?;
        let mut head = Vec::with_capacity(64);
        let mut buffer = [0u8; 256];
        while !head.contains(&b'\n') && head.len() < 1024 {
            let read = stream
                .read(&mut buffer)
                .await
                .map_err(|e| format!("read the answer: {e}"))?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let status = parse_status(&head).ok_or("no HTTP status line in the answer")?;
        if expected.contains(status) {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    };
    tokio::time::timeout(monitor.timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", monitor.timeout)))
}

/// The status of `HTTP/1.x NNN …`.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use yunji_common::agent_api::{MemberSpec, NetworkSpec, PortAddressSpec, PortSpec, SubnetSpec};

    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    fn candidates<'a>(weights: &[(u32, u32)], keys: &'a [String]) -> Vec<Candidate<'a>> {
        weights
            .iter()
            .zip(keys)
            .map(|((weight, active), key)| Candidate {
                weight: *weight,
                active: *active,
                key,
            })
            .collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("member-{i}")).collect()
    }

    fn counts(picks: impl Iterator<Item = usize>, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for pick in picks {
            counts[pick] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_follows_the_weights_and_interleaves() {
        let keys = keys(3);
        let members = candidates(&[(1, 0), (2, 0), (1, 0)], &keys);
        let mut chooser = Chooser::default();

        let picks: Vec<usize> = (0..8)
            .map(|_| {
                chooser
                    .choose(Algorithm::RoundRobin, &members, CLIENT)
                    .unwrap()
            })
            .collect();

        assert_eq!(counts(picks.iter().copied(), 3), [2, 4, 2]);
        assert!(
            picks.windows(2).all(|w| w[0] != w[1] || w[0] == 1),
            "{picks:?}"
        );
    }

    #[test]
    fn an_unhealthy_or_zero_weight_member_gets_nothing_and_none_left_means_none() {
        let keys = keys(2);
        let one_left = candidates(&[(0, 0), (3, 0)], &keys);
        let none_left = candidates(&[(0, 0), (0, 0)], &keys);
        let mut chooser = Chooser::default();

        let picks = (0..4).map(|_| {
            chooser
                .choose(Algorithm::RoundRobin, &one_left, CLIENT)
                .unwrap()
        });
        let picks = counts(picks, 2);

        assert_eq!(picks, [0, 4]);
        for algorithm in [
            Algorithm::RoundRobin,
            Algorithm::LeastConnections,
            Algorithm::SourceIp,
        ] {
            assert_eq!(chooser.choose(algorithm, &none_left, CLIENT), None);
        }
    }

    #[test]
    fn least_connections_picks_the_fewest_per_weight_and_rotates_ties() {
        let keys = keys(3);
        let busy = candidates(&[(1, 5), (1, 2), (2, 3)], &keys);
        let idle = candidates(&[(1, 0), (1, 0), (1, 0)], &keys);
        let mut chooser = Chooser::default();

        let busy_pick = chooser.choose(Algorithm::LeastConnections, &busy, CLIENT);
        let idle_picks = counts(
            (0..6).map(|_| {
                chooser
                    .choose(Algorithm::LeastConnections, &idle, CLIENT)
                    .unwrap()
            }),
            3,
        );

        assert_eq!(busy_pick, Some(2), "3 connections over weight 2 is 1.5");
        assert_eq!(idle_picks, [2, 2, 2]);
    }

    #[test]
    fn source_ip_keeps_a_client_on_its_member_and_moves_only_a_leaving_members_clients() {
        let keys = keys(3);
        let all = candidates(&[(1, 0), (1, 0), (1, 0)], &keys);
        let clients: Vec<IpAddr> = (1..=60u8)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, i)))
            .collect();

        let before: Vec<usize> = clients.iter().map(|c| source_ip(&all, *c)).collect();
        let again: Vec<usize> = clients.iter().map(|c| source_ip(&all, *c)).collect();
        let without_first = candidates(&[(0, 0), (1, 0), (1, 0)], &keys);
        let after: Vec<usize> = clients
            .iter()
            .map(|c| source_ip(&without_first, *c))
            .collect();

        assert_eq!(before, again);
        assert!(counts(before.iter().copied(), 3).iter().all(|n| *n >= 5));
        for (b, a) in before.iter().zip(&after) {
            if *b != 0 {
                assert_eq!(a, b, "only member 0's clients move");
            }
        }
    }

    #[test]
    fn a_member_goes_out_after_fall_failures_and_back_after_rise_successes() {
        let mut streak = Streak::default();
        let (rise, fall) = (2, 3);

        let out = [
            streak.record(false, true, rise, fall),
            streak.record(false, true, rise, fall),
            streak.record(true, true, rise, fall),
            streak.record(false, true, rise, fall),
            streak.record(false, true, rise, fall),
            streak.record(false, true, rise, fall),
        ];
        let back = [
            streak.record(true, false, rise, fall),
            streak.record(true, false, rise, fall),
        ];

        assert_eq!(out, [None, None, None, None, None, Some(false)]);
        assert_eq!(back, [None, Some(true)]);
    }

    #[test]
    fn expected_codes_take_a_code_a_range_or_a_list() {
        let single = ExpectedCodes::parse("200").unwrap();
        let range = ExpectedCodes::parse("200-204").unwrap();
        let list = ExpectedCodes::parse("200,202, 300-302").unwrap();

        assert!(single.contains(200) && !single.contains(201));
        assert!(range.contains(204) && !range.contains(205));
        assert!(list.contains(202) && list.contains(301) && !list.contains(201));
        assert!(ExpectedCodes::parse("2xx").is_err());
        assert!(ExpectedCodes::parse("204-200").is_err());
    }

    #[test]
    fn the_status_is_read_from_the_status_line() {
        assert_eq!(parse_status(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\nServer: x"), Some(200));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    fn spec() -> NodeNetworkSpec {
        NodeNetworkSpec {
            generation: 1,
            networks: vec![NetworkSpec {
                id: "net".into(),
                vni: 7,
                mtu: 1450,
                subnets: vec![
                    SubnetSpec {
                        id: "v6".into(),
                        cidr: "fd00:7::/64".into(),
                        gateway_ip: None,
                        dns: vec![],
                        host_routes: vec![],
                        enable_dhcp: false,
                    },
                    SubnetSpec {
                        id: "v4".into(),
                        cidr: "10.7.0.0/24".into(),
                        gateway_ip: Some("10.7.0.1".into()),
                        dns: vec![],
                        host_routes: vec![],
                        enable_dhcp: true,
                    },
                ],
                peers: vec![],
            }],
            ports: vec![PortSpec {
                id: "0123456789abcdef".into(),
                network_id: "net".into(),
                server_id: None,
                mac: "fa:16:3e:00:00:0a".into(),
                fixed_ips: vec![PortAddressSpec {
                    subnet_id: "v4".into(),
                    ip_address: "10.7.0.10".into(),
                }],
                port_security_enabled: false,
                allowed_address_pairs: vec![],
                security_group_ids: vec![],
            }],
            load_balancers: vec![LoadBalancerSpec {
                id: "fedcba9876543210".into(),
                vip_port_id: "0123456789abcdef".into(),
                vip_address: "10.7.0.10".into(),
                listeners: vec![ListenerSpec {
                    id: "listener".into(),
                    protocol: "HTTP".into(),
                    protocol_port: 80,
                    connection_limit: Some(100),
                    pool: Some(PoolSpec {
                        id: "pool".into(),
                        algorithm: "ROUND_ROBIN".into(),
                        members: vec![MemberSpec {
                            id: "m1".into(),
                            address: "10.7.0.21".into(),
                            protocol_port: 8080,
                            weight: 1,
                        }],
                        health_monitor: Some(HealthMonitorSpec {
                            kind: "HTTP".into(),
                            delay_secs: 2,
                            timeout_secs: 1,
                            max_retries: 2,
                            max_retries_down: 3,
                            http_method: None,
                            url_path: Some("/healthz".into()),
                            expected_codes: Some("200-204".into()),
                        }),
                    }),
                }],
            }],
            underlay: Some("10.99.0.1".into()),
            ..NodeNetworkSpec::default()
        }
    }

    #[test]
    fn a_plan_has_the_vip_on_its_subnet_with_the_ports_mac_and_the_gateway() {
        let plans = plan(&spec()).unwrap();

        assert_eq!(plans.len(), 1);
        let lb = &plans[0];
        assert_eq!(lb.namespace, "ylb-fedcba98765");
        assert_eq!(lb.tap, "tap0123456789a");
        assert_eq!(lb.mac, [0xfa, 0x16, 0x3e, 0, 0, 0x0a]);
        assert_eq!(lb.vip, "10.7.0.10".parse::<IpAddr>().unwrap());
        assert_eq!(lb.prefix_len, 24);
        assert_eq!(lb.gateway, Some("10.7.0.1".parse().unwrap()));
        assert_eq!(lb.mtu, 1450);
        let listener = &lb.config.listeners[0];
        assert_eq!(listener.address, "10.7.0.10:80".parse().unwrap());
        let pool = listener.pool.as_ref().unwrap();
        assert_eq!(pool.members[0].address, "10.7.0.21:8080".parse().unwrap());
        let monitor = pool.monitor.as_ref().unwrap();
        assert_eq!(
            monitor.check,
            Check::Http {
                method: "GET".into(),
                path: "/healthz".into(),
                expected: ExpectedCodes(vec![(200, 204)])
            }
        );
        assert_eq!((monitor.rise, monitor.fall), (2, 3));
    }

    #[test]
    fn a_vip_outside_every_subnet_or_a_missing_port_is_refused_naming_the_load_balancer() {
        let mut outside = spec();
        outside.load_balancers[0].vip_address = "10.8.0.10".into();
        let mut no_port = spec();
        no_port.ports.clear();
        let mut bad_algorithm = spec();
        bad_algorithm.load_balancers[0].listeners[0]
            .pool
            .as_mut()
            .unwrap()
            .algorithm = "RANDOM".into();

        let outside = plan(&outside).unwrap_err();
        let no_port = plan(&no_port).unwrap_err();
        let bad_algorithm = plan(&bad_algorithm).unwrap_err();

        assert!(outside.contains("fedcba9876543210") && outside.contains("10.8.0.10"));
        assert!(no_port.contains("VIP port"));
        assert!(bad_algorithm.contains("RANDOM") && bad_algorithm.contains("pool pool"));
    }

    #[test]
    fn ping_monitors_are_tcp_connects() {
        let mut ping = spec();
        let monitor = ping.load_balancers[0].listeners[0]
            .pool
            .as_mut()
            .unwrap()
            .health_monitor
            .as_mut()
            .unwrap();
        monitor.kind = "PING".into();

        let plans = plan(&ping).unwrap();

        let pool = plans[0].config.listeners[0].pool.as_ref().unwrap();
        assert_eq!(pool.monitor.as_ref().unwrap().check, Check::Connect);
    }
}
