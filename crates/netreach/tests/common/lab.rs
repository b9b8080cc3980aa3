//! The connection monitor's laboratory: a host, a router and a far server, each in a namespace
//! of its own, joined by veth pairs, with both IPv4 and IPv6; and a real TCP connection from the
//! host to the server.
//!
//! ```text
//! host  h0 198.18.20.2/24 2001:db8:20::2/64 ── r0 198.18.20.1 2001:db8:20::1  router
//!       h1 198.18.21.2/24 2001:db8:21::2/64 ── r1 198.18.21.1 2001:db8:21::1
//!                                    router r2 198.18.30.1/24 2001:db8:30::1/64
//!                                         ── s0 198.18.30.2 2001:db8:30::2  server
//! ```
//!
//! The host's default routes go through h0; h1 is the "other interface". Only addresses from
//! 198.18.0.0/15 and 2001:db8::/32 are used, and only inside these namespaces.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use netreach::core::reach::{Path, Reachability, Reason, TargetId};
use netreach::{ConnectionMonitor, ReachNotification, ReachSubscription};

use super::{Ns, run};

/// How long any wait for the kernel or the monitor may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One family's addresses in the lab.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The host's address on h0.
    pub host: &'static str,
    /// The host's address on h1.
    pub host1: &'static str,
    /// The router's address on r0: the host's gateway, and a same-subnet remote.
    pub gateway: &'static str,
    /// The router's address on r1.
    pub gateway1: &'static str,
    /// The router's address on r2: the server's gateway.
    pub server_gateway: &'static str,
    /// The far server's address.
    pub server: &'static str,
    /// The server's subnet, as seen from the host.
    pub server_net: &'static str,
    /// The prefix length of the lab's subnets.
    pub len: u8,
    /// `-4` or `-6` for `ip`.
    pub flag: &'static str,
    /// `nodad` for IPv6 (no waiting for duplicate address detection), empty for IPv4.
    pub nodad: &'static str,
}

pub const V4: Plan = Plan {
    host: "198.18.20.2",
    host1: "198.18.21.2",
    gateway: "198.18.20.1",
    gateway1: "198.18.21.1",
    server_gateway: "198.18.30.1",
    server: "198.18.30.2",
    server_net: "198.18.30.0/24",
    len: 24,
    flag: "-4",
    nodad: "",
};

pub const V6: Plan = Plan {
    host: "2001:db8:20::2",
    host1: "2001:db8:21::2",
    gateway: "2001:db8:20::1",
    gateway1: "2001:db8:21::1",
    server_gateway: "2001:db8:30::1",
    server: "2001:db8:30::2",
    server_net: "2001:db8:30::/64",
    len: 64,
    flag: "-6",
    nodad: "nodad",
};

/// An address of the lab (or any literal address in a test).
pub fn ip(addr: &str) -> IpAddr {
    addr.parse().expect("test address")
}

/// Host, router and server namespaces, deleted on drop.
#[derive(Debug)]
pub struct Lab {
    pub host: Ns,
    pub router: Ns,
    pub server: Ns,
}

impl Lab {
    /// Builds the topology with both families, and waits until the host reaches the server.
    pub fn new(tag: &str) -> Lab {
        let host = Ns::new(&format!("{tag}h"));
        let router = Ns::new(&format!("{tag}r"));
        let server = Ns::new(&format!("{tag}s"));
        // No duplicate address detection on the links made below: their link-local addresses
        // are usable at once, so neighbour discovery between the namespaces never waits on a
        // tentative address (under load that wait made a first IPv6 connect fail with
        // EHOSTUNREACH).
        for ns in [&host, &router, &server] {
            sysctl(ns, "net.ipv6.conf.all.accept_dad=0");
            sysctl(ns, "net.ipv6.conf.default.accept_dad=0");
        }
        host.veth_to("h0", &router, "r0");
        host.veth_to("h1", &router, "r1");
        router.veth_to("r2", &server, "s0");
        sysctl(&router, "net.ipv4.ip_forward=1");
        sysctl(&router, "net.ipv6.conf.all.forwarding=1");
        // IPv6 drops the addresses of an interface that goes down; the router and the server
        // keep theirs, so that a test can take their links down and up again.
        sysctl(&router, "net.ipv6.conf.all.keep_addr_on_down=1");
        sysctl(&server, "net.ipv6.conf.all.keep_addr_on_down=1");
        let batch = |ns: &Ns, lines: &[String]| ns.ip_batch(&(lines.join("\n") + "\n"));
        // Links up first: a route needs its gateway on a link that is up.
        let mut r: Vec<String> = ["link set r0 up", "link set r1 up", "link set r2 up"]
            .map(String::from)
            .into();
        let mut s = vec!["link set s0 up".to_owned()];
        for p in [V4, V6] {
            r.push(format!(
                "addr add {}/{} dev r0 {}",
                p.gateway, p.len, p.nodad
            ));
            r.push(format!(
                "addr add {}/{} dev r1 {}",
                p.gateway1, p.len, p.nodad
            ));
            r.push(format!(
                "addr add {}/{} dev r2 {}",
                p.server_gateway, p.len, p.nodad
            ));
            s.push(format!(
                "addr add {}/{} dev s0 {}",
                p.server, p.len, p.nodad
            ));
            // The family follows from the gateway's address.
            s.push(format!("route add default via {}", p.server_gateway));
        }
        batch(&router, &r);
        batch(&server, &s);
        let lab = Lab {
            host,
            router,
            server,
        };
        lab.restore_host();
        lab
    }

