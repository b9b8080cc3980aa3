//! The HTTP probe: verified internet access, per interface and per IP family (blocking IO).
//!
//! [`probe`] fetches a [`ProbeEndpoint`] through one interface and family and classifies the
//! answer with the pure rules of [`netreach_core::probe`]:
//!
//! 1. resolve the host for the family (system resolver on a helper thread, see below), unless
//!    the URL holds an address literal;
//! 2. connect from a socket bound to the interface (`SO_BINDTODEVICE`);
//! 3. for `https://`, a TLS handshake with `rustls` (Mozilla's roots by default);
//! 4. send `GET` with `Host`, `User-Agent: netreach/…` and `Connection: close`;
//! 5. read the response with the bounded parser (16 KiB of head, 4 KiB of body by default);
//!    redirects are never followed: a redirect is what reveals a captive portal.
//!
//! One deadline covers all of it. Every outcome on the network is a [`ProbeVerdict`] in the
//! returned [`ProbeResult`]; only failures of the probe itself (permissions, resources) are a
//! [`ProbeError`]. This module is blocking and needs no async runtime: run it on a thread of
//! your own (the status monitor's driver does, one per probe the core's
//! [`ProbeScheduler`](netreach_core::probe::ProbeScheduler) hands out).
//!
//! Probing sends traffic to the endpoint's operator, [`DEFAULT_ENDPOINTS`] being third parties.
//! Nothing in this crate probes on its own: only a caller that enabled probing calls [`probe`].
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use netreach::probe::{probe, ProbeEndpoint, ProbeVerdict};
//! use netreach_core::Family;
//!
//! let endpoint = ProbeEndpoint::no_content("http://198.18.0.1/generate_204".parse()?);
//! let result = probe(&endpoint, "eth0", Family::Ipv4, Duration::from_secs(5))?;
//! match result.verdict {
//!     ProbeVerdict::Full => println!("online via eth0"),
//!     ProbeVerdict::Portal { url, .. } => println!("captive portal: {url:?}"),
//!     other => println!("not online: {other}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Platform specific behavior
//!
//! Binding to an interface uses `SO_BINDTODEVICE`, which is Linux-only and needs `CAP_NET_RAW`
//! on kernels before 5.7; elsewhere [`probe`] fails with
//! [`ProbeError::BindDeviceUnsupported`]. Name resolution uses `getaddrinfo` and so
//! `/etc/resolv.conf`, `/etc/hosts` and `/etc/nsswitch.conf` of the caller's mount namespace;
//! its queries follow the routing table, not the probed interface.

mod connect;
mod exchange;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netreach_core::Family;
use netreach_core::probe::{ParseLimits, ProbeReason, ProbeResponse, Scheme, classify};

pub use exchange::tls_config;
pub use netreach_core::probe::{
    DEFAULT_ENDPOINTS, ProbeEndpoint, ProbeResult, ProbeUrl, ProbeVerdict,
};

use connect::Failure;
use exchange::DeadlineStream;

/// The longest interface name Linux accepts (`IFNAMSIZ` less the terminating NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// Settings of a probe beyond the endpoint, interface and family.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use netreach::probe::ProbeOptions;
///
/// let options = ProbeOptions::new(Duration::from_secs(3)).source("198.18.0.2".parse()?);
/// assert_eq!(options.timeout, Duration::from_secs(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// The one deadline for resolution, connect, TLS and response. Default 5 s.
    pub timeout: Duration,
    /// How much of the response is read. Default 16 KiB of head, 4 KiB of body.
    pub limits: ParseLimits,
    /// The TLS client for `https://` endpoints; `None` uses Mozilla's roots (`webpki-roots`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A source address to bind besides the interface; `None` lets the kernel choose one of the
    /// interface's addresses.
    pub source: Option<IpAddr>,
}

impl ProbeOptions {
    /// Defaults with this timeout.
    pub fn new(timeout: Duration) -> ProbeOptions {
        ProbeOptions {
            timeout,
            ..ProbeOptions::default()
        }
    }

    /// Use this TLS client (for example one trusting a private root, see [`tls_config`]).
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Bind this source address too.
    pub fn source(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Read at most this much of the response.
    pub fn limits(mut self, limits: ParseLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            timeout: Duration::from_secs(5),
            limits: ParseLimits::default(),
            tls: None,
            source: None,
        }
    }
}

