//! Where the built-in notifiers may connect. An endpoint's URL is written by
//! a tenant, so by default a delivery goes to public addresses only: never
//! to the worker's own machine, its private network or a cloud's metadata
//! service (`169.254.169.254`), whatever the URL names (an address, a name
//! that resolves there, a name that resolves there only on the second
//! lookup). An application that means to deliver inside its network (a
//! local receiver in development, an on-premise relay) turns this off with
//! [`NotificationDispatcher::allow_local_network`].
//!
//! [`NotificationDispatcher::allow_local_network`]: super::NotificationDispatcher::allow_local_network

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The error type a resolver answers.
type BoxError = Box<dyn std::error::Error + Send + Sync>;
use thiserror::Error;

use super::notifier::NotifyError;

/// A delivery refused because its destination is in the local network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{host} is an address of the local network ({addresses}); deliveries there are off \
     (an application that means it calls NotificationDispatcher::allow_local_network)"
)]
pub struct LocalNetworkRefused {
    /// The host the URL names.
    pub host: String,
    /// The addresses it stands for.
    pub addresses: String,
}

/// Whether `ip` is reachable only from inside a network, not a public
/// Internet address: unspecified, loopback, private (RFC 1918), shared
/// (100.64.0.0/10), link-local (cloud metadata services), IETF protocol
/// assignments (192.0.0.0/24), benchmarking, documentation, reserved,
/// broadcast and multicast; for IPv6 also unique-local, link-local,
/// site-local, documentation (2001:db8::/32, 3fff::/20), Teredo, local-use
/// NAT64, discard-only, benchmarking, ORCHID and SRv6 segment ids; an
/// IPv4 address carried in IPv6 (mapped, translated, compatible, NAT64,
/// 6to4) is judged as that IPv4 address.
pub fn is_local_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => local_v4(v4),
        IpAddr::V6(v6) => local_v6(v6),
    }
}

fn local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn local_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return local_v4(v4);
    }
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-compatible (::a.b.c.d, deprecated), IPv4-translated
    // (::ffff:0:a.b.c.d) and NAT64 (64:ff9b::/96): the IPv4 address decides.
    if s[..6] == [0; 6] || s[..6] == [0, 0, 0, 0, 0xffff, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        return ip.is_unspecified() || ip.is_loopback() || local_v4(v4(s[6], s[7]));
    }
    // 6to4 (2002::/16): the IPv4 address in the next 32 bits.
    if s[0] == 0x2002 {
        return local_v4(v4(s[1], s[2]));
    }
    ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] & 0xffc0) == 0xfec0
        || ip.is_multicast()
        // Documentation (2001:db8::/32).
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Teredo (2001::/32): an IPv4 address hidden inside.
        || (s[0] == 0x2001 && s[1] == 0)
        // Local-use NAT64 (64:ff9b:1::/48).
        || s[..3] == [0x64, 0xff9b, 1]
        // Discard-only (100::/64).
        || s[..4] == [0x100, 0, 0, 0]
        // Benchmarking (2001:2::/48), ORCHID (2001:10::/28) and ORCHIDv2
        // (2001:20::/28): not routed on the internet.
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0)
        || (s[0] == 0x2001 && matches!(s[1] & 0xfff0, 0x0010 | 0x0020))
        // Documentation (3fff::/20) and SRv6 segment ids (5f00::/16).
        || (s[0] == 0x3fff && s[1] & 0xf000 == 0)
        || s[0] == 0x5f00
}

