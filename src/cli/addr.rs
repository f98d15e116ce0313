//! Endpoint addresses as the original tool takes them: `host:serv`, `:serv` or `serv`.
//!
//! The host defaults to `localhost`; it may be a name, an IPv4 address or a bracketed
//! IPv6 address (`[::1]:8080`). The service is a port number or a service name from
//! the system's services database (`http`), so resolution goes through
//! `getaddrinfo(3)` like the original rather than through `ToSocketAddrs`, which
//! knows no service names.
//!
//! `-A` and `-B` also take a scheme, as socat's addresses do: `tls:host:port` for a
//! TLS side, `unix:PATH` or `unix:@name` (the abstract namespace) for a UNIX stream
//! socket, and `tcp:` for the plain form spelled out (see `Address`).

use std::fmt;
use std::net::SocketAddr;

use dns_lookup::AddrInfoHints;

pub use crate::relay::unix::UnixPath;

const DEFAULT_HOST: &str = "localhost";

/// An address as the user typed it, split but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub serv: String,
}

impl Endpoint {
    /// Splits `host:serv`, `:serv` or `serv`, checking what can be checked without a
    /// lookup: a service is present, and a numeric one is a valid port.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let (host, serv) = match text.rfind(':') {
            Some(colon) => (&text[..colon], &text[colon + 1..]),
            None => ("", text),
        };
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or_else(|| format!("'{text}': missing ']' after the IPv6 address"))?,
            None if host.contains(':') => {
                return Err(format!(
                    "'{text}': write an IPv6 address in brackets, as in [::1]:8080"
                ));
            }
            None => host,
        };
        if serv.is_empty() {
            return Err(format!("'{text}': missing port or service name"));
        }
        // A signed number is a port out of range, not a service name to look up.
        let unsigned = serv.strip_prefix(['-', '+']).unwrap_or(serv);
        let numeric = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
        if numeric && (unsigned.len() != serv.len() || serv.parse::<u16>().is_err()) {
            return Err(format!("'{text}': port {serv} is out of range (0-65535)"));
        }
        if serv
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!("'{text}': invalid service name"));
        }
        let host = if host.is_empty() { DEFAULT_HOST } else { host };
        Ok(Endpoint {
            host: host.to_string(),
            serv: serv.to_string(),
        })
    }

    /// The port number, when the service was given as a number.
    pub fn numeric_port(&self) -> Option<u16> {
        self.serv.parse().ok()
    }

    /// Every TCP address `host:serv` resolves to, in the resolver's order.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let hints = AddrInfoHints {
            socktype: libc::SOCK_STREAM,
            ..AddrInfoHints::default()
        };
        let found = dns_lookup::getaddrinfo(Some(&self.host), Some(&self.serv), Some(hints))
            .map_err(|e| format!("cannot resolve {self}: {}", gai_message(&e)))?;
        let addrs: Vec<SocketAddr> = found.filter_map(Result::ok).map(|ai| ai.sockaddr).collect();
        if addrs.is_empty() {
            return Err(format!("cannot resolve {self}: no TCP address"));
        }
        Ok(addrs)
    }
}

/// `gai_strerror(3)` text: what the resolver said, without Rust's error decoration.
fn gai_message(error: &dns_lookup::LookupError) -> String {
    let text = error.to_string();
    let text = text.trim_start_matches("failed to lookup address information: ");
    crate::error::strip_os_suffix(text).to_string()
}

impl fmt::Display for Endpoint {
    /// As the original prints it: `host:serv`, brackets around an IPv6 host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.serv)
        } else {
            write!(f, "{}:{}", self.host, self.serv)
        }
    }
}

/// What `-A` or `-B` names: a TCP endpoint, plain or with TLS, or a UNIX socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(Endpoint),
    Tls(Endpoint),
    Unix(UnixPath),
}

