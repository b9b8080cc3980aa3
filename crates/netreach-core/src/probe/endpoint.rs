//! Probe endpoints: a parsed URL, what a genuine answer looks like, and the default list.
//!
//! A [`ProbeUrl`] that exists has passed every check the request line depends on (scheme, host,
//! port, a path of printable ASCII), so building the `GET` request from it cannot inject
//! anything. The default endpoints are in one constant, [`DEFAULT_ENDPOINTS`].

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The `User-Agent` sent with every probe.
pub const USER_AGENT: &str = concat!("netreach/", env!("CARGO_PKG_VERSION"));

/// The endpoints probed when the user names none, in order of preference.
///
/// Modelled on the well-known public connectivity checks: an HTTP endpoint that answers
/// `204 No Content` (Android's `generate_204`) and one that answers `200` with a fixed body
/// (Windows' NCSI). Both are plain HTTP on purpose: a captive portal can only intercept and
/// redirect an unencrypted request; over HTTPS it would show up as a TLS failure instead.
///
/// These are third-party hosts: probing tells their operators that this machine is online.
/// Nothing in netreach contacts them unless probing was enabled by the user (the glue in the
/// `netreach` crate and the CLI enforce that; this crate only holds the list). Replace the list
/// here, or pass other endpoints at run time, to use your own.
pub const DEFAULT_ENDPOINTS: &[EndpointSpec] = &[
    EndpointSpec {
        url: "http://connectivitycheck.gstatic.com/generate_204",
        expect_status: 204,
        expect_body_prefix: None,
        expect_header: None,
    },
    EndpointSpec {
        url: "http://www.msftconnecttest.com/connecttest.txt",
        expect_status: 200,
        expect_body_prefix: Some("Microsoft Connect Test"),
        expect_header: None,
    },
];

/// A probe endpoint written as constants; see [`DEFAULT_ENDPOINTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The URL, `http://` or `https://`.
    pub url: &'static str,
    /// The status a genuine answer has.
    pub expect_status: u16,
    /// The start of a genuine answer's body, if the body is checked.
    pub expect_body_prefix: Option<&'static str>,
    /// A header (name, value) only the genuine endpoint sends.
    pub expect_header: Option<(&'static str, &'static str)>,
}

impl EndpointSpec {
    /// Parses the URL into a [`ProbeEndpoint`].
    pub fn to_endpoint(&self) -> Result<ProbeEndpoint, UrlError> {
        Ok(ProbeEndpoint {
            url: self.url.parse()?,
            expect_status: self.expect_status,
            expect_body_prefix: self.expect_body_prefix.map(str::to_owned),
            expect_header: self
                .expect_header
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        })
    }
}

/// Where to probe and how a genuine answer looks.
///
/// # Examples
///
/// ```
/// use netreach_core::probe::ProbeEndpoint;
///
/// let ep = ProbeEndpoint::body("http://198.18.0.1/ok.txt".parse()?, "OK")
///     .with_header("X-Check", "yes");
/// assert_eq!(ep.expect_status, 200);
/// # Ok::<(), netreach_core::probe::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ProbeEndpoint {
    /// The URL requested with `GET`.
    pub url: ProbeUrl,
    /// The status of a genuine answer: 204, or 200 together with a body prefix.
    pub expect_status: u16,
    /// The first bytes of a genuine answer's body; `None` does not look at the body.
    pub expect_body_prefix: Option<String>,
    /// A response header (name, value) proving the answer came from the real endpoint; the name
    /// is compared without regard to case, the value exactly.
    pub expect_header: Option<(String, String)>,
}

impl ProbeEndpoint {
    /// An endpoint that answers `204 No Content`.
    pub fn no_content(url: ProbeUrl) -> ProbeEndpoint {
        ProbeEndpoint {
            url,
            expect_status: 204,
            expect_body_prefix: None,
            expect_header: None,
        }
    }

    /// An endpoint that answers `200 OK` with a body starting with `prefix`.
    pub fn body(url: ProbeUrl, prefix: impl Into<String>) -> ProbeEndpoint {
        ProbeEndpoint {
            url,
            expect_status: 200,
            expect_body_prefix: Some(prefix.into()),
            expect_header: None,
        }
    }

