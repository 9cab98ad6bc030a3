//! Which URLs a partner may subscribe, and which addresses a delivery may reach.
//!
//! A webhook URL is chosen by a partner and requested from inside Voltplan's network, so a URL
//! that points into that network would let a partner probe or call internal services (server-side
//! request forgery, the spec's "Server side request forgery (SSRF)" section). Two checks stop it:
//!
//! 1. [`UrlPolicy::check`] when the URL is written and again before every attempt: https only, no
//!    credentials or fragments, and an IP-literal host must be a public address.
//! 2. [`PublicOnlyResolver`], the HTTP client's DNS resolver: a host name is resolved and only its
//!    public addresses are handed to the connector, so a name that points (or is re-pointed, DNS
//!    rebinding) at 10.0.0.1 or 127.0.0.1 is refused at the moment of connecting. There is no gap
//!    between the check and the connection, because the connection uses exactly the checked
//!    addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The longest URL accepted, in characters: browsers' and proxies' common limit, and ample for a
/// webhook endpoint.
pub const MAX_URL_CHARS: usize = 2048;

/// What webhook URLs may look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Operators' switch for development and tests: allows plain `http` to a loopback host
    /// (`localhost`, 127.0.0.0/8, `[::1]`) and lets https reach loopback addresses. Never on in
    /// production: anyone who can subscribe a URL could then reach services on the host.
    pub allow_insecure_loopback: bool,
}

/// Why a webhook URL is refused. The `Display` text is written for a partner reading a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("The URL is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("Only absolute URLs are accepted, such as https://example.com/webhooks")]
    NotAbsolute,
    #[error("This is not a valid URL: {0}")]
    Invalid(String),
    #[error("Only https URLs are accepted")]
    NotHttps,
    #[error("The URL has no host")]
    NoHost,
    /// Credentials in a URL end up in logs and in the subscription's listing; webhooks are
    /// authenticated by their signature instead.
    #[error("The URL may not contain a user name or password")]
    UserInfo,
    #[error("The URL may not contain a fragment (#…)")]
    Fragment,
    #[error("The URL's address is not a public internet address")]
    NotPublicAddress,
}

impl UrlPolicy {
    /// Checks a webhook URL and returns it parsed. Host names are not resolved here (that happens
    /// at every connection, see [`PublicOnlyResolver`]); IP-literal hosts are judged here, because
    /// the HTTP client connects to them without asking the resolver.
    pub fn check(&self, url: &str) -> Result<Url, UrlRefusal> {
        if url.chars().count() > MAX_URL_CHARS {
            return Err(UrlRefusal::TooLong);
        }
        let parsed = Url::parse(url).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => UrlRefusal::NotAbsolute,
            other => UrlRefusal::Invalid(other.to_string()),
        })?;
        let loopback_host = parsed.host().is_some_and(|host| is_loopback_host(&host));
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_insecure_loopback && loopback_host => {}
            _ => return Err(UrlRefusal::NotHttps),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefusal::UserInfo);
        }
        if parsed.fragment().is_some() {
            return Err(UrlRefusal::Fragment);
        }
        let ip = match parsed.host() {
            None => return Err(UrlRefusal::NoHost),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(ip) = ip
            && !address_allowed(ip, self.allow_insecure_loopback)
        {
            return Err(UrlRefusal::NotPublicAddress);
        }
        Ok(parsed)
    }
}

/// `localhost` or a loopback IP literal: the only hosts plain http may reach, and only with
/// [`UrlPolicy::allow_insecure_loopback`].
fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            name.eq_ignore_ascii_case("localhost")
        }
        Host::Ipv4(v4) => v4.is_loopback(),
        Host::Ipv6(v6) => IpAddr::V6(*v6).to_canonical().is_loopback(),
    }
}

/// Whether a delivery may connect to `ip`: a public address, or a loopback one when allowed.
fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public_address(ip) || (allow_loopback && ip.to_canonical().is_loopback())
}

/// Whether `ip` is an address on the public internet that a webhook may be sent to.
///
/// Refused: this host and its networks (unspecified, 0.0.0.0/8, loopback), private networks
/// (10/8, 172.16/12, 192.168/16, fc00::/7), carrier-grade NAT (100.64/10), link-local
/// (169.254/16 — cloud metadata services live there — and fe80::/10), multicast, broadcast and
/// 240/4, documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20),
/// benchmarking (198.18/15), IETF protocol assignments (192.0.0/24, 2001::/23, which holds
/// Teredo), the 6to4 relay anycast 192.88.99/24 and 6to4 itself (2002::/16): tunnels whose far end
/// cannot be judged are refused. IPv6 is accepted only inside global unicast 2000::/3 (everything
/// allocated to networks today), except that IPv4-mapped (::ffff:0:0/96), IPv4-compatible
/// (::/96) and NAT64 (64:ff9b::/96) addresses are judged by the IPv4 address they carry, since
/// that is where the packets may end up.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let net = Ipv6Addr::new(
        net[0], net[1], net[2], net[3], net[4], net[5], net[6], net[7],
    );
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT (shared address space)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local (cloud metadata at 169.254.169.254)
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
    ];
    !REFUSED.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let embedded_v4 = Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    // IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d reach the IPv4 address they carry.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return is_public_v4(embedded_v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 fall in 0.0.0.0/8 and are refused.
    if in_v6(ip, [0; 8], 96) {
        return is_public_v4(embedded_v4);
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        // Not global unicast: ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, discard
        // 100::/64, local-use NAT64 64:ff9b:1::/48, site-local fec0::/10 and the rest.
        return false;
    }
    const REFUSED: &[([u16; 8], u32)] = &[
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments, Teredo 2001::/32
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
    ];
    !REFUSED.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

