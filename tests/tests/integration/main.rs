//! Integration tests: scheduler and agents in one process, over loopback.

// Tests: a failed step should stop the test right there.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod compute_admin;
mod compute_microversions;
mod discovery;
mod floating_ips;
mod identity;
mod images;
mod instance_actions;
mod load_balancer_pools;
mod load_balancers;
mod migrations;
mod network;
mod network_peers;
mod network_ports;
mod network_quotas;
mod network_servers;
mod network_sync;
mod nodes;
mod openapi;
mod policy;
mod public_ips;
mod routers;
mod security_groups;
mod server_groups;
mod servers;
mod usage;
mod volumes;
mod volumes_attach;