/// A resolver that keeps the public addresses of a name and refuses a name
/// that has only local-network ones. Every connection is made to an
/// address it returned, so a name that resolves elsewhere between a check
/// and the connection (DNS rebinding) gains nothing.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (local, public): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| is_local_network(a.ip()));
            if public.is_empty() && !local.is_empty() {
                let addresses = local
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(LocalNetworkRefused { host, addresses }) as BoxError);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The environment variables a proxy is usually set in.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The HTTP client of a built-in notifier, and whether it may reach the
/// local network.
#[derive(Debug, Clone)]
pub(super) struct Http {
    /// The client, or why it could not be built.
    client: Result<reqwest::Client, String>,
    local_network: bool,
    timeout: Duration,
    /// The environment's proxy variable this client does not follow, told
    /// once, at the first delivery (`warned`).
    proxy_ignored: Option<&'static str>,
    warned: Arc<AtomicBool>,
}

impl Http {
    /// A client with `timeout` per attempt, no redirects (a notification
    /// goes to the configured URL only) and, unless `local_network`, public
    /// destinations only; environment proxies are then not used either (the
    /// proxy, not this process, would pick the address).
    pub(super) fn new(timeout: Duration, local_network: bool) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let mut proxy_ignored = None;
        if !local_network {
            builder = builder.no_proxy().dns_resolver(Arc::new(PublicOnly));
            proxy_ignored = PROXY_VARIABLES
                .into_iter()
                .find(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
        }
        Http {
            client: builder.build().map_err(|e| e.to_string()),
            local_network,
            timeout,
            proxy_ignored,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same client with the local network allowed.
    pub(super) fn allowing_local_network(&self) -> Self {
        Http::new(self.timeout, true)
    }

    /// A POST to `url`, refused at once when the URL names a local-network
    /// address (names are checked by the resolver, at connection).
    pub(super) fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, NotifyError> {
        let client = self.client.as_ref().map_err(|e| {
            NotifyError::Misconfigured(format!("the HTTP client could not be built: {e}"))
        })?;
        if let Some(variable) = self.proxy_ignored
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(%variable,
                "notifications go direct, not through the proxy set in the environment: \
                 public addresses only are checked here; where the proxy is the only way \
                 out, allow the local network and let the proxy filter");
        }
        if !self.local_network
            && let Ok(parsed) = reqwest::Url::parse(url)
            && let Some(host) = parsed.host_str()
            && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse()
            && is_local_network(ip)
        {
            return Err(NotifyError::Misconfigured(
                LocalNetworkRefused {
                    host: host.to_owned(),
                    addresses: ip.to_string(),
                }
                .to_string(),
            ));
        }
        Ok(client.post(url))
    }
}

/// The [`LocalNetworkRefused`] in `error`'s chain of sources, if any.
pub(super) fn refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a LocalNetworkRefused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<LocalNetworkRefused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_network_addresses_are_told_from_public_ones() {
        let local = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "2001:1f:ffff::1",
            "2001:20::1",
            "2001:2f::1",
            "3fff::1",
            "3fff:fff::1",
            "5f00::1",
        ];
        for ip in local {
            assert!(is_local_network(ip.parse().unwrap()), "{ip} is local");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "203.0.114.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2606:4700:4700::1111",
            "2a00:1450:4007::200e",
            "2002:808:808::1",
            "::ffff:0:808:808",
            "2001:2:1::1",
            "2001:30::1",
            "2001:4860:4860::8888",
            "3fff:1000::1",
            "5f01::1",
        ];
        for ip in public {
            assert!(!is_local_network(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn a_url_naming_a_local_address_is_refused_before_any_connection() {
        let http = Http::new(Duration::from_secs(1), false);
        for url in [
            "https://127.0.0.1/hook",
            "https://[::1]:8443/hook",
            "https://169.254.169.254/latest/meta-data/",
            "http://2130706433/",
            "https://10.0.0.5/relay",
        ] {
            let Err(NotifyError::Misconfigured(why)) = http.post(url) else {
                panic!("{url} accepted");
            };
            assert!(why.contains("local network"), "{why}");
        }
        assert!(http.post("https://hooks.example.com/a").is_ok());
        let open = http.allowing_local_network();
        assert!(open.post("https://127.0.0.1/hook").is_ok());
    }
}
