//! The agent's configuration, from flags (each also read from a `YUNJI_*` variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriverChoice {
    /// The real drivers the node offers, as root: Cloud Hypervisor where KVM is usable
    /// and it is installed, else QEMU where `qemu-system-x86_64` is, else the sim set.
    Auto,
    /// The simulated driver set.
    Sim,
    /// Real VMs with QEMU (fails to start when QEMU or root is missing).
    Qemu,
    /// Real VMs with Cloud Hypervisor (fails to start when it, its firmware, KVM or
    /// root is missing).
    CloudHypervisor,
}

/// Which network driver applies the scheduler's network specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkChoice {
    /// The real datapath when the node runs real VMs (`--driver` chose QEMU), else the sim.
    Auto,
    /// The simulated network: specs are recorded, nothing is made.
    Sim,
    /// Bridges, VXLAN, DHCP and nftables on this node (fails to start without real VMs).
    Real,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "yunji-agent", version, about = "The yunji node agent")]
pub struct AgentConfig {
    /// The scheduler's public URL.
    #[arg(long, env = "YUNJI_SCHEDULER")]
    pub scheduler: String,
    /// The scheduler's join token (its data directory's `join-token`).
    #[arg(long, env = "YUNJI_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: String,
    /// Where the agent keeps its key, certificates and state.
    #[arg(long, env = "YUNJI_DATA_DIR", default_value = "/var/lib/yunji-agent")]
    pub data_dir: PathBuf,
    /// This node's name (a lower-case DNS name); its certificate is issued for it.
    #[arg(long, env = "YUNJI_NODE_NAME", default_value_t = default_node_name())]
    pub node_name: String,
    /// Address of the agent API (mutual TLS).
    #[arg(long, env = "YUNJI_LISTEN", default_value = "0.0.0.0:9775")]
    pub listen: SocketAddr,
    /// URL the scheduler reaches this agent at (default: from the listen address).
    #[arg(long, env = "YUNJI_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Driver set.
    #[arg(long, env = "YUNJI_DRIVER", value_enum, default_value = "auto")]
    pub driver: DriverChoice,
    /// Network driver. `sim` until the real datapath is rolled out on every rig.
    #[arg(long, env = "YUNJI_NETWORK", value_enum, default_value = "sim")]
    pub network: NetworkChoice,
    /// Operator-provided certificate for this node (with --tls-key and --ca-cert).
    #[arg(long, env = "YUNJI_TLS_CERT", requires_all = ["tls_key", "ca_cert"])]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "YUNJI_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signed the scheduler's client certificate (with --tls-cert).
    #[arg(long, env = "YUNJI_CA_CERT", requires = "tls_cert")]
    pub ca_cert: Option<PathBuf>,
    /// CA to verify the scheduler's HTTPS listener with, when the join token carries no
    /// certificate fingerprint.
    #[arg(long, env = "YUNJI_SCHEDULER_CA")]
    pub scheduler_ca: Option<PathBuf>,
    /// The availability zone this node belongs to.
    #[arg(long, env = "YUNJI_AVAILABILITY_ZONE", default_value = "nova")]
    pub availability_zone: String,
    /// The sim driver set's unit of delay (ms): an operation takes one to three.
    #[arg(long, default_value_t = 300)]
    pub sim_delay_ms: u64,
    /// vCPUs the sim driver set reports.
    #[arg(long, default_value_t = 32)]
    pub sim_vcpus: u32,
    /// Memory (MiB) the sim driver set reports.
    #[arg(long, default_value_t = 131_072)]
    pub sim_memory_mb: u64,
    /// Disk (GiB) the sim driver set reports.
    #[arg(long, default_value_t = 2_000)]
    pub sim_disk_gb: u64,
    /// How long a soft reboot, resize or revert waits for the guest to power off after
    /// the ACPI power button before forcing it off (s).
    #[arg(long, env = "YUNJI_GRACEFUL_STOP_SECS", default_value_t = 60)]
    pub graceful_stop_secs: u64,
    /// Keep volumes as device-mapper thin volumes of this thin pool (its name under
    /// /dev/mapper, made and active before the agent starts) instead of qcow2 files in the
    /// data directory. Needs real VMs.
    #[arg(long, env = "YUNJI_THIN_POOL")]
    pub thin_pool: Option<String>,
    /// Log format.
    #[arg(long, env = "YUNJI_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
}

fn default_node_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .ok()
        .filter(|h| yunji_common::valid_node_name(h))
        .unwrap_or_else(|| "node-1".into())
}
