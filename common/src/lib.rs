//! What the scheduler and the agents share: the agent API's types, the node PKI and
//! mutual-TLS configuration, and the one way both serve HTTP over TCP or TLS.

pub mod agent_api;
pub mod client;
pub mod execute;
pub mod fsutil;
pub mod openapi;
pub mod pidlock;
pub mod pki;
pub mod serve;

/// A node name: what an agent is known by, and the DNS name its certificate is issued for.
/// Lower-case DNS labels (`node-1`, `rack3.dc1`), 1–253 characters.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::valid_node_name;

    #[test]
    fn node_names_are_dns_names() {
        assert!(valid_node_name("node-1"));
        assert!(valid_node_name("rack3.dc1"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("Node1"));
        assert!(!valid_node_name("-node"));
        assert!(!valid_node_name("node_1"));
        assert!(!valid_node_name("a..b"));
        assert!(!valid_node_name(&"a".repeat(64)));
    }
}
