//! Who the client is: the peer of the socket, or, when the peer is a trusted proxy, the address
//! that proxy says it forwards (`X-Forwarded-For`), and the unit the per-address cap counts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName};

/// `X-Forwarded-For: client, proxy1, proxy2`: each proxy appends the address it received the
/// request from.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.7`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address")]
    Address(String, #[source] std::net::AddrParseError),
    #[error("{0:?} is not a prefix length")]
    Prefix(String, #[source] std::num::ParseIntError),
    #[error("a prefix of {prefix} is longer than the {bits} bits of {network}")]
    TooLong { network: IpAddr, prefix: u8, bits: u8 },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(address.parse().map_err(|e| CidrError::Address(address.to_owned(), e))?);
        let bits = bits(network);
        let prefix = match prefix {
            Some(p) => p.parse().map_err(|e| CidrError::Prefix(p.to_owned(), e))?,
            None => bits,
        };
        if prefix > bits {
            return Err(CidrError::TooLong { network, prefix, bits });
        }
        Ok(Cidr { network: mask(network, prefix), prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        bits(address) == bits(self.network) && mask(address, self.prefix) == self.network
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        TrustedProxies(blocks)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client a request came from, when it came through `peer`, a trusted proxy: walking
    /// `X-Forwarded-For` from the right, the first address that is not a trusted proxy. The
    /// entries left of it are whatever the client chose to send, so they are never read: a
    /// client cannot borrow someone else's address by writing it there. Where the walk cannot
    /// go on (no header, an entry that is not an address, every entry a proxy), the last
    /// trusted hop is the answer: every such request then shares that one address's cap,
    /// rather than escaping the cap by sending nonsense.
    pub fn client_behind(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        // Several X-Forwarded-For fields are one list, in order (RFC 9110, 5.3).
        for field in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            let Ok(list) = field.to_str() else { return client };
            for entry in list.rsplit(',') {
                if !self.contains(client) {
                    return client;
                }
                match hop(entry.trim()) {
                    Some(address) => client = address,
                    None => return client,
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port, as some proxies
/// (Azure's) write it.
fn hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

/// What the per-address cap counts: an IPv4 address, or an IPv6 /64. An IPv6 subscriber gets
/// at least a /64 from its provider (RFC 6177), so counting single IPv6 addresses would give
/// one client 2^64 caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(address: IpAddr) -> Self {
        AddressKey(mask(canonical(address), 64))
    }
}

impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`: it is the IPv4
/// address, for the cap and for matching proxies alike.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn bits(address: IpAddr) -> u8 {
    if address.is_ipv4() {
        32
    } else {
        128
    }
}

/// `address` with everything past the first `prefix` bits cleared (IPv4 is never masked past
/// its 32 bits).
fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|b| b.parse().unwrap()).collect())
    }

    fn forwarded(fields: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_str(field).unwrap());
        }
        headers
    }

    #[test]
    fn blocks_parse_and_match() {
        let block: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(block.to_string(), "10.0.0.0/8");
        assert!(block.contains(ip("10.200.0.1")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(block.contains(ip("::ffff:10.9.9.9")), "an IPv4-mapped peer is its IPv4 address");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.9")));
        assert!(matches!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::TooLong { .. })));
        assert!(matches!("proxy.local".parse::<Cidr>(), Err(CidrError::Address(..))));
        assert!(matches!("10.0.0.0/x".parse::<Cidr>(), Err(CidrError::Prefix(..))));
    }

    #[test]
    fn the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let client = |fields: &[&str]| trusted.client_behind(peer, &forwarded(fields));
        assert_eq!(client(&["203.0.113.7"]), ip("203.0.113.7"));
        // What the client wrote itself (left of what our proxies appended) is never read.
        assert_eq!(client(&["198.51.100.1, 203.0.113.7"]), ip("203.0.113.7"));
        // A chain of our own proxies is walked through.
        assert_eq!(client(&["198.51.100.1, 203.0.113.7, 10.0.0.2"]), ip("203.0.113.7"));
        // Several fields are one list.
        assert_eq!(client(&["198.51.100.1", "203.0.113.7, 10.0.0.2"]), ip("203.0.113.7"));
        assert_eq!(client(&["203.0.113.7:4711"]), ip("203.0.113.7"));
        assert_eq!(client(&["[2001:db8::1]:4711"]), ip("2001:db8::1"));
        // Nothing usable: the last trusted hop.
        assert_eq!(client(&[]), peer);
        assert_eq!(client(&["not-an-address"]), peer);
        assert_eq!(client(&["203.0.113.7, garbage, 10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(client(&["10.0.0.3"]), ip("10.0.0.3"));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(AddressKey::of(ip("2001:db8:1:2:aaaa::1")), AddressKey::of(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(AddressKey::of(ip("2001:db8:1:2::1")), AddressKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(AddressKey::of(ip("::ffff:192.0.2.1")), AddressKey::of(ip("192.0.2.1")));
        assert_ne!(AddressKey::of(ip("192.0.2.1")), AddressKey::of(ip("192.0.2.2")));
        assert_eq!(AddressKey::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
    }
}
