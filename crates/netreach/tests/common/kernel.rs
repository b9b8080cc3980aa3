//! The kernel's own view (`ip -j ...`) and netreach's, reduced to comparable sets.

use std::collections::BTreeSet;

use netreach::Snapshot;
use serde_json::Value;

use super::Ns;

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
            out.insert((
                fam.to_owned(),
                dst,
                s(&r["gateway"]),
                s(&r["dev"]),
                table_id(&r["table"]),
                r["metric"].as_u64().unwrap_or(0) as u32,
                r["type"].as_str().unwrap_or("unicast").to_owned(),
                r["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "linkdown")),
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

/// Asserts the model equals the kernel's view, link by link, address by address, route by
/// route, with a readable difference on failure.
pub fn assert_matches_kernel(ns: &Ns, snap: &Snapshot) {
    fn check<T: Ord + std::fmt::Debug>(what: &str, kernel: BTreeSet<T>, model: BTreeSet<T>) {
        let missing: Vec<_> = kernel.difference(&model).collect();
        let extra: Vec<_> = model.difference(&kernel).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: missing from netreach {missing:#?}\nonly in netreach {extra:#?}"
        );
    }
    check("links", kernel_links(ns), model_links(snap));
    check("addresses", kernel_addrs(ns), model_addrs(snap));
    check("routes", kernel_routes(ns), model_routes(snap));
}

/// True when the model equals the kernel's view (for waiting).
pub fn matches_kernel(ns: &Ns, snap: &Snapshot) -> bool {
    kernel_links(ns) == model_links(snap)
        && kernel_addrs(ns) == model_addrs(snap)
        && kernel_routes(ns) == model_routes(snap)
}
