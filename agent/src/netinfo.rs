//! What the node's network looks like, read over netlink.

use std::net::IpAddr;

use anyhow::Context;
use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressScope};

/// The node's first global-scope address (IPv4 preferred): what the agent advertises
/// when it listens on every address.
pub async fn primary_address() -> anyhow::Result<IpAddr> {
    let (connection, handle, _) = rtnetlink::new_connection().context("opening netlink")?;
    let conn = tokio::spawn(connection);
    let mut found = Vec::new();
    let mut addresses = handle.address().get().execute();
    while let Some(msg) = addresses.try_next().await.context("listing addresses")? {
        if msg.header.scope != AddressScope::Universe {
            continue;
        }
        for attr in msg.attributes {
            if let AddressAttribute::Address(ip) = attr {
                found.push(ip);
            }
        }
    }
    conn.abort();
    found.sort_by_key(|ip| ip.is_ipv6());
    found
        .into_iter()
        .next()
        .context("the node has no global address to advertise; pass --advertise-url")
}
