//! Verified internet: what an HTTP probe's answer means, with no IO.
//!
//! A default route is not internet access: a captive portal or a dead uplink looks the same to a
//! route-based check. netreach verifies by fetching a known URL over each interface and IP family
//! and looking at the answer. This module holds the pure part of that:
//!
//! - [`ProbeEndpoint`]: the URL and what a genuine answer looks like; the defaults are in
//!   [`DEFAULT_ENDPOINTS`].
//! - [`ResponseParser`]: a bounded, incremental reader of the response (`httparse` inside).
//! - [`classify`]: response in, [`ProbeVerdict`] out.
//! - [`ProbeScheduler`]: when to probe which (interface, family), with backoff; time comes in,
//!   deadlines go out.
//!
//! The glue in the `netreach` crate does the IO (resolve, connect bound to the interface, send
//! [`ProbeEndpoint::request`], feed the parser) and returns a [`ProbeResult`]. No probe is sent
//! unless the user enabled probing: this crate cannot send anything, and the glue only probes
//! when asked to.
//!
//! # Examples
//!
//! ```
//! use netreach_core::probe::{classify, ParseLimits, ProbeEndpoint, ProbeVerdict, ResponseParser};
//!
//! let endpoint = ProbeEndpoint::no_content("http://198.18.0.1/generate_204".parse()?);
//! let mut parser = ResponseParser::new(ParseLimits::default());
//! let answer = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\
//!                Location: http://portal.test/login\r\n\r\n";
//! let response = parser.feed(answer)?.expect("a complete response");
//! let verdict = classify(&endpoint, &response);
//! assert_eq!(verdict.portal_url(), Some("http://portal.test/login"));
//! assert!(matches!(verdict, ProbeVerdict::Portal { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod endpoint;
mod http;
mod schedule;
mod verification;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::model::Family;

pub use endpoint::{
    DEFAULT_ENDPOINTS, EndpointSpec, Host, ProbeEndpoint, ProbeUrl, Scheme, USER_AGENT, UrlError,
};
pub use http::{MAX_CHUNK_LINE, ParseError, ParseLimits, ProbeResponse, ResponseParser};
pub use schedule::{ProbeAction, ProbeKey, ProbeSchedule, ProbeScheduler};
pub use verification::{ProbeBook, Verification, VerificationChange, Verified};

/// The longest portal URL reported; longer `Location` values are cut.
const MAX_PORTAL_URL: usize = 2048;

/// What one probe says about one interface and family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum ProbeVerdict {
    /// The genuine endpoint answered as expected: verified internet access.
    Full,
    /// Something answered in the endpoint's place: a captive portal, or a proxy or filter that
    /// intercepts. `url` is where it wants the user to go, when it said so.
    Portal {
        /// The portal's URL (from `Location`), resolved against the probe URL.
        url: Option<String>,
        /// The evidence.
        reason: ProbeReason,
    },
    /// The interface has a route, but the endpoint could not be reached or did not answer
    /// usefully: DNS, connect, TLS or the response failed.
    Limited {
        /// What failed.
        reason: ProbeReason,
    },
    /// Nothing could be sent: no such interface, interface down, no route or no source address.
    None {
        /// Why.
        reason: ProbeReason,
    },
}

impl ProbeVerdict {
    /// The reason, for every verdict but [`Full`](ProbeVerdict::Full).
    pub fn reason(&self) -> Option<&ProbeReason> {
        match self {
            ProbeVerdict::Full => None,
            ProbeVerdict::Portal { reason, .. }
            | ProbeVerdict::Limited { reason }
            | ProbeVerdict::None { reason } => Some(reason),
        }
    }

    /// The portal URL, when the verdict is a portal that named one.
    pub fn portal_url(&self) -> Option<&str> {
        match self {
            ProbeVerdict::Portal { url, .. } => url.as_deref(),
            _ => None,
        }
    }

    /// `full`, `portal`, `limited` or `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeVerdict::Full => "full",
            ProbeVerdict::Portal { .. } => "portal",
            ProbeVerdict::Limited { .. } => "limited",
            ProbeVerdict::None { .. } => "none",
        }
    }
}

impl fmt::Display for ProbeVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if let Some(url) = self.portal_url() {
            write!(f, " at {url}")?;
        }
        if let Some(reason) = self.reason() {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// Why a probe gave the verdict it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeReason {
    /// Portal: a redirect (301, 302, 303, 307, 308).
    Redirect {
        /// The status.
        status: u16,
    },
    /// Portal: `511 Network Authentication Required`.
    NetworkAuthenticationRequired,
    /// Portal: a success status, but not the expected answer (a login page, say).
    WrongContent {
        /// The status.
        status: u16,
    },
    /// Portal: the expected answer without the header proving it came from the real endpoint.
    WrongHeader,
    /// Limited: a status that is neither the expected one, a redirect, a success nor 511.
    UnexpectedStatus {
        /// The status.
        status: u16,
    },
    /// Limited: the host name did not resolve.
    DnsFailed,
    /// Limited: the host name resolved, but not to an address of the probed family.
    NoAddressForFamily,
    /// Limited: the endpoint refused the connection.
    ConnectionRefused,
    /// Limited: the connection was reset.
    ConnectionReset,
    /// Limited: the next hop or the endpoint is unreachable (no neighbour answer, ICMP).
    HostUnreachable,
    /// Limited: the overall timeout expired in this phase.
    Timeout {
        /// The phase.
        phase: ProbePhase,
    },
    /// Limited: the TLS handshake failed.
    TlsHandshake,
    /// Limited: the server's certificate was not valid for the host.
    TlsCertificate,
    /// Limited: the response was not valid HTTP.
    MalformedResponse,
    /// Limited: the response head was larger than allowed.
    OversizedHeaders,
    /// Limited: the connection closed before a response.
    ConnectionClosed,
    /// Limited: a probe was handed out but no result came back in time (a driver fault).
    NoResult,
    /// None: no interface by that name.
    NoSuchInterface,
    /// None: the interface is down.
    InterfaceDown,
    /// None: no route to the endpoint through the interface.
    NoRoute,
    /// None: no usable source address of the family on the interface.
    NoSourceAddress,
}

