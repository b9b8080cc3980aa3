//! Name resolution under a deadline, and a TCP connect bound to one interface.
//!
//! Resolution uses the system resolver (`getaddrinfo`, through `std::net::ToSocketAddrs`) on a
//! helper thread, so the probe's deadline holds even when the resolver does not answer; the
//! helper finishes on its own later (glibc gives up after its `resolv.conf` timeouts). A thread
//! inherits the network namespace of the thread that spawns it, and `ip netns exec` bind-mounts
//! `/etc/netns/NAME/resolv.conf`, so a probe run there uses that namespace's resolver.
//!
//! Queries go where the system resolver sends them, not necessarily through the probed
//! interface: netreach does not know per-interface DNS servers. A failing resolver therefore
//! makes every interface `limited`; a probe URL with an address literal avoids DNS altogether.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use netreach_core::Family;
use netreach_core::probe::{Host, ProbePhase, ProbeReason, ProbeVerdict};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::ProbeError;

/// What a failed step means: a verdict about the network, or an error of the probe itself.
#[derive(Debug)]
pub(super) enum Failure {
    /// The network answered this.
    Verdict(ProbeVerdict),
    /// The probe could not be run.
    Error(ProbeError),
}

impl From<ProbeError> for Failure {
    fn from(err: ProbeError) -> Failure {
        Failure::Error(err)
    }
}

/// `Limited` with a reason.
pub(super) fn limited(reason: ProbeReason) -> Failure {
    Failure::Verdict(ProbeVerdict::Limited { reason })
}

/// The endpoint addresses of `family`, resolved before `deadline`.
pub(super) fn resolve(
    host: &Host,
    port: u16,
    family: Family,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    let addrs = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => {
            let (tx, rx) = mpsc::sync_channel(1);
            let query = (name.clone(), port);
            thread::Builder::new()
                .name("netreach-dns".into())
                .spawn(move || {
                    let answer = query.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
                    // The probe may have given up waiting; then nobody needs the answer.
                    let _ = tx.send(answer);
                })
                .map_err(|source| ProbeError::Spawn { source })?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(Ok(addrs)) => addrs,
                Ok(Err(err)) => {
                    tracing::debug!(%name, %err, "probe name resolution failed");
                    return Err(limited(ProbeReason::DnsFailed));
                }
                Err(_) => {
                    return Err(limited(ProbeReason::Timeout {
                        phase: ProbePhase::Dns,
                    }));
                }
            }
        }
    };
    let mut addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| Family::of(&a.ip()) == family)
        .collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(limited(ProbeReason::NoAddressForFamily));
    }
    Ok(addrs)
}

/// Connects to `addr` from a socket bound to `interface` (and to `source`, if given).
pub(super) fn connect(
    addr: SocketAddr,
    interface: &str,
    source: Option<IpAddr>,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|err| {
            if family_unsupported(&err) {
                none(ProbeReason::NoSourceAddress)
            } else {
                Failure::Error(ProbeError::Socket { source: err })
            }
        })?;
    bind_device(&socket, interface)?;
    if let Some(source) = source {
        socket
            .bind(&SockAddr::from(SocketAddr::new(source, 0)))
            .map_err(|err| match err.kind() {
                io::ErrorKind::AddrNotAvailable => none(ProbeReason::NoSourceAddress),
                _ => Failure::Error(ProbeError::Socket { source: err }),
            })?;
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(limited(ProbeReason::Timeout {
            phase: ProbePhase::Connect,
        }));
    }
    socket
        .connect_timeout(&SockAddr::from(addr), remaining)
        .map_err(|err| connect_failure(&err))?;
    // Small request, small answer: no point in Nagle.
    let _ = socket.set_tcp_nodelay(true);
    Ok(TcpStream::from(socket))
}

/// Binds the socket to the interface (`SO_BINDTODEVICE`).
#[cfg(target_os = "linux")]
fn bind_device(socket: &Socket, interface: &str) -> Result<(), Failure> {
    use rustix::io::Errno;

    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(|err| match Errno::from_io_error(&err) {
            Some(Errno::NODEV) => none(ProbeReason::NoSuchInterface),
            _ => Failure::Error(ProbeError::BindDevice {
                interface: interface.to_owned(),
                source: err,
            }),
        })
}

/// Binding to an interface is Linux-only here.
#[cfg(not(target_os = "linux"))]
fn bind_device(_socket: &Socket, interface: &str) -> Result<(), Failure> {
    Err(Failure::Error(ProbeError::BindDeviceUnsupported {
        interface: interface.to_owned(),
    }))
}

/// Whether the system has no sockets of this family (`EAFNOSUPPORT`: IPv6 disabled, say),
/// which `std` gives no kind of its own.
#[cfg(target_os = "linux")]
fn family_unsupported(err: &io::Error) -> bool {
    rustix::io::Errno::from_io_error(err) == Some(rustix::io::Errno::AFNOSUPPORT)
}

/// Not told apart here: such a socket error is a [`ProbeError::Socket`].
#[cfg(not(target_os = "linux"))]
fn family_unsupported(_err: &io::Error) -> bool {
    false
}

/// `None` with a reason.
fn none(reason: ProbeReason) -> Failure {
    Failure::Verdict(ProbeVerdict::None { reason })
}

