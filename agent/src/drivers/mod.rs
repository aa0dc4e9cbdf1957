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
use crate::vmm::cloud_hypervisor::{CLOUD_HYPERVISOR_BINARY, CloudHypervisor, DEFAULT_FIRMWARE};
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
    CloudHypervisor(VmHost<CloudHypervisor>),
}

/// `$on_real` with `$host` bound to the VM host, whichever hypervisor it drives, or
/// `$on_sim` for the sim set.
macro_rules! with_host {
    ($set:expr, $sim:pat => $on_sim:expr, $host:ident => $on_real:expr) => {
        match $set {
            $sim => $on_sim,
            DriverSet::Qemu($host) => $on_real,
            DriverSet::CloudHypervisor($host) => $on_real,
        }
    };
}

/// The hypervisor real VMs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    Qemu,
    CloudHypervisor,
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

/// Why the node cannot run real VMs with QEMU, or `None` when it can.
fn qemu_unavailable() -> Option<String> {
    if !on_path(QEMU_BINARY) {
        return Some(format!(
            "{QEMU_BINARY} is not installed (apt-get install qemu-system-x86)"
        ));
    }
    if !rustix::process::geteuid().is_root() {
        return Some("the agent does not run as root".into());
    }
    None
}

/// Why the node cannot run real VMs with Cloud Hypervisor, or `None` when it can.
fn cloud_hypervisor_unavailable() -> Option<String> {
    if !on_path(CLOUD_HYPERVISOR_BINARY) {
        return Some(format!(
            "{CLOUD_HYPERVISOR_BINARY} is not installed (apt-get install cloud-hypervisor)"
        ));
    }
    if !Path::new(DEFAULT_FIRMWARE).is_file() {
        return Some(format!(
            "there is no firmware at {DEFAULT_FIRMWARE} to boot disk images with"
        ));
    }
    if !rustix::process::geteuid().is_root() {
        return Some("the agent does not run as root".into());
    }
    // Cloud Hypervisor runs on KVM only (no emulation, unlike QEMU's TCG).
    if let Err(e) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Some(format!("KVM is not usable (/dev/kvm: {e})"));
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

/// The hypervisor the node runs real VMs on, as `--driver` asks and the node allows;
/// `None` for the sim set.
pub fn hypervisor(config: &AgentConfig) -> anyhow::Result<Option<Hypervisor>> {
    let forced = |hypervisor, unavailable: Option<String>, flag| match unavailable {
        None => Ok(Some(hypervisor)),
        Some(why) => anyhow::bail!("--driver {flag}: {why}"),
    };
    match config.driver {
        DriverChoice::Sim => Ok(None),
        DriverChoice::Qemu => forced(Hypervisor::Qemu, qemu_unavailable(), "qemu"),
        DriverChoice::CloudHypervisor => forced(
            Hypervisor::CloudHypervisor,
            cloud_hypervisor_unavailable(),
            "cloud-hypervisor",
        ),
        DriverChoice::Auto => {
            let Some(no_ch) = cloud_hypervisor_unavailable() else {
                return Ok(Some(Hypervisor::CloudHypervisor));
            };
            match qemu_unavailable() {
                None => {
                    tracing::info!("driver auto: QEMU, as Cloud Hypervisor cannot run: {no_ch}");
                    Ok(Some(Hypervisor::Qemu))
                }
                Some(no_qemu) => {
                    tracing::info!("driver auto: the sim set: {no_qemu}; {no_ch}");
                    Ok(None)
                }
            }
        }
    }
}

impl DriverSet {
    /// The sim set, or real VMs on `hypervisor` whose NICs `network` plugs and which
    /// receive live migrations on `node_ip` (the address of the agent's URL).
    pub async fn select(
        config: &AgentConfig,
        hypervisor: Option<Hypervisor>,
        network: Arc<crate::net::driver::NetworkDriver>,
        node_ip: std::net::IpAddr,
    ) -> anyhow::Result<DriverSet> {
        let Some(hypervisor) = hypervisor else {
            let capacity = Capacity {
                vcpus: config.sim_vcpus,
                memory_mb: config.sim_memory_mb,
                disk_gb: config.sim_disk_gb,
            };
            return Ok(DriverSet::Sim(sim::Sim::new(
                config.node_name.clone(),
                capacity,
                Duration::from_millis(config.sim_delay_ms),
            )));
        };
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)?;
        let capacity = real_capacity(&data_dir)?;
        let graceful = Duration::from_secs(config.graceful_stop_secs);
        // Re-adopting reads every VM's directory: off the async threads.
        tokio::task::spawn_blocking(move || match hypervisor {
            Hypervisor::Qemu => VmHost::new(
                Qemu::new(QEMU_BINARY.to_string(), node_ip),
                network,
                data_dir,
                capacity,
                graceful,
            )
            .map(DriverSet::Qemu),
            Hypervisor::CloudHypervisor => VmHost::new(
                CloudHypervisor::new(
                    CLOUD_HYPERVISOR_BINARY.to_string(),
                    DEFAULT_FIRMWARE.into(),
                    node_ip,
                ),
                network,
                data_dir,
                capacity,
                graceful,
            )
            .map(DriverSet::CloudHypervisor),
        })
        .await?
    }

    pub fn drivers(&self) -> Drivers {
        with_host!(self, DriverSet::Sim(_) => Drivers::SIM, host => Drivers {
            vmm: host.kind(),
            network: NetworkDriver::Sim,
            disk: DiskDriver::Files,
        })
    }

    pub fn sim(&self) -> Option<&sim::Sim> {
        match self {
            DriverSet::Sim(s) => Some(s),
            DriverSet::Qemu(_) | DriverSet::CloudHypervisor(_) => None,
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
            (_, Some(pool)) => Disks::Thin(RealDisks::new(
                crate::disk::thin::ThinStore::load(&config.data_dir, pool).await?,
            )),
            (_, None) => Disks::Files(RealDisks::new(crate::disk::files::FileStore::new(
                &config.data_dir,
            )?)),
        })
    }

    /// The node's image store; the sim set keeps no images (it boots anything).
    pub fn images(&self) -> Option<&NodeImages> {
        with_host!(self, DriverSet::Sim(_) => None, host => Some(host.images()))
    }

    /// Capacity and what runs, as observed now.
    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.observe().await, host => host.observe().await)
    }

    /// Creates and boots a server with the volumes it has from its start.
    pub async fn create(
        &self,
        spec: ServerSpec,
        volumes: Vec<crate::vmm::VolumeDisk>,
    ) -> Result<ServerReply, DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.create(spec).await, host => host.create(spec, volumes).await)
    }

    /// Live migration's target side, with the volumes the server arrives with.
    pub async fn prepare_incoming(
        &self,
        spec: ServerSpec,
        volumes: Vec<crate::vmm::VolumeDisk>,
    ) -> Result<ServerReply, DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.act(spec.id, ServerAction::PrepareIncoming { spec: Box::new(spec) }).await, host => host.prepare_incoming(spec, volumes).await)
    }

    pub async fn act(&self, id: Uuid, action: ServerAction) -> Result<ServerReply, DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.act(id, action).await, host => host.act(id, action).await)
    }

    /// The last `length` lines of the server's console (all with `None`).
    pub async fn console(&self, id: Uuid, length: Option<usize>) -> Result<String, DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.console(id, length).await, host => host.console(id, length).await)
    }

    /// Where snapshots are served from (the sim set takes none).
    pub fn snapshots_dir(&self) -> Option<std::path::PathBuf> {
        with_host!(self, DriverSet::Sim(_) => None, host => Some(host.snapshots_dir()))
    }

    /// A copy of the server's root disk; the sim set has no disks to copy.
    pub async fn snapshot(&self, id: Uuid) -> Result<SnapshotReply, DriverError> {
        with_host!(self, DriverSet::Sim(_) => Err(DriverError {
                code: "unsupported",
                message: "the sim driver set has no disks to snapshot".into(),
            }), host => host.snapshot(id).await)
    }

    pub async fn snapshot_delete(&self, name: &str) -> Result<(), DriverError> {
        with_host!(self, DriverSet::Sim(_) => Ok(()), host => host.snapshot_delete(name).await)
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        with_host!(self, DriverSet::Sim(s) => s.delete(id).await, host => host.delete(id).await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    fn forcing(driver: &str) -> AgentConfig {
        AgentConfig::try_parse_from([
            "yunji-agent",
            "--scheduler",
            "https://scheduler.invalid",
            "--join-token",
            "unused",
            "--driver",
            driver,
        ])
        .unwrap()
    }

    #[test]
    fn a_forced_hypervisor_runs_or_says_what_the_node_lacks() {
        for (flag, wanted, unavailable) in [
            ("qemu", Hypervisor::Qemu, qemu_unavailable()),
            (
                "cloud-hypervisor",
                Hypervisor::CloudHypervisor,
                cloud_hypervisor_unavailable(),
            ),
        ] {
            match (hypervisor(&forcing(flag)), unavailable) {
                (Ok(chosen), None) => assert_eq!(chosen, Some(wanted)),
                (Err(error), Some(why)) => {
                    assert_eq!(error.to_string(), format!("--driver {flag}: {why}"));
                }
                (outcome, why) => panic!("--driver {flag}: {outcome:?}, yet {why:?}"),
            }
        }
        assert_eq!(hypervisor(&forcing("sim")).unwrap(), None);
    }
}
