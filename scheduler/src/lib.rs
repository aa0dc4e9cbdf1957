//! yunji-scheduler: the standard's OpenStack-compatible API, state in SQLite, policy,
//! quotas and placement, and the mutual-TLS link to the node agents.
//!
//! Layers, top to bottom: `http` (routes, parsing, views) → `core` (every rule) →
//! `store` (the only SQL) and `agents` (the only calls to nodes). `model` holds the
//! plain domain types all of them share; `server` wires everything at start-up.

mod agents;
pub mod config;
pub mod core;
pub mod http;
pub mod model;
pub mod server;
mod store;

pub use server::{Running, start};