    /// Also require a response header only the genuine endpoint sends.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.expect_header = Some((name.into(), value.into()));
        self
    }

    /// The [`DEFAULT_ENDPOINTS`], parsed.
    pub fn defaults() -> Vec<ProbeEndpoint> {
        // Every entry parses: the `defaults_parse` test checks the constant.
        DEFAULT_ENDPOINTS
            .iter()
            .filter_map(|spec| spec.to_endpoint().ok())
            .collect()
    }

    /// The bytes of the `GET` request: `Host`, `User-Agent`, `Connection: close`, nothing else.
    pub fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\
             Connection: close\r\n\r\n",
            self.url.path,
            self.url.authority()
        )
        .into_bytes()
    }
}

impl fmt::Display for ProbeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (expect {}", self.url, self.expect_status)?;
        if let Some(prefix) = &self.expect_body_prefix {
            write!(f, " {prefix:?}")?;
        }
        if let Some((name, value)) = &self.expect_header {
            write!(f, ", {name}: {value}")?;
        }
        f.write_str(")")
    }
}

/// A URL scheme a probe can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP, port 80 by default.
    Http,
    /// HTTP over TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// The default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lowercased; resolved by the glue for the probed family.
    Name(String),
    /// An address literal; no resolution, and only probed on its own family.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// An `http://` or `https://` URL that is safe to put in a request line.
///
/// # Examples
///
/// ```
/// use netreach_core::probe::{Host, ProbeUrl, Scheme};
///
/// let url: ProbeUrl = "http://[2001:db8::1]:8080/generate_204".parse()?;
/// assert_eq!(url.scheme(), Scheme::Http);
/// assert_eq!(url.port(), 8080);
/// assert_eq!(url.path(), "/generate_204");
/// assert!(matches!(url.host(), Host::Ip(_)));
/// # Ok::<(), netreach_core::probe::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeUrl {
    scheme: Scheme,
    host: Host,
    port: u16,
    path: String,
}

