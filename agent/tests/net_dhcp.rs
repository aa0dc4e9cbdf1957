//! Privileged: the DHCP responder on a real bridge (`ybr-7`, no IP) in a namespace of its
//! own, answering busybox `udhcpc` run in guest namespaces joined to the bridge by veth.
//! Run as root: `cargo test -p yunji-agent --test net_dhcp -- --ignored --test-threads=1`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use yunji_agent::net::dhcp::{DhcpServer, Lease, LeaseTable, MacAddr};
use yunji_common::execute::{ExecError, execute};

const BRIDGE: &str = "ybr-7";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const GUEST_1_MAC: MacAddr = [0x02, 0x00, 0x00, 0x00, 0x07, 0x01];
const GUEST_2_MAC: MacAddr = [0x02, 0x00, 0x00, 0x00, 0x07, 0x02];
const STRANGER_MAC: MacAddr = [0x02, 0x00, 0x00, 0x00, 0x07, 0x99];
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Records what udhcpc hands its script on `bound`, one `name=value` a line.
const LEASE_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
    {
        echo "ip=$ip"
        echo "mask=$mask"
        echo "subnet=$subnet"
        echo "router=$router"
        echo "dns=$dns"
        echo "mtu=$mtu"
        echo "hostname=$hostname"
        echo "staticroutes=$staticroutes"
        echo "serverid=$serverid"
    } > "$YJ_LEASE_FILE"
    ;;
esac
exit 0
"#;

fn lease(mac: MacAddr, ip: Ipv4Addr, hostname: Option<&str>) -> Lease {
    Lease {
        mac,
        ip,
        prefix_len: 24,
        gateway: Some(GATEWAY),
        dns: vec![Ipv4Addr::new(10, 7, 0, 2), Ipv4Addr::new(198, 51, 100, 53)],
        routes: vec![(
            "192.168.50.0/24".parse().expect("a CIDR"),
            Ipv4Addr::new(10, 7, 0, 254),
        )],
        mtu: Some(1450),
        hostname: hostname.map(str::to_string),
    }
}

fn mac_text(mac: MacAddr) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// A DHCP server running in a namespace, on a thread of its own that `setns`ed there.
struct ServerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    fn start(namespace: &str, server_ip: Ipv4Addr, leases: LeaseTable) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let path = format!("/var/run/netns/{namespace}");
        let thread = std::thread::spawn(move || {
            let netns = std::fs::File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                netns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let server = match DhcpServer::spawn(BRIDGE, server_ip, leases) {
                    Ok(server) => server,
                    Err(error) => {
                        let _ = ready_tx.send(Err(format!("{:#}", anyhow::Error::from(error))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let _ = stopped.await;
                server.stop().await;
            });
        });
        let server = Self {
            stop: Some(stop),
            thread: Some(thread),
        };
        ready_rx
            .recv()
            .expect("the server thread ended before starting")
            .expect("DhcpServer::spawn");
        server
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The namespaces (bridge and guests) and the DHCP server; dropping it, even while a
/// failed assertion unwinds, stops the server and deletes every namespace, which
/// removes their links.
struct Rig {
    prefix: String,
    namespaces: Vec<String>,
    server: Option<ServerThread>,
    dir: tempfile::TempDir,
}

impl Rig {
    fn bridge_namespace(&self) -> String {
        format!("{}-br", self.prefix)
    }

    fn guest_namespace(&self, guest: usize) -> String {
        format!("{}-g{guest}", self.prefix)
    }

    async fn new(guest_macs: &[MacAddr]) -> Self {
        let mut rig = Rig {
            prefix: format!("yj-dh-{}", std::process::id()),
            namespaces: Vec::new(),
            server: None,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        let bridge_ns = rig.bridge_namespace();
        rig.add_namespace(&bridge_ns).await;
        ip(&["-n", &bridge_ns, "link", "add", BRIDGE, "type", "bridge"]).await;
        ip(&["-n", &bridge_ns, "link", "set", BRIDGE, "up"]).await;
        for (index, mac) in guest_macs.iter().enumerate() {
            let guest = index + 1;
            let guest_ns = rig.guest_namespace(guest);
            rig.add_namespace(&guest_ns).await;
            let port = format!("p{guest}");
            let mac = mac_text(*mac);
            ip(&[
                "-n", &bridge_ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "address", &mac, "netns", &guest_ns,
            ])
            .await;
            ip(&[
                "-n", &bridge_ns, "link", "set", &port, "master", BRIDGE, "up",
            ])
            .await;
            ip(&["-n", &guest_ns, "link", "set", "eth0", "up"]).await;
        }
        let script = rig.dir.path().join("lease.sh");
        std::fs::write(&script, LEASE_SCRIPT).expect("write the udhcpc script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("make the udhcpc script executable");
        rig
    }

    async fn add_namespace(&mut self, name: &str) {
        ip(&["netns", "add", name]).await;
        self.namespaces.push(name.to_string());
    }

    fn start_server(&mut self, leases: LeaseTable) {
        self.server = Some(ServerThread::start(
            &self.bridge_namespace(),
            GATEWAY,
            leases,
        ));
    }

    /// Runs `udhcpc` once in the guest's namespace; on a lease, what its script saw.
    async fn udhcpc(
        &self,
        guest: usize,
        run: &str,
        extra: &[&str],
    ) -> Result<HashMap<String, String>, ExecError> {
        let lease_file = self.dir.path().join(format!("g{guest}-{run}.env"));
        let script = self.dir.path().join("lease.sh");
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.guest_namespace(guest),
            "env".into(),
            format!("YJ_LEASE_FILE={}", lease_file.display()),
            "busybox".into(),
            "udhcpc".into(),
            "-f".into(),
            "-i".into(),
            "eth0".into(),
            "-n".into(),
            "-q".into(),
            "-t".into(),
            "5".into(),
            "-T".into(),
            "1".into(),
            "-s".into(),
            script.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        execute("ip", &args, COMMAND_TIMEOUT).await?;
        Ok(read_lease_file(&lease_file))
    }
}

impl Drop for Rig {
    #[allow(clippy::disallowed_methods)] // Drop cannot await execute(); cleanup runs ip directly
    fn drop(&mut self) {
        self.server.take();
        for namespace in self.namespaces.iter().rev() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", namespace])
                .status();
        }
    }
}

fn read_lease_file(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("udhcpc succeeded but its script wrote no {path:?}: {e}"));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim().to_string()))
        .collect()
}

