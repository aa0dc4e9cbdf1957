//! The load-balancer rig shared by `tests/net_balancer.rs` and `benches/balancer.rs`: a
//! node namespace running the real network driver on a thread of its own, two member
//! guests (`busybox httpd` answering its own name) and a client guest on one tenant
//! network, each guest's `eth0` the far end of its port's tap (a veth with the port's
//! MAC, as QEMU's tap would be). HTTP/1.0 requests are made from a thread inside the
//! client namespace. Dropping the rig stops the driver and httpd and deletes every
//! namespace, the load balancer's included, even while a failed assertion unwinds.

#![allow(dead_code)] // the test and the bench each use part of it

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use yunji_agent::drivers::DriverError;
use yunji_agent::net::balancer::namespace_name;
use yunji_agent::net::tap_name;
use yunji_common::agent_api::{
    HealthMonitorSpec, ListenerSpec, LoadBalancerSpec, MemberSpec, NetworkApplied, NetworkSpec,
    NodeNetworkSpec, PoolSpec, PortAddressSpec, PortSpec, SecurityGroupSpec, SecurityRuleSpec,
    SubnetSpec,
};

#[path = "../common/mod.rs"]
mod common;
use common::NodeThread;
pub use common::ip;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
pub const VNI: u32 = 201;
pub const NETWORK: &str = "net-lb";
pub const SUBNET: &str = "net-lb-subnet";
pub const VIP: &str = "10.21.0.10";
pub const VIP_MAC: &str = "fa:16:3e:15:00:0a";
pub const VIP_PORT: &str = "5b0a0000-0000-4000-8000-00000000000a";
pub const HTTP_PORT: u16 = 80;

/// A guest of the rig: port id, MAC, fixed IP, namespace suffix (also what its httpd
/// answers).
pub struct Guest {
    pub id: &'static str,
    pub mac: &'static str,
    pub ip: &'static str,
    pub name: &'static str,
}

pub const MEMBER_1: Guest = Guest {
    id: "5b110000-0000-4000-8000-000000000011",
    mac: "fa:16:3e:15:00:11",
    ip: "10.21.0.11",
    name: "m1",
};
pub const MEMBER_2: Guest = Guest {
    id: "5b120000-0000-4000-8000-000000000012",
    mac: "fa:16:3e:15:00:12",
    ip: "10.21.0.12",
    name: "m2",
};
pub const CLIENT: Guest = Guest {
    id: "5b200000-0000-4000-8000-000000000020",
    mac: "fa:16:3e:15:00:20",
    ip: "10.21.0.20",
    name: "cl",
};

pub struct Rig {
    pub prefix: String,
    /// Unique per run, so that its namespace `ylb-…` is too.
    pub load_balancer_id: String,
    namespaces: Vec<String>,
    node: Option<NodeThread>,
    httpd: HashMap<&'static str, tokio::process::Child>,
    dir: tempfile::TempDir,
}

