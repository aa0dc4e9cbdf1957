//! The node's driver set, chosen at start-up from what the node offers (or forced by
//! `--driver`). Each concern — VMM, network, disk — sits behind its own driver; today
//! the sim set is the only one, and `auto` chooses it until the real drivers land.

pub mod sim;
pub mod sim_disk;
pub mod sim_network;

use std::time::Duration;

use uuid::Uuid;
use yunji_common::agent_api::{
    Capacity, Drivers, Inventory, ServerAction, ServerReply, ServerSpec,
};

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
        Ok(DriverSet::Sim(sim::Sim::new(
            config.node_name.clone(),
            capacity,
            Duration::from_millis(config.sim_delay_ms),
        )))
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

    /// Creates and boots a server.
    pub async fn create(&self, spec: ServerSpec) -> Result<ServerReply, DriverError> {
        match self {
            DriverSet::Sim(s) => s.create(spec).await,
        }
    }

    pub async fn act(&self, id: Uuid, action: ServerAction) -> Result<ServerReply, DriverError> {
        match self {
            DriverSet::Sim(s) => s.act(id, action).await,
        }
    }

    /// The last `length` lines of the server's console (all with `None`).
    pub async fn console(&self, id: Uuid, length: Option<usize>) -> Result<String, DriverError> {
        match self {
            DriverSet::Sim(s) => s.console(id, length).await,
        }
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        match self {
            DriverSet::Sim(s) => s.delete(id).await,
        }
    }
}
