//! Integration tests: scheduler and agents in one process, over loopback.

// Tests: a failed step should stop the test right there.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod compute_admin;
mod discovery;
mod identity;
mod images;
mod nodes;
mod policy;
mod servers;
mod volumes;
mod volumes_attach;
