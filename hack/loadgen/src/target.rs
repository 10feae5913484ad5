//! Where the load goes, and the address guard that keeps it local.
//!
//! The workplace rule is that a development tool never dials anything but loopback and the
//! local cluster's pod and service networks. Every address this tool is about to connect to —
//! the `--url` host, a Service's ClusterIP, a pod IP found in an EndpointSlice, the API server
//! of the kubeconfig — passes [`AddressGuard::check`] first. Host names are not resolved
//! (except `localhost`), so the address that is checked is the address that is dialed.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
};

/// The pod (10.244.0.0/16) and service (10.96.0.0/16) networks of the local cluster.
pub const DEFAULT_ALLOWED_CIDRS: [&str; 2] = ["10.244.0.0/16", "10.96.0.0/16"];

/// Why a target is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("invalid CIDR {0:?} (want ADDRESS/PREFIX, e.g. 10.96.0.0/16)")]
    Cidr(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "refusing to dial {0}: only loopback and the allowed CIDRs ({1}) may be reached \
         (see --allow-cidr)"
    )]
    NotAllowed(IpAddr, String),
}

/// An IPv4 or IPv6 network, `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Cidr, TargetError> {
        let bad = || TargetError::Cidr(s.to_string());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Loopback plus a list of allowed networks.
#[derive(Clone, Debug)]
pub struct AddressGuard {
    allowed: Vec<Cidr>,
}

impl AddressGuard {
    pub fn new(allowed: Vec<Cidr>) -> AddressGuard {
        AddressGuard { allowed }
    }

    /// Ok when `ip` is loopback (127.0.0.0/8, ::1) or inside an allowed network.
    pub fn check(&self, ip: IpAddr) -> Result<(), TargetError> {
        let ip = ip.to_canonical();
        if ip.is_loopback() || self.allowed.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        let list = self
            .allowed
            .iter()
            .map(Cidr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(TargetError::NotAllowed(ip, list))
    }

    /// Checks a URL's host (an IP literal or `localhost`) and returns the address dialed.
    pub fn check_url(&self, url: &str) -> Result<SocketAddr, TargetError> {
        let base = BaseUrl::parse(url)?;
        self.check(base.addr.ip())?;
        Ok(base.addr)
    }
}

/// An `http://ADDRESS:PORT[/prefix]` base URL whose host is an IP literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    pub https: bool,
    pub addr: SocketAddr,
    /// Path before `/v2/…`, without a trailing slash (usually empty).
    pub prefix: String,
}

impl BaseUrl {
    /// Parses a base URL. Only `http` and `https`; the host must be an IP address or
    /// `localhost` (names are never resolved); the port defaults to the scheme's.
    pub fn parse(url: &str) -> Result<BaseUrl, TargetError> {
        let err = |reason: &str| TargetError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| err(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(err("the scheme must be http or https"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(err("a base URL has no query or fragment"));
        }
        let host = parsed.host_str().ok_or_else(|| err("no host"))?;
        let ip = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            literal.parse().map_err(|_| {
                err("the host must be an IP address or localhost (names are not resolved)")
            })?
        };
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| err("no port"))?;
        Ok(BaseUrl {
            https: parsed.scheme() == "https",
            addr: SocketAddr::new(ip, port),
            prefix: parsed.path().trim_end_matches('/').to_string(),
        })
    }

