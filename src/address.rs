//! Client addresses as the limits count them: an IPv4 address as it is
//! (also when mapped into IPv6), an IPv6 address by its /64, the block one
//! host usually holds whole, so that moving within it escapes nothing.

use std::net::IpAddr;

/// The key for `ip`; everything unparsable shares one (the unspecified address).
pub fn limit_key(ip: Option<&str>) -> IpAddr {
    let Some(ip) = ip.and_then(|s| s.parse::<IpAddr>().ok()) else {
        return IpAddr::from([0u8; 16]);
    };
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::from(bits.to_be_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64() {
        assert_eq!(
            limit_key(Some("2001:db8:1:2:aaaa::1")),
            limit_key(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(Some("2001:db8:1:2::1")),
            limit_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(
            limit_key(Some("::ffff:192.0.2.1")),
            limit_key(Some("192.0.2.1"))
        );
        assert_eq!(limit_key(Some("192.0.2.1")).to_string(), "192.0.2.1");
    }
}