async fn ip(args: &[&str]) {
    execute("ip", args, COMMAND_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn namespace_list() -> String {
    let out = execute("ip", ["netns", "list"], COMMAND_TIMEOUT)
        .await
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
#[ignore = "needs root and network namespaces (tests/run.sh runs it)"]
async fn vms_get_exactly_their_table_address_and_strangers_get_none() {
    let guest_1_ip = Ipv4Addr::new(10, 7, 0, 11);
    let guest_2_ip = Ipv4Addr::new(10, 7, 0, 12);
    let guest_1_moved_ip = Ipv4Addr::new(10, 7, 0, 21);
    let mut rig = Rig::new(&[GUEST_1_MAC, GUEST_2_MAC, STRANGER_MAC]).await;
    let prefix = rig.prefix.clone();
    let table = LeaseTable::new([
        lease(GUEST_1_MAC, guest_1_ip, Some("guest-1")),
        lease(GUEST_2_MAC, guest_2_ip, None),
    ]);
    rig.start_server(table.clone());

    // Guest 1 asks for a unicast reply (udhcpc's default), guest 2 for broadcast (-B).
    let guest_1 = rig
        .udhcpc(1, "first", &[])
        .await
        .expect("guest 1 gets a lease");
    let guest_2 = rig
        .udhcpc(2, "first", &["-B"])
        .await
        .expect("guest 2 gets a lease");
    let stranger = rig.udhcpc(3, "first", &[]).await;
    table.replace([
        lease(GUEST_1_MAC, guest_1_moved_ip, Some("guest-1")),
        lease(GUEST_2_MAC, guest_2_ip, None),
    ]);
    let guest_1_again = rig
        .udhcpc(1, "second", &[])
        .await
        .expect("guest 1 gets a lease from the new table");
    drop(rig);

    assert_eq!(guest_1["ip"], guest_1_ip.to_string());
    assert_eq!(guest_1["mask"], "24");
    assert_eq!(guest_1["subnet"], "255.255.255.0");
    assert_eq!(guest_1["router"], GATEWAY.to_string());
    assert_eq!(guest_1["dns"], "10.7.0.2 198.51.100.53");
    assert_eq!(guest_1["mtu"], "1450");
    assert_eq!(guest_1["hostname"], "guest-1");
    assert_eq!(guest_1["serverid"], GATEWAY.to_string());
    assert_eq!(
        guest_1["staticroutes"],
        "192.168.50.0/24 10.7.0.254 0.0.0.0/0 10.7.0.1"
    );
    assert_eq!(guest_2["ip"], guest_2_ip.to_string());
    assert_eq!(guest_2["router"], GATEWAY.to_string());
    assert_eq!(guest_2["dns"], "10.7.0.2 198.51.100.53");
    assert!(
        matches!(stranger, Err(ExecError::Failed { .. })),
        "a MAC not in the table must get no lease, got {stranger:?}"
    );
    assert_eq!(guest_1_again["ip"], guest_1_moved_ip.to_string());
    let left = namespace_list().await;
    assert!(!left.contains(&prefix), "namespaces left behind: {left}");
}
