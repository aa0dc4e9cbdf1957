//! The scheduler's configuration: defaults, then a TOML file, then `YUNJI_*`
//! environment variables, then command-line flags — each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// Which driver set the scheduler's local agents run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DriverChoice {
    /// The real drivers the node offers (QEMU as root where it is installed), else sim.
    Auto,
    /// The simulated driver set: no root, no VMs.
    Sim,
}

/// Command-line flags. Every flag also reads a `YUNJI_*` variable.
#[derive(Debug, Parser)]
#[command(
    name = "yunji-scheduler",
    version,
    about = "The yunji scheduler: the standard's IaaS API, state, policy and placement"
)]
pub struct Flags {
    /// Directory that holds everything: database, certificates, secrets, local agents.
    #[arg(long, env = "YUNJI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the API listener.
    #[arg(long, env = "YUNJI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Agents started on this machine and enrolled automatically.
    #[arg(long, env = "YUNJI_LOCAL_AGENTS")]
    pub local_agents: Option<u32>,
    /// Driver set of the local agents.
    #[arg(long, env = "YUNJI_DRIVER", value_enum)]
    pub driver: Option<DriverChoice>,
    /// TOML configuration file.
    #[arg(long, env = "YUNJI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Base URL clients reach the API at (catalog and `self` links).
    #[arg(long, env = "YUNJI_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, env = "YUNJI_PLAIN_HTTP")]
    pub plain_http: bool,
    /// PEM certificate chain for the API listener (default: one made on first start).
    #[arg(long, env = "YUNJI_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "YUNJI_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "YUNJI_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
}

/// The whole configuration, as the TOML file spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub local_agents: u32,
    pub driver: DriverChoice,
    pub tls: TlsConfig,
    pub identity: IdentityConfig,
    pub agents: AgentsConfig,
    pub images: ImagesConfig,
    pub compute: ComputeConfig,
    pub network: NetworkConfig,
    pub volume: crate::model::VolumeConfig,
    pub load_balancer: crate::model::LoadBalancerConfig,
    /// Largest request body accepted (bytes) outside image uploads.
    pub max_body_bytes: usize,
    /// The first admin's password, from `YUNJI_ADMIN_PASSWORD` (never from the file).
    #[serde(skip)]
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve plain HTTP.
    pub plain_http: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// The region (data centre) made on first start and used in the catalog.
    pub region: String,
    /// argon2id memory cost in KiB. OWASP lists equivalent settings, from 46 MiB × 1
    /// pass to 7 MiB × 5; the scheduler keeps one working area per core, so the
    /// small-memory end keeps it lean at the same CPU cost.
    pub argon2_memory_kib: u32,
    /// argon2id iterations (passes), paired with the memory cost as OWASP lists them.
    pub argon2_iterations: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// How often the scheduler asks each agent for its status.
    pub heartbeat_secs: u64,
    /// A node that has not answered for this long is marked down.
    pub down_after_secs: u64,
    /// Operator-provided PKI instead of the scheduler's own CA: the CA that signed the
    /// agents' certificates, and the scheduler's client certificate and key.
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Resources each local sim agent reports.
    pub sim_vcpus: u32,
    pub sim_memory_mb: u64,
    pub sim_disk_gb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeConfig {
    /// Seconds after which a resize in VERIFY_RESIZE confirms itself (0: never), like
    /// Nova's `resize_confirm_window`.
    pub resize_confirm_window_secs: u64,
    /// How long a stop waits for the guest to power down before forcing it off.
    pub shutdown_timeout_secs: u64,
    /// Remove VMs a node runs that no server of the cloud ever owned (a node moved from
    /// another cloud, a restored database). Off: they are reported in the log and left.
    /// VMs of deleted servers are always removed.
    pub remove_unknown_vms: bool,
    /// Quotas of a project that has none set (-1: unlimited).
    pub default_quota: crate::model::ComputeQuota,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The MTU of tenant networks: 1500 less VXLAN's 50 bytes of encapsulation.
    pub mtu: u32,
    /// Network quotas of a project that has none set (-1: unlimited).
    pub default_quota: crate::model::NetworkQuota,
    /// The external network public IPs (`publicips`) come from; unset: the only one.
    pub default_external_network: Option<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            mtu: 1450,
            default_quota: crate::model::NetworkQuota::default(),
            default_external_network: None,
        }
    }
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            resize_confirm_window_secs: 0,
            shutdown_timeout_secs: 60,
            remove_unknown_vms: false,
            default_quota: crate::model::ComputeQuota {
                instances: 10,
                cores: 20,
                ram_mb: 51_200,
                key_pairs: 100,
                metadata_items: 128,
            },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/yunji"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_url: None,
            local_agents: 1,
            driver: DriverChoice::Auto,
            tls: TlsConfig::default(),
            identity: IdentityConfig::default(),
            agents: AgentsConfig::default(),
            images: ImagesConfig::default(),
            compute: ComputeConfig::default(),
            network: NetworkConfig::default(),
            volume: crate::model::VolumeConfig::default(),
            load_balancer: crate::model::LoadBalancerConfig::default(),
            max_body_bytes: 1024 * 1024,
            admin_password: None,
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            token_ttl_secs: 3600,
            region: "RegionOne".into(),
            argon2_memory_kib: 7_168,
            argon2_iterations: 5,
        }
    }
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            heartbeat_secs: 2,
            down_after_secs: 10,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            sim_vcpus: 32,
            sim_memory_mb: 131_072,
            sim_disk_gb: 2_000,
        }
    }
}

