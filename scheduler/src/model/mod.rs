//! The cloud's domain types: plain data that the store persists, core decides on and the
//! HTTP layer renders. No logic beyond what the types themselves mean.

mod compute;
mod identity;
mod images;
mod load_balancers;
mod network;
mod nodes;
mod servers;
mod volumes;

pub use compute::*;
pub use identity::*;
pub use images::*;
pub use load_balancers::*;
pub use network::*;
pub use nodes::*;
pub use servers::*;
pub use volumes::*;

/// A new random id in Keystone's form: 32 lower-case hex characters.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