impl Drop for Rig {
    #[allow(clippy::disallowed_methods)] // Drop cannot await execute(); cleanup runs ip directly
    fn drop(&mut self) {
        self.node.take();
        for (_, mut httpd) in self.httpd.drain() {
            let _ = httpd.start_kill();
        }
        let lb_namespace = namespace_name(&self.load_balancer_id);
        for namespace in self
            .namespaces
            .iter()
            .rev()
            .chain(std::iter::once(&lb_namespace))
        {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", namespace])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Rig {
    pub async fn new(short: &str) -> Rig {
        let pid = std::process::id();
        let mut rig = Rig {
            prefix: format!("yj-{short}{pid}"),
            load_balancer_id: format!("{pid:08x}-0000-4000-8000-00000000001b"),
            namespaces: Vec::new(),
            node: None,
            httpd: HashMap::new(),
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        let node = rig.add_namespace("node").await;
        // The node's underlay address, the local end of its (peerless) VXLAN device.
        // (A veth pair: this kernel has no dummy links.)
        ip(&[
            "-n", &node, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1",
        ])
        .await;
        ip(&["-n", &node, "addr", "add", "10.98.0.1/24", "dev", "ul0"]).await;
        ip(&["-n", &node, "link", "set", "ul0", "up"]).await;
        for guest in [&MEMBER_1, &MEMBER_2, &CLIENT] {
            rig.add_guest(guest).await;
        }
        for member in [&MEMBER_1, &MEMBER_2] {
            let root = rig.dir.path().join(member.name);
            std::fs::create_dir_all(&root).expect("a web root");
            std::fs::write(root.join("index.html"), format!("{}\n", member.name))
                .expect("write index.html");
            rig.start_httpd(member).await;
        }
        rig.node = Some(NodeThread::start(&node));
        rig
    }

    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    pub fn lb_namespace(&self) -> String {
        namespace_name(&self.load_balancer_id)
    }

    async fn add_namespace(&mut self, short: &str) -> String {
        let name = self.ns(short);
        // Recorded first, so that a half-made namespace is still removed.
        self.namespaces.push(name.clone());
        ip(&["netns", "add", &name]).await;
        ip(&["-n", &name, "link", "set", "lo", "up"]).await;
        name
    }

    /// A guest whose `eth0` (the port's MAC and fixed IP) is the far end of its tap.
    async fn add_guest(&mut self, guest: &Guest) {
        let namespace = self.add_namespace(guest.name).await;
        let node = self.ns("node");
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            &tap_name(guest.id),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "address",
            guest.mac,
            "netns",
            &namespace,
        ])
        .await;
        ip(&[
            "-n",
            &namespace,
            "addr",
            "add",
            &format!("{}/24", guest.ip),
            "dev",
            "eth0",
        ])
        .await;
        ip(&["-n", &namespace, "link", "set", "eth0", "mtu", "1450", "up"]).await;
    }

    /// `busybox httpd` in the member's namespace, serving its name on port 80.
    #[allow(clippy::disallowed_methods)] // a long-running child the rig kills; execute() waits
    pub async fn start_httpd(&mut self, member: &Guest) {
        let root = self.dir.path().join(member.name);
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", &self.ns(member.name)])
            .args(["busybox", "httpd", "-f", "-p", &HTTP_PORT.to_string(), "-h"])
            .arg(&root)
            .kill_on_drop(true)
            .spawn()
            .expect("start busybox httpd");
        self.httpd.insert(member.name, child);
        // Until it listens, connections are refused.
        let target = SocketAddr::new(member.ip.parse().expect("an IP"), HTTP_PORT);
        for _ in 0..50 {
            if self.requests_from(member.name, target, 1, 1).await[0].is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("httpd of {} does not answer", member.name);
    }

    pub async fn stop_httpd(&mut self, member: &Guest) {
        let mut child = self
            .httpd
            .remove(member.name)
            .expect("httpd of the member running");
        child.kill().await.expect("kill httpd");
    }

    fn node(&self) -> &NodeThread {
        self.node.as_ref().expect("the node thread")
    }

    pub async fn apply(&self, spec: NodeNetworkSpec) -> Result<NetworkApplied, DriverError> {
        self.node().apply(spec).await
    }

    pub async fn remove_all(&self) -> Result<(), DriverError> {
        self.node().remove_all().await
    }

    /// `n` HTTP/1.0 `GET /` to `target` from the client namespace, `concurrency` at a
    /// time: each the body (trimmed) and how long the request took, or why it failed.
    pub async fn requests(
        &self,
        target: SocketAddr,
        n: usize,
        concurrency: usize,
    ) -> Vec<Result<(String, Duration), String>> {
        self.requests_from(CLIENT.name, target, n, concurrency)
            .await
    }

    /// As [`Rig::requests`], from the guest namespace `guest`.
    pub async fn requests_from(
        &self,
        guest: &str,
        target: SocketAddr,
        n: usize,
        concurrency: usize,
    ) -> Vec<Result<(String, Duration), String>> {
        let path = format!("/var/run/netns/{}", self.ns(guest));
        let (done, results) = oneshot::channel();
        std::thread::spawn(move || {
            let netns = std::fs::File::open(&path).expect("open the client namespace");
            move_into_link_name_space(netns.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("setns into the client namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime");
            let results = runtime.block_on(async move {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let per_worker = n.div_ceil(concurrency);
                let mut remaining = n;
                for _ in 0..concurrency {
                    let count = per_worker.min(remaining);
                    remaining -= count;
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        for _ in 0..count {
                            let _ = tx.send(get(target).await);
                        }
                    });
                }
                drop(tx);
                let mut results = Vec::with_capacity(n);
                while let Some(result) = rx.recv().await {
                    results.push(result);
                }
                results
            });
            let _ = done.send(results);
        });
        results.await.expect("the client thread answers")
    }

    /// `ip -j addr show` in a namespace: its links with their addresses.
    pub async fn interfaces(&self, namespace: &str) -> Vec<serde_json::Value> {
        let output = ip(&["-n", namespace, "-j", "addr", "show"]).await;
        serde_json::from_slice(&output.stdout).expect("ip -j prints JSON")
    }

    /// Whether `ip netns list` names `namespace`.
    pub async fn namespace_exists(&self, namespace: &str) -> bool {
        String::from_utf8_lossy(&ip(&["netns", "list"]).await.stdout)
            .lines()
            .any(|line| line.split_whitespace().next() == Some(namespace))
    }
}

/// One HTTP/1.0 request.
async fn get(target: SocketAddr) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"GET / HTTP/1.0\r\n\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return Err(format!("answer {head:?}"));
        }
        Ok(body.trim().to_string())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(body)) => Ok((body, started.elapsed())),
        Ok(Err(error)) => Err(error),
        Err(_) => Err("timed out".to_string()),
    }
}

