//! A multi-node rig on one machine, for the end-to-end tests of the real datapath: an
//! underlay namespace with a bridge (`ul0`, 10.98.0.1/24) and one namespace per node,
//! each with a veth (`eth0`, 10.98.0.(10+n)/24) on that bridge. Agents run inside their
//! node's namespace, so their VXLAN, bridges, taps, nft tables and QEMU processes live
//! there; the in-process scheduler listens in the underlay namespace, which the test's
//! thread enters. Nothing touches the root namespace. Dropping the rig deletes its
//! namespaces and those the agents made meanwhile for routers and load balancers (and
//! with them every link made in them), and returns the thread home.
//! Needs root.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use yunji_common::execute::{Output, execute};

/// The underlay namespace's address: where agents reach the scheduler.
pub const SCHEDULER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Rig {
    prefix: String,
    nodes: usize,
    /// The named namespaces there were before the rig: the agents name their routers'
    /// and load balancers' namespaces globally, and those made meanwhile go with the rig.
    before: Vec<String>,
    /// The namespace the test's thread was in before it entered the underlay's.
    home: Option<std::fs::File>,
}

impl Rig {
    /// Makes the underlay and `nodes` node namespaces (numbered from 1).
    pub async fn new(nodes: usize) -> Rig {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "yje{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        // Made first, so that a failing step below still removes what was made.
        let rig = Rig {
            prefix,
            nodes,
            before: named_namespaces(),
            home: None,
        };
        let ul = rig.underlay();
        run(&["ip", "netns", "add", &ul]).await;
        rig.ip(&ul, "link set lo up").await;
        rig.ip(&ul, "link add ul0 type bridge").await;
        rig.ip(&ul, &format!("addr add {SCHEDULER_ADDRESS}/24 dev ul0"))
            .await;
        rig.ip(&ul, "link set ul0 up").await;
        for n in 1..=nodes {
            let node = rig.node(n);
            run(&["ip", "netns", "add", &node]).await;
            rig.ip(&node, "link set lo up").await;
            rig.ip(
                &ul,
                &format!("link add v{n} type veth peer name eth0 netns {node}"),
            )
            .await;
            rig.ip(&ul, &format!("link set v{n} master ul0 up")).await;
            rig.ip(&node, &format!("addr add {}/24 dev eth0", Rig::address(n)))
                .await;
            rig.ip(&node, "link set eth0 up").await;
        }
        rig
    }

    /// The underlay namespace's name.
    pub fn underlay(&self) -> String {
        format!("{}-ul", self.prefix)
    }

    /// Node `n`'s namespace name.
    pub fn node(&self, n: usize) -> String {
        format!("{}-n{n}", self.prefix)
    }

    /// Node `n`'s underlay address.
    pub fn address(n: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 98, 0, 10 + n as u8)
    }

    /// Moves the calling thread (and what it starts later: sockets, threads, a
    /// current-thread runtime's tasks) into the underlay namespace until the rig drops.
    pub fn enter_underlay(&mut self) {
        if self.home.is_none() {
            self.home = Some(std::fs::File::open("/proc/thread-self/ns/net").unwrap());
        }
        let ns = std::fs::File::open(format!("/var/run/netns/{}", self.underlay())).unwrap();
        move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
    }

    /// Runs `ip -n <namespace> <args>`, failing the test if it fails.
    pub async fn ip(&self, namespace: &str, args: &str) -> Output {
        let mut argv = vec!["ip", "-n", namespace];
        argv.extend(args.split_whitespace());
        run(&argv).await
    }

    /// The names of the links in a namespace.
    pub async fn links(&self, namespace: &str) -> Vec<String> {
        let out = self.ip(namespace, "-j link show").await;
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        links
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(String::from))
            .collect()
    }

    /// The nft tables in a namespace, as `family name`.
    pub async fn nft_tables(&self, namespace: &str) -> Vec<String> {
        let out = run(&["ip", "netns", "exec", namespace, "nft", "list", "tables"]).await;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("table ").map(String::from))
            .collect()
    }
}

/// The names in /var/run/netns.
fn named_namespaces() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn run(argv: &[&str]) -> Output {
    match execute(argv[0], &argv[1..], COMMAND_TIMEOUT).await {
        Ok(out) => out,
        Err(e) => panic!("{}: {e}", argv.join(" ")),
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            let _ = move_into_link_name_space(home.as_fd(), Some(LinkNameSpaceType::Network));
        }
        let mut names = vec![self.underlay()];
        names.extend((1..=self.nodes).map(|n| self.node(n)));
        names.extend(named_namespaces().into_iter().filter(|name| {
            (name.starts_with("yrt-") || name.starts_with("ylb-")) && !self.before.contains(name)
        }));
        for name in names {
            // Drop cannot await: the plain process API, as `ip netns del` would be run by
            // hand. Deleting a namespace removes every link in it.
            #[allow(clippy::disallowed_methods)]
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(std::process::Stdio::null())
                .status();
            // An agent's namespace was mounted in the agent's own mount namespace (`ip
            // netns exec` gives it one), which went with it: only the mount point is left.
            let _ = std::fs::remove_file(format!("/var/run/netns/{name}"));
        }
    }
}
