//! A typed client for yunji and any OpenStack-compatible cloud, covering the operations
//! of the CH/Z IaaS standard: configuration as the `openstack` CLI reads it
//! ([`CloudConfig`]), Keystone v3 authentication and the catalog ([`Client`]), and one
//! module per service with its resources and operations.
//!
//! ```no_run
//! # async fn example() -> Result<(), yunji_client::Error> {
//! let client = yunji_client::Client::connect(yunji_client::CloudConfig::load(Some("yunji"))?).await?;
//! for server in client.servers().await? {
//!     println!("{} {}", server.name, server.status);
//! }
//! # Ok(()) }
//! ```

mod config;
mod error;
mod session;

pub mod compute;
pub mod identity;
pub mod image;
pub mod load_balancer;
pub mod network;
pub mod volume;
pub mod wait;

pub use config::{AuthConfig, CloudConfig};
pub use error::{Error, error_message};
pub use session::{COMPUTE_MICROVERSION, Client, Reply, Service, VOLUME_MICROVERSION};

/// Extra fields a typed resource does not name, kept so nothing the cloud said is lost.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// Finds one resource by id or by exact name in `items` (already listed), the way the
/// `openstack` CLI resolves names: an id wins, an ambiguous name is an error.
pub(crate) fn pick<T>(
    kind: &str,
    wanted: &str,
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Result<T, Error> {
    let mut by_name = Vec::new();
    for item in items {
        if id(&item) == wanted {
            return Ok(item);
        }
        if name(&item) == wanted {
            by_name.push(item);
        }
    }
    match by_name.len() {
        1 => Ok(by_name.remove(0)),
        0 => Err(Error::Lookup(format!(
            "no {kind} with name or id {wanted:?}; list them with `yunji {kind} list`"
        ))),
        n => Err(Error::Lookup(format!(
            "{n} {kind}s are named {wanted:?}; use the id instead"
        ))),
    }
}

/// Percent-encodes a query value.
pub(crate) fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
