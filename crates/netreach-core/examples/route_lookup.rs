//! Asks the kernel one route lookup, the way the netreach glue does, and shows (or saves) the
//! raw answer: the capture tool for the fixtures in `tests/fixtures/route-lookup/`.
//!
//! ```text
//! route_lookup [--netns NAME] [--no-fib-match] [--save FILE] REMOTE LOCAL [OIF_INDEX]
//! ```
//!
//! With `--netns` the lookup runs on a thread moved into `/run/netns/NAME` (needs root), so the
//! capture script (`capture-route-lookups.sh`) can run it in a throwaway namespace. The request
//! is built by `route_lookup_request` and the answer parsed by `parse_route_lookup_answer`, so
//! this also checks both against the real kernel.
//!
//! Linux only: elsewhere it says so and fails.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("route_lookup: rtnetlink route lookups need Linux");
    std::process::ExitCode::FAILURE
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::net::IpAddr;
    use std::os::fd::AsFd;
    use std::process::ExitCode;

    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    use netreach_core::reach::{RouteQuery, parse_route_lookup_answer, route_lookup_request};

    const SEQ: u32 = 0x6e72;

    struct Args {
        netns: Option<String>,
        fib_match: bool,
        save: Option<String>,
        query: RouteQuery,
    }

    fn parse_args() -> Result<Args, String> {
        let mut netns = None;
        let mut fib_match = true;
        let mut save = None;
        let mut positional = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--netns" => netns = Some(it.next().ok_or("--netns needs a name")?),
                "--save" => save = Some(it.next().ok_or("--save needs a file")?),
                "--no-fib-match" => fib_match = false,
                _ => positional.push(a),
            }
        }
        let [remote, local, rest @ ..] = positional.as_slice() else {
            return Err("usage: route_lookup [--netns NAME] [--no-fib-match] [--save FILE] REMOTE LOCAL [OIF_INDEX]".into());
        };
        let addr = |s: &str| s.parse::<IpAddr>().map_err(|e| format!("{s}: {e}"));
        let interface = match rest {
            [] => None,
            [oif] => Some(oif.parse::<u32>().map_err(|e| format!("{oif}: {e}"))?),
            _ => return Err("too many arguments".into()),
        };
        Ok(Args {
            netns,
            fib_match,
            save,
            query: RouteQuery {
                remote: addr(remote)?,
                local: addr(local)?,
                interface,
            },
        })
    }

    /// Sends the request and returns the first datagram that answers it.
    fn lookup(args: &Args) -> std::io::Result<Vec<u8>> {
        if let Some(ns) = &args.netns {
            let f = File::open(format!("/run/netns/{ns}"))?;
            rustix::thread::move_into_link_name_space(
                f.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
        }
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        // As the monitor's request socket: strict checking rejects flags a family does not know.
        sock.set_netlink_get_strict_chk(true)?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let req = route_lookup_request(SEQ, &args.query, args.fib_match);
        sock.send(&req, 0)?;
        loop {
            let (buf, _) = sock.recv_from_full()?;
            if parse_route_lookup_answer(&buf, SEQ).is_some() {
                return Ok(buf);
            }
        }
    }

    pub fn main() -> ExitCode {
        let args = match parse_args() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("route_lookup: {e}");
                return ExitCode::from(2);
            }
        };
        // The namespace switch is per thread: do it on a thread of its own.
        let answer = std::thread::scope(|s| s.spawn(|| lookup(&args)).join());
        let buf = match answer {
            Ok(Ok(buf)) => buf,
            Ok(Err(e)) => {
                eprintln!("route_lookup: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => {
                eprintln!("route_lookup: the lookup thread panicked");
                return ExitCode::FAILURE;
            }
        };
        let hex: Vec<String> = buf.iter().map(|b| format!("{b:02x}")).collect();
        println!("bytes {}", hex.join(""));
        match parse_route_lookup_answer(&buf, SEQ) {
            Some(Ok(route)) => println!("route {route:?}"),
            Some(Err(errno)) => println!(
                "errno {errno} ({})",
                std::io::Error::from_raw_os_error(errno)
            ),
            None => println!("no answer"),
        }
        if let Some(path) = &args.save {
            if let Err(e) = std::fs::write(path, &buf) {
                eprintln!("route_lookup: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }
}