impl Address {
    /// `unix:PATH`, `unix:@name`, `tls:host:serv`, or `[tcp:]host:serv`.
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(name) = text.strip_prefix("unix:") {
            return UnixPath::parse(name).map(Address::Unix);
        }
        if let Some(rest) = text.strip_prefix("tls:") {
            return Endpoint::parse(rest).map(Address::Tls);
        }
        Endpoint::parse(text.strip_prefix("tcp:").unwrap_or(text)).map(Address::Tcp)
    }

    /// The TCP endpoint, for a TCP or TLS side.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        match self {
            Address::Tcp(endpoint) | Address::Tls(endpoint) => Some(endpoint),
            Address::Unix(_) => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Address::Tls(_))
    }

    /// As `Endpoint::as_listening`, keeping the scheme.
    pub fn as_listening(&self, listener: Option<&socket2::Socket>) -> Address {
        match self {
            Address::Tcp(endpoint) => Address::Tcp(endpoint.as_listening(listener)),
            Address::Tls(endpoint) => Address::Tls(endpoint.as_listening(listener)),
            Address::Unix(_) => self.clone(),
        }
    }
}

impl fmt::Display for Address {
    /// The plain form as the original prints it; the others with their scheme.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(endpoint) => endpoint.fmt(f),
            Address::Tls(endpoint) => write!(f, "tls:{endpoint}"),
            Address::Unix(path) => path.fmt(f),
        }
    }
}

impl Endpoint {
    /// As typed, but with the port the listener really got when it was 0; as typed
    /// when there is no listener (listening failed).
    pub fn as_listening(&self, listener: Option<&socket2::Socket>) -> Endpoint {
        let mut shown = self.clone();
        if shown.numeric_port() == Some(0) {
            if let Some(port) = listener.and_then(crate::relay::net::local_port) {
                shown.serv = port.to_string();
            }
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(host: &str, serv: &str) -> Endpoint {
        Endpoint {
            host: host.into(),
            serv: serv.into(),
        }
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:8080"),
            Ok(ep("127.0.0.1", "8080"))
        );
        assert_eq!(Endpoint::parse(":8080"), Ok(ep("localhost", "8080")));
        assert_eq!(Endpoint::parse("8080"), Ok(ep("localhost", "8080")));
        assert_eq!(
            Endpoint::parse("example.org:http"),
            Ok(ep("example.org", "http"))
        );
    }

    #[test]
    fn ipv6_in_brackets() {
        assert_eq!(Endpoint::parse("[::1]:8080"), Ok(ep("::1", "8080")));
        assert_eq!(
            Endpoint::parse("[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        assert!(Endpoint::parse("[::1:8080").is_err());
        assert!(Endpoint::parse("::1:8080").is_err());
    }

    #[test]
    fn bad_services_are_refused_before_any_lookup() {
        for bad in [
            "",
            "host:",
            ":",
            "1:70000",
            "99999999999999999999",
            "a:b c",
            "h:-1",
            "+80",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn resolves_numbers_and_service_names() {
        let addrs = ep("127.0.0.1", "8080").resolve().unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
        // `http` is in every services database; resolving it must not need a network.
        let addrs = ep("127.0.0.1", "http").resolve().unwrap();
        assert_eq!(addrs[0].port(), 80);
        let addrs = ep("::1", "8080").resolve().unwrap();
        assert_eq!(addrs, vec!["[::1]:8080".parse().unwrap()]);
    }

    #[test]
    fn schemes() {
        assert_eq!(
            Address::parse("tls::8443"),
            Ok(Address::Tls(ep("localhost", "8443")))
        );
        assert_eq!(
            Address::parse("tcp:127.0.0.1:80"),
            Ok(Address::Tcp(ep("127.0.0.1", "80")))
        );
        assert_eq!(
            Address::parse("unix:/tmp/s"),
            Ok(Address::Unix(UnixPath::File("/tmp/s".into())))
        );
        assert_eq!(
            Address::parse("unix:@bus").unwrap().to_string(),
            "unix:@bus"
        );
        assert_eq!(
            Address::parse("tls:[::1]:443").unwrap().to_string(),
            "tls:[::1]:443"
        );
        assert_eq!(
            Address::parse("8080").unwrap().to_string(),
            "localhost:8080"
        );
        let long = format!("unix:/{}", "x".repeat(107));
        assert!(Address::parse(&long).unwrap_err().contains("at most 107"));
        assert!(Address::parse("tls:").is_err());
    }

    #[test]
    fn an_unknown_service_is_an_error_with_the_resolver_text() {
        let err = ep("127.0.0.1", "no-such-service").resolve().unwrap_err();
        assert!(
            err.starts_with("cannot resolve 127.0.0.1:no-such-service: "),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}