impl ProbeUrl {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path and query, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host` or `host:port` when the port is not the default: the `Host` header's value.
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Resolves a `Location` header value against this URL (absolute, scheme-relative,
    /// absolute-path or relative reference).
    pub fn resolve(&self, location: &str) -> String {
        let location = location.trim();
        let lower = location.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with("//") {
            format!("{}:{location}", self.scheme.as_str())
        } else if location.starts_with('/') {
            format!("{}://{}{location}", self.scheme.as_str(), self.authority())
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!(
                "{}://{}{dir}{location}",
                self.scheme.as_str(),
                self.authority()
            )
        }
    }
}

impl FromStr for ProbeUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<ProbeUrl, UrlError> {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            _ => return Err(UrlError::UnsupportedScheme),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(UrlError::InvalidPort),
            },
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::InvalidPath);
        }
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(ProbeUrl {
            scheme,
            host,
            port,
            path,
        })
    }
}

/// Splits `host[:port]` or `[v6][:port]` and parses the host.
fn split_host_port(authority: &str) -> Result<(Host, Option<&str>), UrlError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (addr, after) = bracketed.split_once(']').ok_or(UrlError::InvalidHost)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| UrlError::InvalidHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::InvalidPort)?),
        };
        return Ok((Host::Ip(IpAddr::V6(addr)), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if let Ok(addr) = host.parse::<std::net::Ipv4Addr>() {
        return Ok((Host::Ip(IpAddr::V4(addr)), port));
    }
    let valid = host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(UrlError::InvalidHost);
    }
    Ok((Host::Name(host.to_ascii_lowercase()), port))
}

impl fmt::Display for ProbeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

impl Serialize for ProbeUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a string is not a usable probe URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `http://` or `https://`; probes speak nothing else.
    #[error("probe URL must start with http:// or https://")]
    UnsupportedScheme,
    /// Nothing between `//` and the path; give a host name or an address.
    #[error("probe URL has no host")]
    MissingHost,
    /// The host is neither a DNS name (letters, digits, `-`, `.`, `_`), an IPv4 address, nor a
    /// bracketed IPv6 address; internationalised names must be given in their `xn--` form.
    #[error("probe URL host is not a DNS name or an address literal")]
    InvalidHost,
    /// The port is not a number from 1 to 65535.
    #[error("probe URL port is not a number from 1 to 65535")]
    InvalidPort,
    /// The URL carries `user:password@`; probes send no credentials.
    #[error("probe URL must not contain user information")]
    UserInfo,
    /// The path holds spaces, control or non-ASCII characters; percent-encode them.
    #[error("probe URL path must be printable ASCII (percent-encode the rest)")]
    InvalidPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        assert_eq!(ProbeEndpoint::defaults().len(), DEFAULT_ENDPOINTS.len());
        for spec in DEFAULT_ENDPOINTS {
            let ep = spec.to_endpoint().expect(spec.url);
            assert_eq!(
                ep.url.scheme(),
                Scheme::Http,
                "{}: portals only show on HTTP",
                spec.url
            );
            assert!(matches!(ep.expect_status, 200 | 204));
            assert_eq!(ep.expect_status == 200, ep.expect_body_prefix.is_some());
        }
    }

    #[test]
    fn parses_urls() {
        let url: ProbeUrl = "HTTP://Example.COM/generate_204".parse().unwrap();
        assert_eq!(url.host(), &Host::Name("example.com".into()));
        assert_eq!(url.port(), 80);
        assert_eq!(url.to_string(), "http://example.com/generate_204");

        let url: ProbeUrl = "https://198.18.0.1:8443".parse().unwrap();
        assert_eq!(url.host(), &Host::Ip("198.18.0.1".parse().unwrap()));
        assert_eq!(url.port(), 8443);
        assert_eq!(url.path(), "/");
        assert_eq!(url.to_string(), "https://198.18.0.1:8443/");

        let url: ProbeUrl = "http://[2001:db8::1]/a?b=c#frag".parse().unwrap();
        assert_eq!(url.path(), "/a?b=c");
        assert_eq!(url.authority(), "[2001:db8::1]");

        let url: ProbeUrl = "http://h.test?x=1".parse().unwrap();
        assert_eq!(url.path(), "/?x=1");
    }

    #[test]
    fn rejects_bad_urls() {
        for (input, err) in [
            ("ftp://example.com/", UrlError::UnsupportedScheme),
            ("example.com", UrlError::UnsupportedScheme),
            ("http:///path", UrlError::MissingHost),
            ("http://:80/", UrlError::MissingHost),
            ("http://exa mple.com/", UrlError::InvalidHost),
            ("http://[::1/", UrlError::InvalidHost),
            ("http://[zz::1]/", UrlError::InvalidHost),
            ("http://ex\u{e4}mple.com/", UrlError::InvalidHost),
            ("http://example.com:0/", UrlError::InvalidPort),
            ("http://example.com:99999/", UrlError::InvalidPort),
            ("http://[2001:db8::1]x/", UrlError::InvalidPort),
            ("http://u:p@example.com/", UrlError::UserInfo),
            ("http://example.com/a b", UrlError::InvalidPath),
            (
                "http://example.com/a\r\nX-Injected: 1",
                UrlError::InvalidPath,
            ),
        ] {
            assert_eq!(input.parse::<ProbeUrl>(), Err(err), "{input:?}");
        }
    }

    #[test]
    fn builds_request() {
        let ep = ProbeEndpoint::no_content("http://198.18.0.1:8080/generate_204".parse().unwrap());
        let req = String::from_utf8(ep.request()).unwrap();
        assert!(req.starts_with("GET /generate_204 HTTP/1.1\r\nHost: 198.18.0.1:8080\r\n"));
        assert!(req.contains(&format!("User-Agent: {USER_AGENT}\r\n")));
        assert!(req.contains("Connection: close\r\n"));
        assert!(req.ends_with("\r\n\r\n"));

        let ep = ProbeEndpoint::no_content("https://[2001:db8::1]/".parse().unwrap());
        let req = String::from_utf8(ep.request()).unwrap();
        assert!(req.contains("Host: [2001:db8::1]\r\n"));
    }

    #[test]
    fn resolves_locations() {
        let url: ProbeUrl = "http://198.18.0.1:8080/check/generate_204?x"
            .parse()
            .unwrap();
        assert_eq!(
            url.resolve("https://portal.test/login"),
            "https://portal.test/login"
        );
        assert_eq!(
            url.resolve("//portal.test/login"),
            "http://portal.test/login"
        );
        assert_eq!(url.resolve("/login"), "http://198.18.0.1:8080/login");
        assert_eq!(
            url.resolve("login?a=1"),
            "http://198.18.0.1:8080/check/login?a=1"
        );
    }
}
