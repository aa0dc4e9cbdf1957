//! The node's driver set, chosen at start-up from what the node offers (or forced by
//! `--driver`). Each concern — VMM, network, disk — sits behind its own driver; today
//! the sim set is the only one, and `auto` chooses it until the real drivers land.

pub mod sim;

use yunji_common::agent_api::{Capacity, Drivers, Inventory};

use crate::config::{AgentConfig, DriverChoice};

/// A failure the driver set reports; the API answers it as an agent error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DriverError {
    pub code: &'static str,
    pub message: String,
}

pub enum DriverSet {
    Sim(sim::Sim),
}

impl DriverSet {
    pub fn select(config: &AgentConfig) -> anyhow::Result<DriverSet> {
        let capacity = Capacity {
            vcpus: config.sim_vcpus,
            memory_mb: config.sim_memory_mb,
            disk_gb: config.sim_disk_gb,
        };
        if config.driver == DriverChoice::Auto {
            tracing::info!("driver auto: no real driver set is available yet; using sim");
        }
        Ok(DriverSet::Sim(sim::Sim::new(capacity)))
    }

    pub fn drivers(&self) -> Drivers {
        match self {
            DriverSet::Sim(_) => Drivers::SIM,
        }
    }

    pub fn sim(&self) -> Option<&sim::Sim> {
        match self {
            DriverSet::Sim(s) => Some(s),
        }
    }

    /// Capacity and what runs, as observed now.
    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        match self {
            DriverSet::Sim(s) => s.observe().await,
        }
    }
}
