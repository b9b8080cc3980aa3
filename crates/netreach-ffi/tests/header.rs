//! The checked-in header `include/netreach.h` is what cbindgen makes of the sources now: this
//! test generates it again and fails on any difference. `NETREACH_BLESS=1 cargo test -p
//! netreach-ffi --test header` rewrites it after a deliberate change of the interface.

use std::path::Path;

#[test]
fn the_checked_in_header_is_the_generated_one() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/netreach.h");
    if std::env::var_os("NETREACH_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/netreach.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                checked_in.lines().count().min(generated.lines().count()),
                |n| n,
            );
        panic!(
            "include/netreach.h differs from what cbindgen generates (first at line {}); \
             run `NETREACH_BLESS=1 cargo test -p netreach-ffi --test header` and commit it",
            line + 1
        );
    }
    for name in [
        "netreach_status_monitor_next_event",
        "NETREACH_RESULT_NO_EVENT",
    ] {
        assert!(generated.contains(name), "the header declares {name}");
    }
}