    /// Puts the host back as built: both links up, both families' addresses, the default
    /// routes through h0. Idempotent, so each test step can undo what it broke with it.
    pub fn restore_host(&self) {
        let mut lines = vec!["link set h0 up".to_owned(), "link set h1 up".to_owned()];
        for p in [V4, V6] {
            lines.push(format!(
                "addr replace {}/{} dev h0 {}",
                p.host, p.len, p.nodad
            ));
            lines.push(format!(
                "addr replace {}/{} dev h1 {}",
                p.host1, p.len, p.nodad
            ));
            lines.push(format!("route replace default via {} dev h0", p.gateway));
        }
        self.host.ip_batch(&(lines.join("\n") + "\n"));
    }

    /// Runs `f` on a thread inside the host namespace.
    pub fn in_host<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.host, f)
    }

    /// A real TCP connection from the host to the far server (port `port`): the listener runs
    /// in the server namespace, the client connects from the host namespace. Returns the
    /// host's end and the server's end.
    pub fn connect(&self, plan: Plan, port: u16) -> (TcpStream, TcpStream) {
        let addr = SocketAddr::new(ip(plan.server), port);
        let listener = in_netns(&self.server, move || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("listen on {addr} in the server namespace: {e}"));
        let client = self
            .in_host(move || TcpStream::connect_timeout(&addr, Duration::from_secs(20)))
            .unwrap_or_else(|e| panic!("connect to {addr} from the host namespace: {e}"));
        let (server, _) = listener.accept().expect("accept");
        for s in [&client, &server] {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("read timeout");
        }
        (client, server)
    }
}

/// `sysctl -w KEY=VALUE` inside `ns`.
pub fn sysctl(ns: &Ns, setting: &str) {
    run("ip", &["netns", "exec", &ns.name, "sysctl", "-qw", setting]);
}

/// Runs `f` on a thread that moved into `ns` (`setns`); sockets made there stay in `ns`.
pub fn in_netns<T: Send + 'static>(ns: &Ns, f: impl FnOnce() -> T + Send + 'static) -> T {
    ns.run(f)
}

/// Reads a connection monitor's notifications, checking that each change continues from the
/// state last reported for its target and changes something.
pub struct Watcher {
    sub: ReachSubscription,
    pub states: HashMap<TargetId, Reachability>,
    changes: HashMap<TargetId, usize>,
}

impl Watcher {
    pub fn new(conn: &ConnectionMonitor) -> Watcher {
        let mut sub = conn.subscribe();
        let Some(ReachNotification::Ready { targets, .. }) = sub.recv_timeout(WAIT) else {
            panic!("the first item is Ready")
        };
        let states = targets
            .into_iter()
            .filter_map(|(id, _, r)| r.map(|r| (id, r)))
            .collect();
        Watcher {
            sub,
            states,
            changes: HashMap::new(),
        }
    }

    /// The next change of any target, checked for continuity; `None` after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<(TargetId, Reachability)> {
        match self.sub.recv_timeout(timeout)? {
            ReachNotification::Changed { id, old, new, .. } => {
                let (old, new) = (old.as_deref().cloned(), Arc::unwrap_or_clone(new));
                let before = self.states.insert(id, new.clone());
                assert_eq!(
                    old, before,
                    "a change continues from the last report of {id}"
                );
                assert_ne!(old.as_ref(), Some(&new), "a change changes something");
                *self.changes.entry(id).or_default() += 1;
                Some((id, new))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The next change of target `id` (changes of others are recorded on the way).
    pub fn next_of(&mut self, id: TargetId, what: &str) -> Reachability {
        loop {
            match self.next(WAIT) {
                Some((i, r)) if i == id => return r,
                Some(_) => {}
                None => panic!("{what}: no change of {id}; states {:?}", self.states),
            }
        }
    }

    /// Waits until target `id` is in a state that `want` accepts (maybe already).
    pub fn until(&mut self, id: TargetId, what: &str, want: impl Fn(&Reachability) -> bool) {
        while !self.states.get(&id).is_some_and(&want) {
            self.next_of(id, what);
        }
    }

    /// Waits until every target in `ids` is in a state that `want` accepts.
    pub fn until_all(&mut self, ids: &[TargetId], want: impl Fn(&Reachability) -> bool) {
        while let Some(id) = ids
            .iter()
            .find(|id| !self.states.get(id).is_some_and(&want))
        {
            let id = *id;
            self.next_of(id, "all targets");
        }
    }

    pub fn changes_of(&self, id: TargetId) -> usize {
        self.changes.get(&id).copied().unwrap_or(0)
    }
}

pub fn reachable(r: &Reachability) -> bool {
    matches!(r, Reachability::Reachable(_))
}

pub fn reachable_via(r: &Reachability, dev: &str, gateway: Option<&str>) -> bool {
    matches!(r, Reachability::Reachable(Path { interface_name, gateway: gw, .. })
        if interface_name == dev && *gw == gateway.map(ip))
}

pub fn reason(r: &Reachability) -> &Reason {
    r.reason()
        .unwrap_or_else(|| panic!("expected unreachable, got {r}"))
}

pub fn named(r: &Reason) -> Option<&str> {
    match r {
        Reason::InterfaceDown { interface }
        | Reason::CarrierLost { interface }
        | Reason::LinkDown { interface } => Some(&interface.name),
        _ => None,
    }
}
