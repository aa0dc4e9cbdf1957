//! The scheduler's side of the agent link: the mutual-TLS client that calls agents, and
//! the supervisor of agents started on this machine (`--local-agents`).

mod client;
pub mod local;

pub use client::AgentClient;
