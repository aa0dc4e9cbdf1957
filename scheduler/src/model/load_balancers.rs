//! Octavia v2 load balancers (clause B.3.4).

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A load balancer; its VIP is a `ports` row (`device_owner` `Octavia`, `device_id`
/// the load balancer) so IPAM guards the address.
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub vip_port_id: String,
    pub vip_network_id: String,
    pub vip_subnet_id: String,
    pub vip_address: String,
    /// ACTIVE, ERROR, PENDING_CREATE, PENDING_UPDATE.
    pub provisioning_status: String,
    /// ONLINE, OFFLINE.
    pub operating_status: String,
    pub admin_state_up: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub id: String,
    pub load_balancer_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    /// TCP or HTTP.
    pub protocol: String,
    pub protocol_port: i64,
    pub default_pool_id: Option<String>,
    /// -1: unlimited.
    pub connection_limit: i64,
    pub admin_state_up: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub load_balancer_id: String,
    /// The listener it is the default pool of, if any.
    pub listener_id: Option<String>,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub protocol: String,
    /// ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP.
    pub lb_algorithm: String,
    pub admin_state_up: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub pool_id: String,
    pub project_id: String,
    pub name: String,
    pub address: String,
    pub protocol_port: i64,
    pub weight: i64,
    pub subnet_id: Option<String>,
    /// The server the nodes extension added it for.
    pub server_id: Option<String>,
    pub admin_state_up: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct HealthMonitor {
    pub id: String,
    pub pool_id: String,
    pub project_id: String,
    pub name: String,
    /// TCP, HTTP or PING.
    pub kind: String,
    pub delay: i64,
    pub timeout: i64,
    pub max_retries: i64,
    pub max_retries_down: i64,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub admin_state_up: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters and paging of `GET /v2/lbaas/loadbalancers`.
#[derive(Debug, Clone, Default)]
pub struct LoadBalancerFilter {
    /// `None`: every project's (administrators).
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub provisioning_status: Option<String>,
    pub marker: Option<String>,
    pub limit: Option<usize>,
}

/// Load balancer quotas of a project that has none set (-1: unlimited).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadBalancerQuota {
    pub load_balancer: i64,
}

impl Default for LoadBalancerQuota {
    fn default() -> Self {
        LoadBalancerQuota { load_balancer: -1 }
    }
}

/// The `[load_balancer]` configuration section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadBalancerConfig {
    pub default_quota: LoadBalancerQuota,
    /// How long applying a change takes before the load balancer turns ACTIVE, until
    /// the agent's confirmation takes its place; tests use it to observe PENDING_*.
    pub apply_delay_ms: u64,
}
