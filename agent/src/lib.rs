//! yunji-agent: the privileged daemon on every node. It joins the scheduler, then serves
//! the agent API (types in `yunji_common::agent_api`) over mutual TLS, and acts through
//! the driver set the node offers — the sim set, or real VMs, networks and disks.

pub mod api;
pub mod config;
pub mod disk;
pub mod drivers;
mod join;
pub mod net;
mod netinfo;
pub mod vmm;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use yunji_common::pidlock::{AGENT_LOCK_FILE, LockError, PidLock};
use yunji_common::pki;

pub use config::AgentConfig;

/// A running agent.
pub struct RunningAgent {
    pub addr: SocketAddr,
    pub node_name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Held while the agent runs: one agent per data directory.
    _lock: PidLock,
}

impl RunningAgent {
    /// Stops serving; running VMs (with the real drivers) keep running.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The network driver `--network` asks for: the real datapath only beside real VMs.
fn network_driver(
    config: &AgentConfig,
    real_vms: bool,
) -> anyhow::Result<net::driver::NetworkDriver> {
    let real = match config.network {
        config::NetworkChoice::Sim => false,
        config::NetworkChoice::Auto => real_vms,
        config::NetworkChoice::Real if real_vms => true,
        config::NetworkChoice::Real => {
            anyhow::bail!("--network real needs real VMs (--driver qemu or cloud-hypervisor)")
        }
    };
    if real {
        tracing::info!("network: the real datapath (bridges, VXLAN, DHCP, nftables)");
        let real = net::driver::RealNetwork::new().context("cannot start the real network")?;
        return Ok(net::driver::NetworkDriver::Real(real));
    }
    Ok(net::driver::NetworkDriver::Sim(
        drivers::sim_network::SimNetwork::new(std::time::Duration::from_millis(
            config.sim_delay_ms,
        )),
    ))
}

/// Joins the scheduler and serves the agent API; returns once serving.
pub async fn start(config: AgentConfig) -> anyhow::Result<RunningAgent> {
    let data_dir = config.data_dir.clone();
    let lock = tokio::task::spawn_blocking(move || lock_data_dir(&data_dir)).await??;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let agent_url = match &config.advertise_url {
        Some(url) => url.clone(),
        None => {
            let ip = if addr.ip().is_unspecified() {
                netinfo::primary_address().await?
            } else {
                addr.ip()
            };
            format!("https://{}", SocketAddr::new(ip, addr.port()))
        }
    };
    let credentials = join::join(&config, &agent_url).await?;
    let tls = pki::mutual_server_config(&credentials.identity, &credentials.ca_pem)?;
    let hypervisor = drivers::hypervisor(&config)?;
    let network = Arc::new(network_driver(&config, hypervisor.is_some())?);
    let node_ip = agent_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host()?.trim_matches(['[', ']']).parse().ok())
        .unwrap_or(addr.ip());
    let drivers = drivers::DriverSet::select(&config, hypervisor, network.clone(), node_ip).await?;
    let disks = drivers.disks(&config).await?;
    let state = Arc::new(api::AgentState::new(
        config.node_name.clone(),
        config.availability_zone.clone(),
        drivers,
        network,
        disks,
    ));
    let (stop, mut stop_rx) = watch::channel(false);
    let handler = api::handler(state);
    let task = tokio::spawn(async move {
        yunji_common::serve::serve(listener, Some(tls), handler, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        })
        .await;
    });
    tracing::info!(node = %config.node_name, %addr, url = %agent_url, "yunji-agent serving");
    Ok(RunningAgent {
        addr,
        node_name: config.node_name,
        stop,
        task,
        _lock: lock,
    })
}

/// Takes the data directory for this agent, before anything in it is read or written.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<PidLock> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot make the data directory {}", data_dir.display()))?;
    PidLock::acquire(&data_dir.join(AGENT_LOCK_FILE)).map_err(|e| match e {
        LockError::Held { pid, .. } => anyhow::anyhow!(
            "another yunji-agent ({}) is running on {}: stop it first, or give this one \
             its own --data-dir",
            pid.map_or("pid unknown".into(), |p| format!("pid {p}")),
            data_dir.display()
        ),
        e => e.into(),
    })
}