impl fmt::Display for ProbeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeReason::Redirect { status } => write!(f, "redirected with {status}"),
            ProbeReason::NetworkAuthenticationRequired => {
                f.write_str("511 network authentication required")
            }
            ProbeReason::WrongContent { status } => write!(f, "unexpected content with {status}"),
            ProbeReason::WrongHeader => f.write_str("answer lacks the endpoint's header"),
            ProbeReason::UnexpectedStatus { status } => write!(f, "unexpected status {status}"),
            ProbeReason::DnsFailed => f.write_str("name resolution failed"),
            ProbeReason::NoAddressForFamily => f.write_str("no address of this family"),
            ProbeReason::ConnectionRefused => f.write_str("connection refused"),
            ProbeReason::ConnectionReset => f.write_str("connection reset"),
            ProbeReason::HostUnreachable => f.write_str("host unreachable"),
            ProbeReason::Timeout { phase } => write!(f, "timed out during {phase}"),
            ProbeReason::TlsHandshake => f.write_str("TLS handshake failed"),
            ProbeReason::TlsCertificate => f.write_str("TLS certificate invalid"),
            ProbeReason::MalformedResponse => f.write_str("malformed response"),
            ProbeReason::OversizedHeaders => f.write_str("response headers too large"),
            ProbeReason::ConnectionClosed => f.write_str("connection closed without a response"),
            ProbeReason::NoResult => f.write_str("no probe result came back"),
            ProbeReason::NoSuchInterface => f.write_str("no such interface"),
            ProbeReason::InterfaceDown => f.write_str("interface down"),
            ProbeReason::NoRoute => f.write_str("no route"),
            ProbeReason::NoSourceAddress => f.write_str("no source address"),
        }
    }
}

impl From<ParseError> for ProbeReason {
    fn from(err: ParseError) -> ProbeReason {
        match err {
            ParseError::OversizedHeaders => ProbeReason::OversizedHeaders,
            ParseError::Empty => ProbeReason::ConnectionClosed,
            ParseError::BadHead(_) | ParseError::BadFraming | ParseError::Truncated => {
                ProbeReason::MalformedResponse
            }
        }
    }
}

/// The phase of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbePhase {
    /// Resolving the host name.
    Dns,
    /// Connecting (TCP handshake).
    Connect,
    /// The TLS handshake.
    Tls,
    /// Sending the request and reading the response.
    Response,
}

impl fmt::Display for ProbePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbePhase::Dns => "name resolution",
            ProbePhase::Connect => "connect",
            ProbePhase::Tls => "TLS handshake",
            ProbePhase::Response => "response",
        })
    }
}

/// Classifies a response to a probe of `endpoint`.
///
/// In order: the expected status with the expected body prefix and header is
/// [`Full`](ProbeVerdict::Full); `511` and redirects are portals (with the `Location` URL when
/// there is one); the expected status or another `2xx` with the wrong content is a portal; any
/// other status is [`Limited`](ProbeVerdict::Limited).
pub fn classify(endpoint: &ProbeEndpoint, response: &ProbeResponse) -> ProbeVerdict {
    let status = response.status;
    let body_ok = endpoint
        .expect_body_prefix
        .as_ref()
        .is_none_or(|prefix| response.body_prefix.starts_with(prefix.as_bytes()));
    let header_ok = endpoint.expect_header.as_ref().is_none_or(|(name, value)| {
        response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
    });
    let location = || {
        response.header("location").map(|loc| {
            let mut url: String = endpoint
                .url
                .resolve(loc)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_PORTAL_URL)
                .collect();
            url.shrink_to_fit();
            url
        })
    };
    match status {
        _ if status == endpoint.expect_status && body_ok && header_ok => ProbeVerdict::Full,
        511 => ProbeVerdict::Portal {
            url: location(),
            reason: ProbeReason::NetworkAuthenticationRequired,
        },
        301 | 302 | 303 | 307 | 308 => ProbeVerdict::Portal {
            url: location(),
            reason: ProbeReason::Redirect { status },
        },
        _ if status == endpoint.expect_status && body_ok => ProbeVerdict::Portal {
            url: None,
            reason: ProbeReason::WrongHeader,
        },
        _ if status == endpoint.expect_status || (200..300).contains(&status) => {
            ProbeVerdict::Portal {
                url: None,
                reason: ProbeReason::WrongContent { status },
            }
        }
        _ => ProbeVerdict::Limited {
            reason: ProbeReason::UnexpectedStatus { status },
        },
    }
}

/// The outcome of probing one interface and family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    /// The interface the probe was bound to.
    pub interface: String,
    /// The family probed.
    pub family: Family,
    /// What the probe says.
    #[serde(flatten)]
    pub verdict: ProbeVerdict,
    /// From the start of the probe (name resolution included) to the verdict.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
    /// The endpoint address connected to, if a connection was attempted.
    pub remote: Option<SocketAddr>,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} in {} ms",
            self.interface,
            self.family,
            self.verdict,
            self.latency.as_millis()
        )?;
        if let Some(remote) = self.remote {
            write!(f, " via {remote}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
