//! One request and one bounded response over a connected stream, plain or TLS, under a deadline.
//!
//! [`DeadlineStream`] re-arms the socket's read and write timeouts to the time left before each
//! call, so however the peer trickles bytes the exchange ends by the deadline. The response is
//! read with the core's bounded parser: an endless body or header costs at most its limits.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use netreach_core::probe::{
    Host, ParseLimits, ProbePhase, ProbeReason, ProbeResponse, ResponseParser,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::ProbeError;
use super::connect::{Failure, io_failure, limited};

/// A TCP stream whose every read and write ends by `deadline`.
#[derive(Debug)]
pub(super) struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    pub(super) fn new(tcp: TcpStream, deadline: Instant) -> DeadlineStream {
        DeadlineStream { tcp, deadline }
    }

    /// The time left, or a `TimedOut` error once it is up.
    fn remaining(&self) -> io::Result<std::time::Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.remaining()?))?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.remaining()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Sends `request` and reads the response over plain TCP.
pub(super) fn plain(
    mut stream: DeadlineStream,
    request: &[u8],
    limits: ParseLimits,
) -> Result<ProbeResponse, Failure> {
    exchange(&mut stream, request, limits)
}

/// Completes a TLS handshake for `host`, then sends `request` and reads the response.
pub(super) fn tls(
    stream: DeadlineStream,
    host: &Host,
    config: Arc<ClientConfig>,
    request: &[u8],
    limits: ParseLimits,
) -> Result<ProbeResponse, Failure> {
    let name = match host {
        Host::Name(name) => ServerName::try_from(name.clone()),
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
    }
    .map_err(|_| limited(ProbeReason::TlsCertificate))?;
    let conn = ClientConnection::new(config, name).map_err(|source| ProbeError::Tls { source })?;
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if let Err(err) = tls.conn.complete_io(&mut tls.sock) {
            return Err(tls_failure(&err));
        }
    }
    exchange(&mut tls, request, limits)
}

/// A failed handshake: a TLS error, or the connection failing underneath.
fn tls_failure(err: &io::Error) -> Failure {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            tracing::debug!(?cert, "probe TLS certificate rejected");
            limited(ProbeReason::TlsCertificate)
        }
        Some(tls) => {
            tracing::debug!(%tls, "probe TLS handshake failed");
            limited(ProbeReason::TlsHandshake)
        }
        None if err.kind() == io::ErrorKind::UnexpectedEof => limited(ProbeReason::TlsHandshake),
        None => io_failure(err, ProbePhase::Tls),
    }
}

/// Writes the request, then feeds what comes back to the bounded parser until it has a response.
fn exchange<S: Read + Write>(
    stream: &mut S,
    request: &[u8],
    limits: ParseLimits,
) -> Result<ProbeResponse, Failure> {
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|err| io_failure(&err, ProbePhase::Response))?;
    let mut parser = ResponseParser::new(limits);
    let mut buf = [0u8; 4096];
    loop {
        let read = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // A TLS peer closing without close_notify: for a `Connection: close` exchange that
            // is the end of the response, as it is for most servers.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(err) => return Err(io_failure(&err, ProbePhase::Response)),
        };
        if read == 0 {
            return parser
                .finish()
                .map_err(|err| limited(ProbeReason::from(err)));
        }
        let data = buf.get(..read).unwrap_or_default();
        match parser.feed(data) {
            Ok(Some(response)) => return Ok(response),
            Ok(None) => {}
            Err(err) => return Err(limited(ProbeReason::from(err))),
        }
    }
}

/// The default TLS client: Mozilla's roots (`webpki-roots`), `ring`, TLS 1.2 and 1.3.
pub(super) fn default_tls() -> Result<Arc<ClientConfig>, ProbeError> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(Arc::clone(config));
    }
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = tls_config(roots)?;
    Ok(Arc::clone(CONFIG.get_or_init(|| config)))
}

/// A TLS client trusting `roots`, with the `ring` provider.
pub fn tls_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, ProbeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| ProbeError::Tls { source })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