/// Why a probe could not be run at all (as opposed to a verdict about the network).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The interface name is empty, longer than 15 bytes, or holds `/`, whitespace or NUL.
    #[error("{name:?} is not a valid interface name")]
    InterfaceName {
        /// The name given.
        name: String,
    },
    /// The source address is not of the probed family; pass one of the same family.
    #[error("source address {source_address} is not {family}")]
    SourceFamily {
        /// The address given.
        source_address: IpAddr,
        /// The family probed.
        family: Family,
    },
    /// `SO_BINDTODEVICE` was refused: run as root or with `CAP_NET_RAW` (kernels before 5.7),
    /// on Linux.
    #[error("cannot bind a socket to interface {interface}")]
    BindDevice {
        /// The interface.
        interface: String,
        /// The system error.
        source: io::Error,
    },
    /// This system cannot bind a socket to an interface (`SO_BINDTODEVICE` is Linux's), so it
    /// cannot probe one interface: netreach probes on Linux only today.
    #[error("binding a socket to interface {interface} is not supported on this system")]
    BindDeviceUnsupported {
        /// The interface.
        interface: String,
    },
    /// A socket could not be created or bound (out of file descriptors, say).
    #[error("cannot create the probe socket")]
    Socket {
        /// The system error.
        source: io::Error,
    },
    /// The resolver thread could not be started (out of memory or threads).
    #[error("cannot start the name resolution thread")]
    Spawn {
        /// The system error.
        source: io::Error,
    },
    /// The TLS client could not be set up (a custom configuration with no usable protocol).
    #[error("cannot set up TLS")]
    Tls {
        /// What rustls said.
        source: rustls::Error,
    },
}

/// Probes `endpoint` through `interface` over `family` with the default options and `timeout`.
///
/// Returns within `timeout` (plus scheduling slack) whatever the network does. See
/// [`probe_with`] for the options.
pub fn probe(
    endpoint: &ProbeEndpoint,
    interface: &str,
    family: Family,
    timeout: Duration,
) -> Result<ProbeResult, ProbeError> {
    probe_with(endpoint, interface, family, &ProbeOptions::new(timeout))
}

/// Probes `endpoint` through `interface` over `family`.
///
/// Blocks until a verdict, at most [`ProbeOptions::timeout`]. Sends exactly one request to the
/// endpoint and follows no redirect.
pub fn probe_with(
    endpoint: &ProbeEndpoint,
    interface: &str,
    family: Family,
    options: &ProbeOptions,
) -> Result<ProbeResult, ProbeError> {
    let valid_name = !interface.is_empty()
        && interface.len() <= MAX_INTERFACE_NAME
        && !interface.contains(['/', '\0'])
        && !interface.chars().any(char::is_whitespace);
    if !valid_name {
        return Err(ProbeError::InterfaceName {
            name: interface.to_owned(),
        });
    }
    if let Some(source) = options.source {
        if Family::of(&source) != family {
            return Err(ProbeError::SourceFamily {
                source_address: source,
                family,
            });
        }
    }
    let tls = match (endpoint.url.scheme(), &options.tls) {
        (Scheme::Https, Some(config)) => Some(Arc::clone(config)),
        (Scheme::Https, None) => Some(exchange::default_tls()?),
        (Scheme::Http, _) => None,
    };
    let start = Instant::now();
    let deadline = start + options.timeout;
    let mut remote = None;
    let outcome = run(
        endpoint,
        interface,
        family,
        options,
        tls,
        deadline,
        &mut remote,
    );
    let verdict = match outcome {
        Ok(response) => classify(endpoint, &response),
        Err(Failure::Verdict(verdict)) => verdict,
        Err(Failure::Error(err)) => return Err(err),
    };
    Ok(ProbeResult {
        interface: interface.to_owned(),
        family,
        verdict,
        latency: start.elapsed(),
        remote,
    })
}

/// Resolves, connects (trying each address in turn) and exchanges; records the address tried.
fn run(
    endpoint: &ProbeEndpoint,
    interface: &str,
    family: Family,
    options: &ProbeOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
    remote: &mut Option<SocketAddr>,
) -> Result<ProbeResponse, Failure> {
    let url = &endpoint.url;
    let addrs = connect::resolve(url.host(), url.port(), family, deadline)?;
    let mut last = connect::limited(ProbeReason::NoAddressForFamily);
    let mut stream = None;
    for addr in addrs {
        *remote = Some(addr);
        match connect::connect(addr, interface, options.source, deadline) {
            Ok(tcp) => {
                stream = Some(tcp);
                break;
            }
            // Not the network's fault: no other address will do better.
            Err(Failure::Error(err)) => return Err(Failure::Error(err)),
            Err(failure) => last = failure,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let Some(tcp) = stream else {
        return Err(last);
    };
    let stream = DeadlineStream::new(tcp, deadline);
    let request = endpoint.request();
    match tls {
        Some(config) => exchange::tls(stream, url.host(), config, &request, options.limits),
        None => exchange::plain(stream, &request, options.limits),
    }
}