/// The image service (Glance v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// Largest image accepted, by upload or import (Glance's `image_size_cap`).
    pub max_image_bytes: u64,
    /// Whether web-download may fetch from loopback, private and link-local addresses
    /// (the scheduler's own network, the metadata address). Off: such URLs are refused.
    pub web_download_allow_private: bool,
    /// How long `qemu-img info` may take on an uploaded file.
    pub inspect_timeout_secs: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            max_image_bytes: 1 << 40,
            web_download_allow_private: false,
            inspect_timeout_secs: 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {path} is invalid")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the file named by `--config`, then environment and flags.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let mut config = match &flags.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = flags.listen {
            config.listen = listen;
        }
        if let Some(n) = flags.local_agents {
            config.local_agents = n;
        }
        if let Some(driver) = flags.driver {
            config.driver = driver;
        }
        if let Some(url) = &flags.public_url {
            config.public_url = Some(url.clone());
        }
        if flags.plain_http {
            config.tls.plain_http = true;
        }
        if let (Some(cert), Some(key)) = (&flags.tls_cert, &flags.tls_key) {
            config.tls.cert = Some(cert.clone());
            config.tls.key = Some(key.clone());
        }
        config.admin_password = std::env::var("YUNJI_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key go together: give both or neither".into(),
            ));
        }
        let pki = [
            &self.agents.ca_cert,
            &self.agents.client_cert,
            &self.agents.client_key,
        ];
        if pki.iter().any(|p| p.is_some()) && !pki.iter().all(|p| p.is_some()) {
            return Err(ConfigError::Invalid(
                "agents.ca_cert, agents.client_cert and agents.client_key go together".into(),
            ));
        }
        if self.identity.token_ttl_secs == 0 {
            return Err(ConfigError::Invalid(
                "identity.token_ttl_secs must be at least 1".into(),
            ));
        }
        if self.agents.heartbeat_secs == 0
            || self.agents.down_after_secs <= self.agents.heartbeat_secs
        {
            return Err(ConfigError::Invalid(
                "agents.down_after_secs must exceed agents.heartbeat_secs (> 0)".into(),
            ));
        }
        Ok(())
    }

    /// Whether the API listener speaks TLS.
    pub fn https(&self) -> bool {
        !self.tls.plain_http
    }

    /// The base URL clients use: configured, or derived from the listen address.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if self.https() { "https" } else { "http" };
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            match bound.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            }
        };
        format!("{scheme}://{host}:{}", bound.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("yunji.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlocal_agents = 3\n[identity]\ntoken_ttl_secs = 60\n",
        )
        .unwrap();
        let flags = Flags::parse_from([
            "yunji-scheduler",
            "--config",
            file.to_str().unwrap(),
            "--local-agents",
            "2",
        ]);
        let config = Config::load(&flags).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.local_agents, 2);
        assert_eq!(config.identity.token_ttl_secs, 60);
        assert_eq!(config.identity.region, "RegionOne");
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("yunji.toml");
        std::fs::write(&file, "listne = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::from_file(&file).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }));
    }

    #[test]
    fn public_url_follows_scheme_and_bound_address() {
        let mut config = Config::default();
        assert_eq!(
            config.public_url("0.0.0.0:8443".parse().unwrap()),
            "https://127.0.0.1:8443"
        );
        config.tls.plain_http = true;
        assert_eq!(
            config.public_url("127.0.0.2:80".parse().unwrap()),
            "http://127.0.0.2:80"
        );
    }
}
