//! Which addresses `web_fetch` may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

use crate::tools::{ToolError, ToolErrorKind};

/// Resolves the URL's host and returns the address to connect to, refusing private,
/// loopback and link-local addresses unless the host is allowed.
pub(super) async fn vet(url: &Url, allowed: &[String]) -> Result<SocketAddr, ToolError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::new(
            ToolErrorKind::InvalidArguments,
            format!(
                "only http and https URLs can be fetched, not {}:",
                url.scheme()
            ),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| {
            ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("{url} has no host"),
            )
        })?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| {
            ToolError::new(
                ToolErrorKind::Network,
                format!("cannot resolve {host}: {e}"),
            )
        })?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| ToolError::new(ToolErrorKind::Network, format!("{host} has no address")))?;
    let host_allowed = allowed.iter().any(|a| a.eq_ignore_ascii_case(&host));
    for addr in &addrs {
        let ip = addr.ip();
        if is_internal(ip)
            && !host_allowed
            && !allowed.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip))
        {
            return Err(ToolError::new(
                ToolErrorKind::Denied,
                format!("{host} resolves to {ip}, a private or loopback address"),
            )
            .with_hint("web_fetch only reaches public addresses; an operator can allow a host in tools.web.allowPrivateHosts"));
        }
    }
    Ok(first)
}

/// Loopback, private, link-local (cloud metadata), CGNAT, unspecified, multicast,
/// broadcast, documentation and unique-local addresses, including IPv4-mapped IPv6.
pub(super) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return internal_v4(mapped);
            }
            internal_v6(v6)
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip
            .to_ipv4()
            .is_some_and(|v4| ip.segments()[..6] == [0; 6] && internal_v4(v4))
}
