//! Address arithmetic for subnets: CIDRs, pools and gateways of IPv4 and IPv6, on
//! integers (an IPv4 address is a u128 below 2^32).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::error::{Error, Result};

/// A network prefix, with its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub version: u8,
    pub base: u128,
    pub prefix: u8,
}

fn bits(version: u8) -> u8 {
    if version == 4 { 32 } else { 128 }
}

/// An address as (version, integer).
pub fn parse_ip(text: &str) -> Option<(u8, u128)> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((4, u128::from(u32::from(a)))),
        IpAddr::V6(a) => Some((6, u128::from(a))),
    }
}

/// The canonical text of an address.
pub fn format_ip(version: u8, value: u128) -> String {
    if version == 4 {
        Ipv4Addr::from(value as u32).to_string()
    } else {
        Ipv6Addr::from(value).to_string()
    }
}

impl Cidr {
    /// Parses `addr/prefix`; host bits must be zero (Neutron's "not a valid network").
    pub fn parse(text: &str) -> Result<Cidr> {
        let bad = || {
            Error::BadRequest(format!(
                "'{text}' is not a valid CIDR: give a network address and prefix length, \
                 e.g. 10.0.0.0/24 or fd00::/64"
            ))
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let (version, base) = parse_ip(addr).ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > bits(version) {
            return Err(bad());
        }
        let cidr = Cidr {
            version,
            base,
            prefix,
        };
        if base & cidr.host_mask() != 0 {
            return Err(Error::BadRequest(format!(
                "'{text}' has host bits set: the network address of that prefix is {}",
                cidr.with_base(base & !cidr.host_mask())
            )));
        }
        Ok(cidr)
    }

    fn with_base(self, base: u128) -> String {
        format!("{}/{}", format_ip(self.version, base), self.prefix)
    }

    fn host_mask(self) -> u128 {
        let host_bits = bits(self.version) - self.prefix;
        if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }

    pub fn first(self) -> u128 {
        self.base
    }

    pub fn last(self) -> u128 {
        self.base | self.host_mask()
    }

    pub fn contains(self, version: u8, ip: u128) -> bool {
        version == self.version && ip >= self.first() && ip <= self.last()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        self.version == other.version
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    /// The range addresses may be handed out from: all but the network address (and
    /// the broadcast address for IPv4), as Neutron has it.
    pub fn usable(self) -> (u128, u128) {
        let first = self.first() + 1;
        let last = self.last() - u128::from(self.version == 4);
        (first, last)
    }

    /// Neutron's default pools: the usable range less the gateway.
    pub fn default_pools(self, gateway: Option<u128>) -> Vec<(u128, u128)> {
        let (first, last) = self.usable();
        match gateway {
            Some(g) if g >= first && g <= last => {
                let mut pools = Vec::new();
                if g > first {
                    pools.push((first, g - 1));
                }
                if g < last {
                    pools.push((g + 1, last));
                }
                pools
            }
            _ => vec![(first, last)],
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.with_base(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_with_host_bits_is_refused_naming_the_network() {
        let err = Cidr::parse("10.0.0.5/24").unwrap_err().to_string();
        assert!(err.contains("10.0.0.0/24"), "{err}");
    }

    #[test]
    fn ipv6_cidrs_are_canonical() {
        let c = Cidr::parse("fd00:0::/64").unwrap();
        assert_eq!(c.to_string(), "fd00::/64");
        assert_eq!(c.version, 6);
    }

    #[test]
    fn default_pools_skip_network_broadcast_and_gateway() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        let gw = parse_ip("10.0.0.1").unwrap().1;
        let pools = c.default_pools(Some(gw));
        assert_eq!(
            pools,
            vec![(
                parse_ip("10.0.0.2").unwrap().1,
                parse_ip("10.0.0.254").unwrap().1
            )]
        );
    }

    #[test]
    fn a_gateway_inside_the_range_splits_the_pool() {
        let c = Cidr::parse("10.0.0.0/29").unwrap();
        let gw = parse_ip("10.0.0.3").unwrap().1;
        assert_eq!(c.default_pools(Some(gw)).len(), 2);
    }

    #[test]
    fn ipv6_keeps_the_last_address() {
        let c = Cidr::parse("fd00::/126").unwrap();
        assert_eq!(c.usable(), (c.first() + 1, c.last()));
    }
}
