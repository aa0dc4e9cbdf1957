//! The node's real network datapath: tenant networks as bridges joined by VXLAN
//! (`links`, over netlink), DHCP answering each VM with its port's address (`dhcp`, on a
//! raw socket), security groups with port security in nftables (`firewall`), routers
//! with their NAT (`router`) and load balancers as proxies (`balancer`), each router and
//! load balancer in a namespace of its own.

pub mod balancer;
pub mod dhcp;
pub mod driver;
pub mod firewall;
pub mod links;
pub mod netns;
pub mod router;

/// The tap device of a port: `tap` and the first 11 characters of its id (Neutron's
/// convention, which keeps the name within the kernel's 15 characters). QEMU makes it;
/// the links enslave it and the firewall matches on it. Ids must be random from their
/// first character (version 4 UUIDs) for such names to differ: time-ordered ids
/// (version 7) begin alike for everything made within a quarter of a second.
pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", port_id.chars().take(11).collect::<String>())
}

/// `aa:bb:cc:dd:ee:ff` (either case) as bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
