//! Where webhook deliveries may go. A webhook URL is an admin's to set, but
//! the request leaves from inside the network: to the cloud's metadata
//! service (169.254.169.254), a database's port on loopback, or any host of
//! the private network it would be a way in (SSRF). So deliveries reach
//! public addresses only, and private or local ones only when listed in
//! `TESSERA_WEBHOOK_ALLOWED_NETWORKS`. The check is made on the addresses a
//! name resolves to, when the connection is made, so a name that resolves
//! to a public address when the webhook is saved and to a private one later
//! (DNS rebinding) is refused too.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A delivery refused for where it would have gone.
#[derive(Debug)]
pub struct Refused(pub IpAddr);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a private or local address: allow it with TESSERA_WEBHOOK_ALLOWED_NETWORKS",
            self.0
        )
    }
}

impl std::error::Error for Refused {}

/// The networks deliveries may reach beyond the public Internet.
#[derive(Clone, Debug, Default)]
pub struct Egress {
    allowed: Arc<[IpNet]>,
}

impl Egress {
    pub fn new(allowed: &[IpNet]) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// `Err` naming the address when a URL's host is an address not permitted
    /// (a name is checked when it is resolved: see [`Resolve`]).
    pub fn check_host(&self, host: Option<url::Host<&str>>) -> Result<(), Refused> {
        let ip = match host {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refused(ip))
        }
    }
}

/// The system's resolver, keeping only the addresses deliveries may reach.
impl Resolve for Egress {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs())
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??
                    .collect();
            let (kept, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| egress.permits(a.ip()));
            match (kept.is_empty(), refused.first()) {
                (true, Some(first)) => Err(Box::new(Refused(first.ip())) as _),
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}

/// The address a delivery was refused for, if that is why `e` failed.
pub fn refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

/// A globally routable unicast address: not loopback, private, link-local,
/// shared (carrier-grade NAT), reserved, multicast or otherwise special.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments (RFC 6890).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15, benchmarking (RFC 2544).
        || (a == 198 && (18..20).contains(&b))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) reaches the IPv4 address it
    // embeds, and 6to4 (2002::/16) the one after its prefix.
    let [s0, s1, s2, s3, s4, s5, ..] = ip.segments();
    if s0 == 0x64 && s1 == 0xff9b {
        // The well-known prefix embeds the address last; the local-use one
        // is the network's own.
        if [s2, s3, s4, s5] != [0; 4] {
            return false;
        }
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    if s0 == 0x2002 {
        let [_, _, a, b, c, d, ..] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // 2001:db8::/32, documentation; 2001::/32, Teredo (tunnels to IPv4).
        || (s0 == 0x2001 && (s1 == 0x0db8 || s1 == 0))
        // fec0::/10, the deprecated site-local range.
        || (s0 & 0xffc0) == 0xfec0
        // ::/96 and other IPv4-compatible or reserved forms below 2000::/3.
        || s0 < 0x2000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let none = Egress::default();
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(none.permits(ip(public)), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!none.permits(ip(private)), "{private}");
        }
        let allowed = Egress::new(&[
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.5/32".parse().unwrap(),
        ]);
        assert!(allowed.permits(ip("127.0.0.1")));
        assert!(allowed.permits(ip("::ffff:127.0.0.1")), "mapped");
        assert!(allowed.permits(ip("10.0.0.5")));
        assert!(!allowed.permits(ip("10.0.0.6")));
        assert!(!allowed.permits(ip("169.254.169.254")));
    }

    #[test]
    fn a_url_naming_an_address_is_checked_before_any_connection() {
        let none = Egress::default();
        let check = |u: &str| {
            let url = url::Url::parse(u).unwrap();
            none.check_host(url.host())
        };
        assert!(check("http://169.254.169.254/latest/meta-data").is_err());
        assert!(check("http://[::1]:8080/hook").is_err());
        assert!(
            check("http://2130706433/").is_err(),
            "127.0.0.1 as one number"
        );
        assert!(
            check("https://hooks.example.com/in").is_ok(),
            "names: when resolved"
        );
        let e = check("http://10.0.0.1/").unwrap_err();
        assert!(e.to_string().contains("TESSERA_WEBHOOK_ALLOWED_NETWORKS"));
    }
}
