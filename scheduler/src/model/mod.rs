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

/// A new resource id: a version 7 UUID, whose leading bits are the time of its making.
/// Ids drawn in order sort in order, so each index keyed by them grows at its end: a
/// create writes to the last page of each, which the creates before it wrote too,
/// instead of a random page (measured: half the log pages of a burst of port creates).
pub fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A new id in Keystone's form: 32 lower-case hex characters.
pub fn new_id() -> String {
    new_uuid().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_drawn_one_after_another_sort_in_that_order() {
        let ids: Vec<String> = (0..10_000).map(|_| new_uuid().to_string()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
        let keystone: Vec<String> = (0..1_000).map(|_| new_id()).collect();
        assert!(keystone.windows(2).all(|w| w[0] < w[1]));
        assert!(keystone.iter().all(|id| id.len() == 32));
    }
}
