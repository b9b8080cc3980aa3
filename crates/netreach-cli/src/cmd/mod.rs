//! One module per subcommand.

pub mod probe;
pub mod reach;
pub mod status;
pub mod wait_online;
pub mod watch;

use netreach::Netns;
use netreach::core::connectivity::ConnectivityConfig;

use crate::Failure;
use crate::cli::RuleArgs;

/// The connectivity rules the flags ask for.
pub fn config(rules: &RuleArgs) -> ConnectivityConfig {
    let mut c = ConnectivityConfig::new();
    for p in &rules.exclude {
        c = c.with_excluded(p.clone());
    }
    for p in &rules.metered {
        c = c.with_metered(p.clone());
    }
    c
}

/// `--netns`: a name from `ip netns`, or a path when it contains a `/`.
pub fn netns(arg: Option<&str>) -> Result<Netns, Failure> {
    match arg {
        None => Ok(Netns::Current),
        Some(p) if p.contains('/') => Ok(Netns::Path(p.into())),
        Some(name) => Ok(Netns::named(name)?),
    }
}