/// The HTTP client's DNS resolver: resolves with the system's resolver (tokio's `lookup_host`,
/// getaddrinfo) and keeps only the addresses a delivery may reach, so a URL whose host name
/// points into a private network is refused after resolution, at every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicOnlyResolver {
    /// Keep loopback addresses too (with [`UrlPolicy::allow_insecure_loopback`]).
    pub allow_loopback: bool,
}

/// A host name that resolved to no address a delivery may reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} resolves to no public internet address ({addresses}); webhooks are not sent to private, loopback or link-local networks"
)]
pub struct NoPublicAddress {
    pub host: String,
    /// The addresses found, for the partner to see why (none when the name has no address).
    pub addresses: String,
}

impl PublicOnlyResolver {
    /// The addresses of `host` a delivery may reach, in the resolver's order, or why there are
    /// none. Separate from the lookup so that the rule is tested without DNS.
    pub fn filter(
        &self,
        host: &str,
        resolved: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, NoPublicAddress> {
        let resolved: Vec<SocketAddr> = resolved.into_iter().collect();
        let kept: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|addr| address_allowed(addr.ip(), self.allow_loopback))
            .collect();
        if kept.is_empty() {
            let addresses = if resolved.is_empty() {
                "none".to_owned()
            } else {
                resolved
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(NoPublicAddress {
                host: host.to_owned(),
                addresses,
            });
        }
        Ok(kept)
    }
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: the connector puts the URL's port (or the scheme's) in its place.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = this.filter(&host, resolved)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_insecure_loopback: false,
    };
    const LOOPBACK: UrlPolicy = UrlPolicy {
        allow_insecure_loopback: true,
    };

    #[test]
    fn accepted_urls() {
        for url in [
            "https://example.com/webhooks",
            "https://example.com:8443/hooks/voltplan?partner=7",
            "https://EXAMPLE.com",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://[::ffff:8.8.8.8]/hook",
            "https://localhost/hook", // a name: the resolver judges it (and refuses it)
            "https://intranet.local/hook", // the same
        ] {
            assert!(STRICT.check(url).is_ok(), "{url} should be accepted");
            assert!(
                LOOPBACK.check(url).is_ok(),
                "{url} should be accepted with loopback"
            );
        }
        let checked = STRICT.check("https://example.com:8443/a?b=c").unwrap();
        assert_eq!(checked.port(), Some(8443));
        assert_eq!(checked.query(), Some("b=c"));
    }

    #[test]
    fn refused_urls() {
        use UrlRefusal::*;
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        let cases: &[(&str, UrlRefusal)] = &[
            (&long, TooLong),
            ("/webhooks", NotAbsolute),
            ("example.com/webhooks", NotAbsolute),
            ("http://example.com/webhooks", NotHttps),
            ("ftp://example.com/", NotHttps),
            ("file:///etc/passwd", NotHttps),
            ("javascript:alert(1)", NotHttps),
            ("http://localhost:8080/", NotHttps),
            ("http://127.0.0.1/", NotHttps),
            ("https://user:pass@example.com/", UserInfo),
            ("https://user@example.com/", UserInfo),
            ("https://:pass@example.com/", UserInfo),
            ("https://example.com/#section", Fragment),
            ("https://example.com/#", Fragment),
            ("https://127.0.0.1/", NotPublicAddress),
            ("https://127.1.2.3:8443/", NotPublicAddress),
            ("https://2130706433/", NotPublicAddress), // 127.0.0.1 written as a number
            ("https://0x7f.1/", NotPublicAddress),     // 127.0.0.1 in hexadecimal
            ("https://0.0.0.0/", NotPublicAddress),
            ("https://10.0.0.1/", NotPublicAddress),
            ("https://172.16.5.4/", NotPublicAddress),
            ("https://192.168.1.1/", NotPublicAddress),
            (
                "https://169.254.169.254/latest/meta-data/",
                NotPublicAddress,
            ),
            ("https://100.64.0.1/", NotPublicAddress),
            ("https://[::1]/", NotPublicAddress),
            ("https://[::]/", NotPublicAddress),
            ("https://[fe80::1]/", NotPublicAddress),
            ("https://[fd00::1]/", NotPublicAddress),
            ("https://[::ffff:127.0.0.1]/", NotPublicAddress),
            ("https://[::ffff:10.0.0.1]/", NotPublicAddress),
            ("https://[64:ff9b::a9fe:a9fe]/", NotPublicAddress), // NAT64 of 169.254.169.254
            ("https://[2002:7f00:1::]/", NotPublicAddress),
        ];
        for (url, refusal) in cases {
            assert_eq!(STRICT.check(url).as_ref().err(), Some(refusal), "{url}");
        }
        assert!(matches!(
            STRICT.check("https://exa mple.com/"),
            Err(Invalid(_))
        ));
        assert!(matches!(STRICT.check("https://[::1/"), Err(Invalid(_))));
        // The limit counts characters: exactly 2048 is fine.
        let exact = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - 20));
        assert_eq!(exact.chars().count(), MAX_URL_CHARS);
        assert!(STRICT.check(&exact).is_ok());
    }

    #[test]
    fn the_operator_flag_allows_loopback_and_nothing_else() {
        for url in [
            "http://localhost:8080/hook",
            "http://LOCALHOST./hook",
            "http://127.0.0.1:9000/",
            "http://127.0.0.53/",
            "http://[::1]:9000/",
            "https://127.0.0.1:9000/",
            "https://[::1]/",
        ] {
            assert!(LOOPBACK.check(url).is_ok(), "{url}");
        }
        use UrlRefusal::*;
        for (url, refusal) in [
            ("http://example.com/", NotHttps),
            ("http://10.0.0.1/", NotHttps),
            ("http://localhost.example.com/", NotHttps),
            ("https://10.0.0.1/", NotPublicAddress),
            ("https://169.254.169.254/", NotPublicAddress),
            ("http://user:pw@localhost/", UserInfo),
        ] {
            assert_eq!(LOOPBACK.check(url), Err(refusal), "{url}");
        }
    }

    #[test]
    fn refusals_read_well() {
        assert_eq!(
            UrlRefusal::NotHttps.to_string(),
            "Only https URLs are accepted"
        );
        assert_eq!(
            UrlRefusal::NotPublicAddress.to_string(),
            "The URL's address is not a public internet address"
        );
        assert_eq!(
            UrlRefusal::TooLong.to_string(),
            "The URL is longer than 2048 characters"
        );
    }

    #[test]
    fn address_table() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
        ];
        for ip in public {
            assert!(
                is_public_address(ip.parse().unwrap()),
                "{ip} should be public"
            );
        }
        let refused = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "100::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "ff0e::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1ff::1",
            "2001:db8::1",
            "2002:c000:204::1",
            "3fff::1",
            "4000::1",
        ];
        for ip in refused {
            assert!(
                !is_public_address(ip.parse().unwrap()),
                "{ip} should be refused"
            );
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn the_resolver_keeps_only_allowed_addresses() {
        let strict = PublicOnlyResolver {
            allow_loopback: false,
        };
        let loopback = PublicOnlyResolver {
            allow_loopback: true,
        };
        let mixed = addrs(&["10.0.0.1", "8.8.8.8", "::1", "2606:4700:4700::1111"]);
        assert_eq!(
            strict.filter("mixed.example", mixed.clone()).unwrap(),
            addrs(&["8.8.8.8", "2606:4700:4700::1111"])
        );
        assert_eq!(
            loopback.filter("mixed.example", mixed).unwrap(),
            addrs(&["8.8.8.8", "::1", "2606:4700:4700::1111"])
        );
        let err = strict
            .filter("internal.example", addrs(&["10.0.0.1"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "internal.example resolves to no public internet address (10.0.0.1); webhooks are not sent to private, loopback or link-local networks"
        );
        assert!(
            loopback
                .filter("internal.example", addrs(&["10.0.0.1", "169.254.169.254"]))
                .is_err()
        );
        assert_eq!(
            strict.filter("none.example", []).unwrap_err().addresses,
            "none"
        );
    }

    #[tokio::test]
    async fn localhost_is_refused_after_resolution() {
        let name: Name = "localhost".parse().unwrap();
        let err = match (PublicOnlyResolver {
            allow_loopback: false,
        })
        .resolve(name)
        .await
        {
            Ok(found) => panic!("localhost resolved to {:?}", found.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(
            err.to_string()
                .starts_with("localhost resolves to no public internet address"),
            "{err}"
        );
        let name: Name = "localhost".parse().unwrap();
        let found: Vec<SocketAddr> = (PublicOnlyResolver {
            allow_loopback: true,
        })
        .resolve(name)
        .await
        .unwrap()
        .collect();
        assert!(!found.is_empty());
        assert!(
            found.iter().all(|a| a.ip().is_loopback() && a.port() == 0),
            "{found:?}"
        );
    }
}
