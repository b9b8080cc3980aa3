//! The kernel's own view (`ip -j ...`) and netreach's, reduced to comparable sets, and the one
//! way the tests compare them while things change: at a mark ([`assert_in_step`]), read once.

use std::collections::BTreeSet;

use netreach::{Snapshot, Subscription};
use serde_json::Value;

use super::Ns;
use super::marker::{MARK_WAIT, Marker};

/// (index, name, kind, admin_up, oper_state, carrier, mtu, mac)
pub type LinkRow = (u32, String, String, bool, String, bool, u32, String);
/// (ifindex, address, prefix_len, scope, flags)
pub type AddrRow = (u32, String, u8, String, Vec<String>);
/// (family, destination, gateway, interface, table, metric, type, linkdown)
pub type RouteRow = (String, String, String, String, u32, u32, String, bool);

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn table_id(v: &Value) -> u32 {
    match v.as_str() {
        None => v.as_u64().map_or(254, |n| n as u32),
        Some("main") => 254,
        Some("local") => 255,
        Some("default") => 253,
        Some(n) => n.parse().expect("numeric table"),
    }
}

pub fn kernel_links(ns: &Ns) -> BTreeSet<LinkRow> {
    let links = ns.ip_json("-d link show");
    let mut out = BTreeSet::new();
    for l in links.as_array().expect("array") {
        let flags: Vec<String> = l["flags"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        let kind = match l["linkinfo"]["info_kind"].as_str() {
            Some(k) => k.to_owned(),
            None if l["link_type"] == "loopback" => "loopback".into(),
            None if l["link_type"] == "ether" => "ether".into(),
            None => "unknown".into(),
        };
        out.insert((
            l["ifindex"].as_u64().expect("ifindex") as u32,
            s(&l["ifname"]),
            kind,
            flags.iter().any(|f| f == "UP"),
            s(&l["operstate"]).to_lowercase(),
            flags.iter().any(|f| f == "LOWER_UP"),
            l["mtu"].as_u64().expect("mtu") as u32,
            s(&l["address"]),
        ));
    }
    out
}

pub fn model_links(snap: &Snapshot) -> BTreeSet<LinkRow> {
    snap.interfaces()
        .map(|i| {
            (
                i.index,
                i.name.clone(),
                i.kind.as_str().to_owned(),
                i.admin_up,
                i.oper_state.as_str().to_owned(),
                i.carrier,
                i.mtu,
                i.mac.as_ref().map(|m| m.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

const FLAGS: [&str; 6] = [
    "tentative",
    "deprecated",
    "dadfailed",
    "noprefixroute",
    "temporary",
    "secondary",
];

pub fn kernel_addrs(ns: &Ns) -> BTreeSet<AddrRow> {
    let links = ns.ip_json("addr show");
    let mut out = BTreeSet::new();
    for l in links.as_array().expect("array") {
        let idx = l["ifindex"].as_u64().expect("ifindex") as u32;
        for a in l["addr_info"].as_array().into_iter().flatten() {
            let flags = FLAGS
                .iter()
                .filter(|f| a[**f].as_bool() == Some(true))
                .map(|f| f.to_string())
                .collect();
            out.insert((
                idx,
                s(&a["local"]),
                a["prefixlen"].as_u64().expect("prefixlen") as u8,
                s(&a["scope"]),
                flags,
            ));
        }
    }
    out
}

pub fn model_addrs(snap: &Snapshot) -> BTreeSet<AddrRow> {
    snap.addresses()
        .map(|a| {
            (
                a.interface,
                a.address.to_string(),
                a.prefix_len,
                a.scope.name(),
                a.flags
                    .names()
                    .filter(|n| FLAGS.contains(n))
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect()
}

pub fn kernel_routes(ns: &Ns) -> BTreeSet<RouteRow> {
    let mut out = BTreeSet::new();
    for (fam, flag, any, host) in [("ipv4", "-4", "0.0.0.0/0", 32), ("ipv6", "-6", "::/0", 128)] {
        let routes = ns.ip_json(&format!("-d {flag} route show table all"));
        for r in routes.as_array().expect("array") {
            let dst = s(&r["dst"]);
            let dst = if dst == "default" {
                any.to_owned()
            } else if dst.contains('/') {
                dst
            } else {
                format!("{dst}/{host}")
            };
            // A multipath route is its first hop's gateway and interface, and `linkdown` when
            // the route or its first hop is, as the model describes it.
            let first = &r["nexthops"][0];
            let linkdown = |v: &serde_json::Value| {
                v["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "linkdown"))
            };
            let or_first = |key: &str| match s(&r[key]) {
                v if v.is_empty() => s(&first[key]),
                v => v,
            };
            out.insert((
                fam.to_owned(),
                dst,
                or_first("gateway"),
                or_first("dev"),
                table_id(&r["table"]),
                r["metric"].as_u64().unwrap_or(0) as u32,
                r["type"].as_str().unwrap_or("unicast").to_owned(),
                linkdown(r) || linkdown(first),
            ));
        }
    }
    out
}

pub fn model_routes(snap: &Snapshot) -> BTreeSet<RouteRow> {
    snap.routes()
        .map(|r| {
            (
                r.family.as_str().to_owned(),
                r.destination.to_string(),
                r.gateway.map(|g| g.to_string()).unwrap_or_default(),
                r.interface
                    .and_then(|i| snap.interface_name(i))
                    .unwrap_or_default()
                    .to_owned(),
                r.table,
                r.metric,
                r.kind.name(),
                r.linkdown,
            )
        })
        .collect()
}

/// The kernel's view of a namespace, read once with `ip -j`.
#[derive(Debug)]
pub struct KernelView {
    pub links: BTreeSet<LinkRow>,
    pub addrs: BTreeSet<AddrRow>,
    pub routes: BTreeSet<RouteRow>,
}

impl KernelView {
    /// Reads links, addresses and routes (four `ip -j` runs).
    pub fn read(ns: &Ns) -> KernelView {
        KernelView {
            links: kernel_links(ns),
            addrs: kernel_addrs(ns),
            routes: kernel_routes(ns),
        }
    }

    /// What differs between `snap` and this view, link by link, address by address, route by
    /// route; `None` when they are equal.
    pub fn differences(&self, snap: &Snapshot) -> Option<String> {
        fn check<T: Ord + std::fmt::Debug>(
            what: &str,
            kernel: &BTreeSet<T>,
            model: &BTreeSet<T>,
            out: &mut String,
        ) {
            let missing: Vec<_> = kernel.difference(model).collect();
            let extra: Vec<_> = model.difference(kernel).collect();
            if !missing.is_empty() || !extra.is_empty() {
                out.push_str(&format!(
                    "{what}: missing from netreach {missing:#?}\nonly in netreach {extra:#?}\n"
                ));
            }
        }
        let mut out = String::new();
        check("links", &self.links, &model_links(snap), &mut out);
        check("addresses", &self.addrs, &model_addrs(snap), &mut out);
        check("routes", &self.routes, &model_routes(snap), &mut out);
        (!out.is_empty()).then_some(out)
    }
}

/// Asserts the model equals the kernel's view now, with a readable difference on failure.
/// Only when nothing changes any more; otherwise see [`assert_in_step`].
pub fn assert_matches_kernel(ns: &Ns, snap: &Snapshot) {
    if let Some(d) = KernelView::read(ns).differences(snap) {
        panic!("the model differs from the kernel:\n{d}");
    }
}

/// How many times [`assert_in_step`] compares at most: more than the changes the kernel makes
/// on its own in a test's namespace after the test's last command (duplicate address detection
/// ending for each link-local address, operational states reported by linkwatch).
const ATTEMPTS: usize = 32;

/// Asserts that `sub`'s view equals the kernel's once the monitor has caught up with every
/// change made so far: makes a mark, reads `sub` until it reports it ([`Marker::pass`]), then
/// reads the kernel's view once and compares.
///
/// The kernel also changes things on its own, after the command that caused them returned
/// (IPv6 duplicate address detection ends, linkwatch reports an operational state). A change it
/// made between the mark and the `ip -j` run makes the views differ; the monitor then reports
/// it, so after a difference this waits for the monitor's next item and compares again, after
/// a new mark. Each retry follows an event, none a timer; there are at most [`ATTEMPTS`], and a
/// difference that no change of the kernel explains fails with the difference after
/// [`MARK_WAIT`].
pub fn assert_in_step(ns: &Ns, marker: &mut Marker, sub: &mut Subscription) {
    for attempt in 1..=ATTEMPTS {
        marker.pass(sub);
        let Some(d) = KernelView::read(ns).differences(sub.view()) else {
            return;
        };
        assert!(
            attempt < ATTEMPTS,
            "the model still differs from the kernel after {ATTEMPTS} marks:\n{d}"
        );
        if sub.recv_timeout(MARK_WAIT).is_none() {
            panic!("the model differs from the kernel, and no change comes:\n{d}");
        }
    }
}
