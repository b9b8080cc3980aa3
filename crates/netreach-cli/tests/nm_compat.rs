//! `netreach serve --nm-compat` against the real clients it is for: Qt 6's `networkmanager`
//! network-information backend and GLib's `GNetworkMonitorNM`, on a private system bus (a real
//! `dbus-daemon` started here), with the service in a throwaway namespace whose carrier,
//! default routes and probe server the test drives. Each client prints one JSON line per
//! change of what it sees; every wait is for such a line, bounded.

#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
#[path = "../../netreach/tests/probe/lab.rs"]
#[allow(dead_code)] // The lab serves several test files; this one uses part of it.
mod lab;
mod nm;
mod serve_util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::{Conn, ENDPOINT_V4, Lab, NO_CONTENT, Server};
use nm::{Bus, Client, User};
use serde_json::Value;
use serve_util::{Scratch, Serve};

const PORTAL: &[u8] =
    b"HTTP/1.1 302 Found\r\nLocation: http://198.18.100.1/login\r\nContent-Length: 0\r\n\r\n";

/// The probe lab with one uplink (`up0`, to `servers[0]`): the second goes, so that carrier
/// and routes of one interface decide.
fn one_uplink() -> Lab {
    common::require_root();
    let lab = Lab::new();
    lab.client.ip(&["link", "del", "up1"]);
    lab
}

fn probe_server(lab: &Lab, answer: &'static [u8]) -> Server {
    Server::start(
        &lab.servers[0],
        &format!("{ENDPOINT_V4}:80"),
        move |mut c: Conn| c.send(answer),
    )
}

/// A configuration file: probing the lab's endpoint every second, and `metered` patterns.
fn write_config(dir: &std::path::Path, metered: &[&str]) -> std::path::PathBuf {
    let path = dir.join("serve.toml");
    let metered: Vec<String> = metered.iter().map(|m| format!("{m:?}")).collect();
    let text = format!(
        "metered = [{}]\n[probe]\nenabled = true\nurl = \"http://{ENDPOINT_V4}/generate_204\"\n\
         expect_status = 204\ntimeout = 1.0\ninterval = 1\nretry_min = 1\nretry_max = 1\n",
        metered.join(", ")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `netreach --netns NS serve --nm-compat ARGS...` on `bus`; waits until it owns the name.
fn serve(lab: &Lab, bus: &Bus, args: &[&str]) -> Serve {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
    c.args(common::backend_args())
        .args(["--netns", lab.client.name()])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
    let mut all = vec!["--nm-compat"];
    all.extend(args);
    let srv = Serve::spawn(c, &all);
    srv.wait_line("owning org.freedesktop.NetworkManager on the system bus");
    srv
}

fn qt(reachability: &'static str, portal: bool) -> impl Fn(&Value) -> bool {
    move |v| v["reachability"] == reachability && v["portal"] == portal
}

fn glib(available: bool, connectivity: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["available"] == available && v["connectivity"] == connectivity
}

fn default_routes(lab: &Lab, op: &str) {
    lab.client
        .ip(&["route", op, "default", "via", "198.18.1.2", "dev", "up0"]);
    lab.client.ip(&[
        "-6",
        "route",
        op,
        "default",
        "via",
        "2001:db8:1::2",
        "dev",
        "up0",
    ]);
}

/// The whole story, as both clients see it: online; disconnected on carrier loss; local
/// without default routes; online again; metered after a reload that says so; behind a
/// captive portal; limited once the probe server is gone.
#[test]
fn qt_and_glib_follow_the_network() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nmstory"));
    let bus = Bus::start(&dir.0);
    let server = probe_server(&lab, NO_CONTENT);
    let config = write_config(&dir.0, &[]);
    let srv = serve(&lab, &bus, &["--config", config.to_str().unwrap()]);
    server.wait_accepted(1, Duration::from_secs(10));

    let mut q = Client::qt(&bus);
    let mut g = Client::glib(&bus);
    // Reads each new primary connection's device the moment it is announced, as Qt does.
    let mut f = Client::tool(&bus, "follow", User::Nobody);
    assert_eq!(f.next()["following"], true);
    assert_eq!(
        q.next()["backend"],
        "networkmanager",
        "Qt loaded the backend"
    );
    assert_eq!(
        g.next()["monitor"],
        "GNetworkMonitorNM",
        "GLib uses NetworkManager"
    );
    let first = q.expect("Online", qt("Online", false));
    assert_eq!(first["metered"], false, "{first}");
    let first = g.expect("available, full", glib(true, "full"));
    assert_eq!(first["metered"], false, "{first}");

    // Carrier loss: the far end of the veth goes down.
    lab.servers[0].ip(&["link", "set", "dn0", "down"]);
    q.expect("Disconnected", qt("Disconnected", false));
    g.expect("not available", glib(false, "local"));
    lab.servers[0].ip(&["link", "set", "dn0", "up"]);
    q.expect("Online after the carrier", qt("Online", false));
    g.expect("available after the carrier", glib(true, "full"));
    // The primary connection came back on a new path, readable when announced.
    let v = f.next();
    assert_eq!(v["device"]["Interface"], "up0", "{v}");
    assert_eq!(v["device"]["DeviceType"], 20, "{v}");

    // No default route: the prefix route is left (netreach's `site`, NetworkManager's local).
    default_routes(&lab, "del");
    q.expect("Local", qt("Local", false));
    g.expect("local", glib(false, "local"));
    default_routes(&lab, "add");
    q.expect("Online again", qt("Online", false));
    g.expect("available again", glib(true, "full"));

    // Metered, from the configuration, read again on SIGHUP.
    write_config(&dir.0, &["up0"]);
    serve_util::signal(srv.pid(), "HUP");
    let v = q.expect("metered", |v| v["metered"] == true);
    assert_eq!(v["reachability"], "Online", "{v}");
    g.expect("metered", |v| {
        v["metered"] == true && v["available"] == true
    });

    // A captive portal answers the probe: site, behind a portal.
    drop(server);
    let portal = probe_server(&lab, PORTAL);
    q.expect("Site behind a portal", qt("Site", true));
    g.expect("portal", glib(true, "portal"));

    // The probe server is gone (connections refused): site, limited, no portal.
    drop(portal);
    q.expect("Site, no portal", qt("Site", false));
    g.expect("limited", glib(true, "limited"));
    drop(srv);
}

/// Clients started before the service: with no owner of the name Qt 6.4 loads no backend
/// and GLib takes another monitor (so the unit must be up before applications start); a
/// client that outlived a previous service learns the new one's state from the emission that
/// follows taking the name, and keeps following it.
#[test]
fn clients_started_before_the_service() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nmbefore"));
    let bus = Bus::start(&dir.0);

    let mut q = Client::qt(&bus);
    assert_eq!(
        q.next()["backend"],
        Value::Null,
        "no owner: Qt loads no backend"
    );
    drop(q);
    let mut g = Client::glib(&bus);
    let m = g.next();
    assert_ne!(
        m["monitor"], "GNetworkMonitorNM",
        "no owner: GLib falls back: {m}"
    );
    drop(g);

    // Started with a first service, which then stops; the network changes meanwhile.
    let mut first = serve(&lab, &bus, &[]);
    let mut q = Client::qt(&bus);
    let mut g = Client::glib(&bus);
    assert_eq!(q.next()["backend"], "networkmanager");
    assert_eq!(g.next()["monitor"], "GNetworkMonitorNM");
    q.expect("Online", |v| {
        qt("Online", false)(v) && v["metered"] == false
    });
    g.expect("full", |v| glib(true, "full")(v) && v["metered"] == false);
    assert!(first.terminate().success());
    default_routes(&lab, "del");

    // A second service, metered: the clients see its state without asking.
    let second = serve(&lab, &bus, &["--metered", "up0"]);
    q.expect("Local and metered", |v| {
        qt("Local", false)(v) && v["metered"] == true
    });
    g.expect("local", glib(false, "local"));
    default_routes(&lab, "add");
    q.expect("Online", qt("Online", false));
    g.expect("full and metered", |v| {
        glib(true, "full")(v) && v["metered"] == true
    });
    drop(second);
}