fn port(guest: &Guest, groups: &[&str]) -> PortSpec {
    PortSpec {
        id: guest.id.to_string(),
        network_id: NETWORK.to_string(),
        server_id: Some(format!("server-{}", guest.name)),
        mac: guest.mac.to_string(),
        fixed_ips: vec![PortAddressSpec {
            subnet_id: SUBNET.to_string(),
            ip_address: guest.ip.to_string(),
        }],
        port_security_enabled: true,
        allowed_address_pairs: vec![],
        security_group_ids: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn rule(direction: &str, protocol: Option<&str>) -> SecurityRuleSpec {
    SecurityRuleSpec {
        direction: direction.to_string(),
        ethertype: "IPv4".to_string(),
        protocol: protocol.map(str::to_string),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

/// An HTTP health monitor of `GET /` every `delay` seconds: out after two failures,
/// back after two successes.
pub fn http_monitor(delay_secs: u32) -> HealthMonitorSpec {
    HealthMonitorSpec {
        kind: "HTTP".to_string(),
        delay_secs,
        timeout_secs: 1,
        max_retries: 2,
        max_retries_down: 2,
        http_method: Some("GET".to_string()),
        url_path: Some("/".to_string()),
        expected_codes: Some("200".to_string()),
    }
}

/// The node's spec: the tenant network with the members, the client and (with a load
/// balancer) its VIP port; members in a group letting TCP in. `members: None` leaves
/// the load balancer out.
pub fn spec(
    rig: &Rig,
    generation: u64,
    members: Option<&[&Guest]>,
    algorithm: &str,
    monitor: Option<HealthMonitorSpec>,
) -> NodeNetworkSpec {
    let mut ports = vec![
        port(&MEMBER_1, &["sg-web", "sg-out"]),
        port(&MEMBER_2, &["sg-web", "sg-out"]),
        port(&CLIENT, &["sg-out"]),
    ];
    let mut load_balancers = Vec::new();
    if let Some(members) = members {
        ports.push(PortSpec {
            id: VIP_PORT.to_string(),
            network_id: NETWORK.to_string(),
            server_id: None,
            mac: VIP_MAC.to_string(),
            fixed_ips: vec![PortAddressSpec {
                subnet_id: SUBNET.to_string(),
                ip_address: VIP.to_string(),
            }],
            port_security_enabled: false,
            allowed_address_pairs: vec![],
            security_group_ids: vec![],
        });
        load_balancers.push(LoadBalancerSpec {
            id: rig.load_balancer_id.clone(),
            vip_port_id: VIP_PORT.to_string(),
            vip_address: VIP.to_string(),
            listeners: vec![ListenerSpec {
                id: "listener-http".to_string(),
                protocol: "HTTP".to_string(),
                protocol_port: HTTP_PORT,
                connection_limit: None,
                pool: Some(PoolSpec {
                    id: "pool-web".to_string(),
                    algorithm: algorithm.to_string(),
                    members: members
                        .iter()
                        .map(|m| MemberSpec {
                            id: format!("member-{}", m.name),
                            address: m.ip.to_string(),
                            protocol_port: HTTP_PORT,
                            weight: 1,
                        })
                        .collect(),
                    health_monitor: monitor,
                }),
            }],
        });
    }
    NodeNetworkSpec {
        generation,
        networks: vec![NetworkSpec {
            id: NETWORK.to_string(),
            vni: VNI,
            mtu: 1450,
            subnets: vec![SubnetSpec {
                id: SUBNET.to_string(),
                cidr: "10.21.0.0/24".to_string(),
                gateway_ip: Some("10.21.0.1".to_string()),
                dns: vec![],
                host_routes: vec![],
                enable_dhcp: false,
            }],
            peers: vec![],
        }],
        ports,
        security_groups: vec![
            SecurityGroupSpec {
                id: "sg-web".to_string(),
                rules: vec![rule("ingress", Some("tcp"))],
                members: vec![MEMBER_1.ip.to_string(), MEMBER_2.ip.to_string()],
            },
            SecurityGroupSpec {
                id: "sg-out".to_string(),
                rules: vec![rule("egress", None)],
                members: vec![
                    MEMBER_1.ip.to_string(),
                    MEMBER_2.ip.to_string(),
                    CLIENT.ip.to_string(),
                ],
            },
        ],
        load_balancers,
        underlay: Some("10.98.0.1".to_string()),
        ..NodeNetworkSpec::default()
    }
}

/// Threads of this process the load balancers run (named `lb-<id>`).
pub fn balancer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("lb-"))
        .count()
}
