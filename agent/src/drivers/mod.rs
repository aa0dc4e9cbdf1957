//! The node's driver set, chosen at start-up from what the node offers (or forced by
//! `--driver`). The VMM concern is the sim's state machines or real VMs (`crate::vmm`);
//! networks (`crate::net`) and volumes (`crate::disk`) are chosen beside it.

pub mod sim;
pub mod sim_disk;
pub mod sim_network;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;
use yunji_common::agent_api::{
    Capacity, DiskDriver, Drivers, Inventory, NetworkDriver, ServerAction, ServerReply, ServerSpec,
    SnapshotReply,
};

use crate::config::{AgentConfig, DriverChoice};
use crate::vmm::VmHost;
use crate::vmm::images::NodeImages;
use crate::vmm::qemu::{QEMU_BINARY, Qemu};

/// A failure the driver set reports; the API answers it as an agent error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    pub code: &'static str,
    pub message: String,
}

pub enum DriverSet {
    Sim(sim::Sim),
    Qemu(VmHost<Qemu>),
}

/// Why the node cannot run real VMs with QEMU, or `None` when it can.
fn qemu_unavailable() -> Option<String> {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(QEMU_BINARY).is_file())
    });
    if !on_path {
        return Some(format!(
            "{QEMU_BINARY} is not installed (apt-get install qemu-system-x86)"
        ));
    }
    if !rustix::process::geteuid().is_root() {
        return Some("the agent does not run as root".into());
    }
    None
}

/// What the node offers VMs: its cores and memory overcommitted as Nova does by default
/// (16 vCPUs a core, 1.5× memory), and the free space of the data directory.
fn real_capacity(data_dir: &Path) -> anyhow::Result<Capacity> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let total_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fs = rustix::fs::statvfs(data_dir)?;
    Ok(Capacity {
        vcpus: cores * 16,
        memory_mb: total_kb / 1024 * 3 / 2,
        disk_gb: (fs.f_bavail * fs.f_frsize) >> 30,
    })
}

/// Whether the node runs real VMs with QEMU, as `--driver` asks and the node allows.
pub fn use_qemu(config: &AgentConfig) -> anyhow::Result<bool> {
    Ok(match config.driver {
        DriverChoice::Sim => false,
        DriverChoice::Qemu => match qemu_unavailable() {
            None => true,
            Some(why) => anyhow::bail!("--driver qemu: {why}"),
        },
        DriverChoice::Auto => match qemu_unavailable() {
            None => true,
            Some(why) => {
                tracing::info!("driver auto: using the sim set: {why}");
                false
            }
        },
    })
}

impl DriverSet {
    /// The sim set, or real VMs whose NICs `network` plugs (see [`use_qemu`]) and which
    /// receive live migrations on `node_ip` (the address of the agent's URL).
    pub async fn select(
        config: &AgentConfig,
        use_qemu: bool,
        network: Arc<crate::net::driver::NetworkDriver>,
        node_ip: std::net::IpAddr,
    ) -> anyhow::Result<DriverSet> {
        if use_qemu {
            let data_dir = config.data_dir.clone();
            std::fs::create_dir_all(&data_dir)?;
            let capacity = real_capacity(&data_dir)?;
            let graceful = Duration::from_secs(config.graceful_stop_secs);
            // Re-adopting reads every VM's directory: off the async threads.
            let host = tokio::task::spawn_blocking(move || {
                VmHost::new(
                    Qemu::new(QEMU_BINARY.to_string(), node_ip),
                    network,
                    data_dir,
                    capacity,
                    graceful,
                )
            })
            .await??;
            return Ok(DriverSet::Qemu(host));
        }
        let capacity = Capacity {
            vcpus: config.sim_vcpus,
            memory_mb: config.sim_memory_mb,
            disk_gb: config.sim_disk_gb,
        };
        Ok(DriverSet::Sim(sim::Sim::new(
            config.node_name.clone(),
            capacity,
            Duration::from_millis(config.sim_delay_ms),
        )))
    }