/// Another process owns the name: the service says so in one line, exits 2, and the owner
/// keeps it.
#[test]
fn a_taken_name_is_left_alone() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nmtaken"));
    let bus = Bus::start(&dir.0);
    let mut owner = Client::tool(&bus, "own", User::Root);
    let unique = owner.next()["owner"].as_str().unwrap().to_owned();
    let err = refused(&lab, &bus);
    assert!(
        err.starts_with("netreach: nm-compat: org.freedesktop.NetworkManager is already owned")
            && err.contains(&unique),
        "{err}"
    );
    owner.send("check");
    assert_eq!(
        owner.next()["still_owner"],
        true,
        "the owner keeps the name"
    );
}

/// The bus's policy does not let the service's user own the name: one line, exit 2.
#[test]
fn a_name_the_policy_forbids_is_refused() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nmpolicy"));
    let bus = Bus::as_installed(&dir.0);
    let err = refused(&lab, &bus);
    assert!(
        err.starts_with("netreach: nm-compat: the system bus does not let this user own"),
        "{err}"
    );
}

/// Runs `serve --nm-compat` expecting it to give up: exit 2 and one line, returned.
fn refused(lab: &Lab, bus: &Bus) -> String {
    let dir = Scratch(serve_util::scratch("refused"));
    let socket = format!("unix:{}", dir.0.join("s.sock").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args())
        .args(["--netns", lab.client.name(), "serve", "--nm-compat"])
        .args(["--listen", &socket])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("netreach serve --nm-compat did not give up within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// What clients may ask and what is refused: every object answers `Get`, `GetAll` and
/// `Introspect` (with its properties: Qt reads properties only through introspection); an
/// unknown property, interface, object or method, bad arguments and `Set` get D-Bus errors,
/// and the service goes on. Unprivileged users may only read (the policy file).
#[test]
fn dbus_input_is_checked() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nminput"));
    let bus = Bus::start(&dir.0);
    let _srv = serve(&lab, &bus, &["--metered", "up*"]);
    for user in [User::Root, User::Nobody] {
        let mut tool = Client::tool(&bus, "calls", user);
        let mut answers = std::collections::BTreeMap::new();
        loop {
            let v = tool.next();
            let call = v["call"].as_str().unwrap().to_owned();
            let done = call == "still_serving";
            answers.insert(call, v);
            if done {
                break;
            }
        }
        let ok = |k: &str| answers[k]["ok"].clone();
        let err = |k: &str| answers[k]["error"].as_str().unwrap_or("").to_owned();
        let all = ok("get_all")[0].clone();
        assert_eq!(all["State"], 70, "{user:?}: {all}");
        assert_eq!(all["Connectivity"], 4, "{all}");
        assert_eq!(all["Metered"], 1, "{all}");
        assert!(
            all["Version"].as_str().unwrap().ends_with("-netreach"),
            "{all}"
        );
        let primary = all["PrimaryConnection"].as_str().unwrap();
        assert!(
            primary.starts_with("/org/freedesktop/NetworkManager/ActiveConnection/"),
            "{all}"
        );
        assert_eq!(ok("get_state")[0], 70);
        assert_eq!(ok("check_connectivity")[0], 4);
        let active = ok("active_get_all")[0].clone();
        assert_eq!(active["Id"], "up0", "{active}");
        let device = ok("device_get_all")[0].clone();
        assert_eq!(device["DeviceType"], 20, "a veth: {device}");
        assert_eq!(device["Metered"], 1, "{device}");
        assert_eq!(device["Interface"], "up0", "{device}");
        for (k, props) in [
            (
                "introspect_manager",
                &["State", "Connectivity", "PrimaryConnection", "Metered"][..],
            ),
            ("introspect_active", &["Devices"][..]),
            ("introspect_device", &["DeviceType", "Metered"][..]),
        ] {
            let xml = ok(k)[0].as_str().unwrap().to_owned();
            for p in props {
                assert!(
                    xml.contains(&format!("<property name=\"{p}\"")),
                    "{k}: {xml}"
                );
            }
        }
        assert_eq!(
            err("unknown_property"),
            "org.freedesktop.DBus.Error.UnknownProperty"
        );
        assert_eq!(
            err("unknown_interface"),
            "org.freedesktop.DBus.Error.UnknownInterface"
        );
        assert!(
            !err("bad_interface_name").is_empty(),
            "{:?}",
            answers["bad_interface_name"]
        );
        assert!(
            !err("wrong_arguments").is_empty(),
            "{:?}",
            answers["wrong_arguments"]
        );
        assert_eq!(
            err("unknown_object"),
            "org.freedesktop.DBus.Error.UnknownObject"
        );
        match user {
            // The service's own answers (root may send anything, as the service's user).
            User::Root => {
                // zbus answers a `Set` of a read-only property as of an unknown one.
                let set = err("set_refused");
                assert!(
                    set == "org.freedesktop.DBus.Error.PropertyReadOnly"
                        || set == "org.freedesktop.DBus.Error.UnknownProperty",
                    "{set}"
                );
                assert_eq!(
                    err("unknown_method"),
                    "org.freedesktop.DBus.Error.UnknownMethod"
                );
                // DBUS_REQUEST_NAME_REPLY_EXISTS: the service cannot be replaced.
                assert_eq!(
                    ok("replace_attempt")[0],
                    3,
                    "{:?}",
                    answers["replace_attempt"]
                );
            }
            // The bus's: the policy lets everyone read only.
            User::Nobody => {
                assert_eq!(
                    err("replace_attempt"),
                    "org.freedesktop.DBus.Error.AccessDenied"
                );
                assert_eq!(
                    err("set_refused"),
                    "org.freedesktop.DBus.Error.AccessDenied"
                );
                assert_eq!(
                    err("unknown_method"),
                    "org.freedesktop.DBus.Error.AccessDenied"
                );
            }
        }
        assert!(ok("still_serving")[0].is_string(), "{answers:?}");
    }
}

/// The bus goes away under the service: the face cannot serve, so the service ends with a
/// run-time failure (exit 1) instead of running on without it; a unit restarts it.
#[test]
fn losing_the_bus_ends_the_service() {
    if !nm::available() {
        return;
    }
    let lab = one_uplink();
    let dir = Scratch(serve_util::scratch("nmlost"));
    let bus = Bus::start(&dir.0);
    let mut srv = serve(&lab, &bus, &[]);
    drop(bus);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "netreach serve --nm-compat still runs 10 s after its bus went away"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(1), "a run-time failure");
}