/// What a failed `connect` says about the network.
///
/// Told by [`io::ErrorKind`], which `std` derives from the errno (`ECONNREFUSED`,
/// `ENETUNREACH`, `EPERM`/`EACCES`, ...) or, on Windows, from the `WSAE*` code.
fn connect_failure(err: &io::Error) -> Failure {
    let reason = match err.kind() {
        io::ErrorKind::ConnectionRefused => ProbeReason::ConnectionRefused,
        io::ErrorKind::ConnectionReset => ProbeReason::ConnectionReset,
        io::ErrorKind::HostUnreachable => ProbeReason::HostUnreachable,
        io::ErrorKind::TimedOut => ProbeReason::Timeout {
            phase: ProbePhase::Connect,
        },
        io::ErrorKind::NetworkUnreachable => return none(ProbeReason::NoRoute),
        io::ErrorKind::NetworkDown => return none(ProbeReason::InterfaceDown),
        io::ErrorKind::AddrNotAvailable => return none(ProbeReason::NoSourceAddress),
        io::ErrorKind::PermissionDenied => {
            // A firewall rule rejected the packet locally (netfilter `REJECT` / `DROP` on
            // output): the host cannot get out this way.
            ProbeReason::HostUnreachable
        }
        _ => {
            tracing::debug!(%err, "probe connect failed");
            ProbeReason::HostUnreachable
        }
    };
    limited(reason)
}

/// What a failed read or write says about the network, in `phase`.
pub(super) fn io_failure(err: &io::Error, phase: ProbePhase) -> Failure {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            limited(ProbeReason::Timeout { phase })
        }
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => limited(ProbeReason::ConnectionReset),
        io::ErrorKind::HostUnreachable => limited(ProbeReason::HostUnreachable),
        io::ErrorKind::NetworkUnreachable => none(ProbeReason::NoRoute),
        io::ErrorKind::NetworkDown => none(ProbeReason::InterfaceDown),
        _ => {
            tracing::debug!(%err, %phase, "probe read or write failed");
            limited(ProbeReason::ConnectionReset)
        }
    }
}

// Tables of Linux errnos, as the kernel reports them.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use rustix::io::Errno;

    use super::*;

    fn errno(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.raw_os_error())
    }

    fn verdict(failure: Failure) -> ProbeVerdict {
        match failure {
            Failure::Verdict(verdict) => verdict,
            Failure::Error(err) => panic!("not a verdict: {err}"),
        }
    }

    #[test]
    fn connect_errors_are_verdicts() {
        let limited = |reason| ProbeVerdict::Limited { reason };
        let none = |reason| ProbeVerdict::None { reason };
        for (err, expected) in [
            (
                errno(Errno::CONNREFUSED),
                limited(ProbeReason::ConnectionRefused),
            ),
            (
                errno(Errno::CONNRESET),
                limited(ProbeReason::ConnectionReset),
            ),
            (
                errno(Errno::HOSTUNREACH),
                limited(ProbeReason::HostUnreachable),
            ),
            // A local firewall's REJECT or DROP.
            (errno(Errno::PERM), limited(ProbeReason::HostUnreachable)),
            (errno(Errno::ACCESS), limited(ProbeReason::HostUnreachable)),
            (errno(Errno::IO), limited(ProbeReason::HostUnreachable)),
            (
                errno(Errno::TIMEDOUT),
                limited(ProbeReason::Timeout {
                    phase: ProbePhase::Connect,
                }),
            ),
            (
                io::ErrorKind::TimedOut.into(),
                limited(ProbeReason::Timeout {
                    phase: ProbePhase::Connect,
                }),
            ),
            (errno(Errno::NETUNREACH), none(ProbeReason::NoRoute)),
            (errno(Errno::NETDOWN), none(ProbeReason::InterfaceDown)),
            (
                errno(Errno::ADDRNOTAVAIL),
                none(ProbeReason::NoSourceAddress),
            ),
        ] {
            assert_eq!(verdict(connect_failure(&err)), expected, "{err}");
        }
    }

    #[test]
    fn read_errors_are_verdicts() {
        let timeout = ProbeVerdict::Limited {
            reason: ProbeReason::Timeout {
                phase: ProbePhase::Response,
            },
        };
        // A socket read timeout surfaces as EAGAIN.
        let err = errno(Errno::AGAIN);
        assert_eq!(verdict(io_failure(&err, ProbePhase::Response)), timeout);
        let limited = |reason| ProbeVerdict::Limited { reason };
        let none = |reason| ProbeVerdict::None { reason };
        for (err, expected) in [
            (Errno::CONNRESET, limited(ProbeReason::ConnectionReset)),
            (Errno::PIPE, limited(ProbeReason::ConnectionReset)),
            (Errno::HOSTUNREACH, limited(ProbeReason::HostUnreachable)),
            (Errno::NETUNREACH, none(ProbeReason::NoRoute)),
            (Errno::NETDOWN, none(ProbeReason::InterfaceDown)),
            (Errno::IO, limited(ProbeReason::ConnectionReset)),
        ] {
            let err = errno(err);
            assert_eq!(
                verdict(io_failure(&err, ProbePhase::Response)),
                expected,
                "{err}"
            );
        }
    }
}