    pub fn drivers(&self) -> Drivers {
        match self {
            DriverSet::Sim(_) => Drivers::SIM,
            DriverSet::Qemu(host) => Drivers {
                vmm: host.kind(),
                network: NetworkDriver::Sim,
                disk: DiskDriver::Files,
            },
        }
    }

    pub fn sim(&self) -> Option<&sim::Sim> {
        match self {
            DriverSet::Sim(s) => Some(s),
            DriverSet::Qemu(_) => None,
        }
    }

    /// The node's disk driver for volumes: the sim's with the sim set; with real VMs,
    /// thin volumes of `--thin-pool`, else qcow2 files.
    pub async fn disks(&self, config: &AgentConfig) -> anyhow::Result<crate::disk::Disks> {
        use crate::disk::{Disks, RealDisks};
        Ok(match (self, &config.thin_pool) {
            (DriverSet::Sim(_), None) => Disks::Sim(sim_disk::SimDisk::new(config.sim_disk_gb)),
            (DriverSet::Sim(_), Some(_)) => {
                anyhow::bail!("--thin-pool needs real VMs, but this node runs the sim driver set")
            }
            (DriverSet::Qemu(_), Some(pool)) => Disks::Thin(RealDisks::new(
                crate::disk::thin::ThinStore::load(&config.data_dir, pool).await?,
            )),
            (DriverSet::Qemu(_), None) => Disks::Files(RealDisks::new(
                crate::disk::files::FileStore::new(&config.data_dir)?,
            )),
        })
    }

    /// The node's image store; the sim set keeps no images (it boots anything).
    pub fn images(&self) -> Option<&NodeImages> {
        match self {
            DriverSet::Sim(_) => None,
            DriverSet::Qemu(host) => Some(host.images()),
        }
    }

    /// Capacity and what runs, as observed now.
    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        match self {
            DriverSet::Sim(s) => s.observe().await,
            DriverSet::Qemu(host) => host.observe().await,
        }
    }

    /// Creates and boots a server with the volumes it has from its start.
    pub async fn create(
        &self,
        spec: ServerSpec,
        volumes: Vec<crate::vmm::VolumeDisk>,
    ) -> Result<ServerReply, DriverError> {
        match self {
            DriverSet::Sim(s) => s.create(spec).await,
            DriverSet::Qemu(host) => host.create(spec, volumes).await,
        }
    }

    pub async fn act(&self, id: Uuid, action: ServerAction) -> Result<ServerReply, DriverError> {
        match self {
            DriverSet::Sim(s) => s.act(id, action).await,
            DriverSet::Qemu(host) => host.act(id, action).await,
        }
    }

    /// The last `length` lines of the server's console (all with `None`).
    pub async fn console(&self, id: Uuid, length: Option<usize>) -> Result<String, DriverError> {
        match self {
            DriverSet::Sim(s) => s.console(id, length).await,
            DriverSet::Qemu(host) => host.console(id, length).await,
        }
    }

    /// Where snapshots are served from (the sim set takes none).
    pub fn snapshots_dir(&self) -> Option<std::path::PathBuf> {
        match self {
            DriverSet::Sim(_) => None,
            DriverSet::Qemu(host) => Some(host.snapshots_dir()),
        }
    }

    /// A copy of the server's root disk; the sim set has no disks to copy.
    pub async fn snapshot(&self, id: Uuid) -> Result<SnapshotReply, DriverError> {
        match self {
            DriverSet::Sim(_) => Err(DriverError {
                code: "unsupported",
                message: "the sim driver set has no disks to snapshot".into(),
            }),
            DriverSet::Qemu(host) => host.snapshot(id).await,
        }
    }

    pub async fn snapshot_delete(&self, name: &str) -> Result<(), DriverError> {
        match self {
            DriverSet::Sim(_) => Ok(()),
            DriverSet::Qemu(host) => host.snapshot_delete(name).await,
        }
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        match self {
            DriverSet::Sim(s) => s.delete(id).await,
            DriverSet::Qemu(host) => host.delete(id).await,
        }
    }
}