    /// `http://ADDRESS:PORT` (a Service or a pod).
    pub fn http(addr: SocketAddr) -> BaseUrl {
        BaseUrl {
            https: false,
            addr,
            prefix: String::new(),
        }
    }

    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(cidrs: &[&str]) -> AddressGuard {
        AddressGuard::new(cidrs.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn cidr_parsing() {
        for (text, ok) in [
            ("10.96.0.0/16", true),
            ("10.96.1.2/16", true),
            ("0.0.0.0/0", true),
            ("fd00::/8", true),
            ("10.96.0.0/33", false),
            ("fd00::/129", false),
            ("10.96.0.0", false),
            ("10.96.0/16", false),
            ("ten/8", false),
            ("10.96.0.0/x", false),
        ] {
            assert_eq!(text.parse::<Cidr>().is_ok(), ok, "{text}");
        }
    }

    #[test]
    fn guard_allows_loopback_and_listed_networks_only() {
        let g = guard(&DEFAULT_ALLOWED_CIDRS);
        for (ip, ok) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.96.0.1", true),
            ("10.96.255.255", true),
            ("10.244.128.7", true),
            ("10.244.3.4", true),
            ("::ffff:10.96.0.10", true),
            ("10.97.0.1", false),
            ("10.245.0.1", false),
            ("10.0.0.1", false),
            ("192.168.1.1", false),
            ("8.8.8.8", false),
            ("0.0.0.0", false),
            ("169.254.169.254", false),
            ("fd00::1", false),
            ("2001:db8::1", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(g.check(ip).is_ok(), ok, "{ip}");
        }
    }

    #[test]
    fn guard_edges_of_prefixes() {
        for (cidr, ip, ok) in [
            ("0.0.0.0/0", "8.8.8.8", true),
            ("10.1.2.3/32", "10.1.2.3", true),
            ("10.1.2.3/32", "10.1.2.4", false),
            ("10.244.128.0/24", "10.244.128.255", true),
            ("10.244.128.0/24", "10.244.129.0", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe00::1", false),
            ("fd00::/8", "10.0.0.1", false),
        ] {
            let g = guard(&[cidr]);
            assert_eq!(g.check(ip.parse().unwrap()).is_ok(), ok, "{cidr} {ip}");
        }
    }

    #[test]
    fn empty_guard_still_allows_loopback() {
        let g = guard(&[]);
        assert!(g.check("127.0.0.1".parse().unwrap()).is_ok());
        let err = g.check("10.96.0.1".parse().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("refusing to dial 10.96.0.1"),
            "{err}"
        );
    }

    #[test]
    fn base_urls() {
        for (url, want) in [
            ("http://127.0.0.1:8080", Some((false, "127.0.0.1:8080", ""))),
            (
                "http://127.0.0.1:8080/",
                Some((false, "127.0.0.1:8080", "")),
            ),
            ("http://10.96.3.4", Some((false, "10.96.3.4:80", ""))),
            ("https://10.96.3.4", Some((true, "10.96.3.4:443", ""))),
            (
                "http://localhost:9000/api/",
                Some((false, "127.0.0.1:9000", "/api")),
            ),
            ("http://[::1]:81", Some((false, "[::1]:81", ""))),
            ("http://example.com:80", None),
            ("http://svc.default.svc:80", None),
            ("ftp://127.0.0.1", None),
            ("http://127.0.0.1:80/?q=1", None),
            ("127.0.0.1:8080", None),
            ("not a url", None),
        ] {
            let got = BaseUrl::parse(url).ok();
            let want = want.map(|(https, addr, prefix)| BaseUrl {
                https,
                addr: addr.parse().unwrap(),
                prefix: prefix.to_string(),
            });
            assert_eq!(got, want, "{url}");
        }
    }

    #[test]
    fn joins_paths() {
        let base = BaseUrl::parse("http://localhost:9000/api/").unwrap();
        assert_eq!(
            base.join("/v2/models/iris"),
            "http://127.0.0.1:9000/api/v2/models/iris"
        );
        assert_eq!(base.to_string(), "http://127.0.0.1:9000/api");
    }

    #[test]
    fn check_url_refuses_outside_hosts() {
        let g = guard(&DEFAULT_ALLOWED_CIDRS);
        assert!(g.check_url("https://127.0.0.1:6443").is_ok());
        assert!(matches!(
            g.check_url("https://192.168.49.2:6443"),
            Err(TargetError::NotAllowed(..))
        ));
        assert!(matches!(
            g.check_url("https://kubernetes.example:6443"),
            Err(TargetError::Url { .. })
        ));
    }
}
