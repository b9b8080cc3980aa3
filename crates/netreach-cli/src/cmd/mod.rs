//! One module per subcommand.

pub mod docs;
pub mod filter;
pub mod probe;
pub mod reach;
pub mod status;
pub mod wait_online;
pub mod watch;

use netreach::core::connectivity::ConnectivityConfig;
use netreach::{BackendKind, Monitor, Netns};

use crate::Failure;
use crate::cli::RuleArgs;

/// `netreach serve`: the service, on Linux ([`crate::serve`]).
pub fn serve(scope: &Scope, args: &crate::cli::ServeArgs) -> crate::Outcome {
    #[cfg(target_os = "linux")]
    return crate::serve::run(scope, args);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (scope, args);
        Err(Failure::input("serve is only available on Linux"))
    }
}

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

/// Where and how the commands watch: the namespace (`--netns`) and the backend (`--backend`,
/// `--poll-interval`).
#[derive(Debug, Clone)]
pub struct Scope {
    pub netns: Netns,
    pub backend: BackendKind,
}

impl Scope {
    /// A monitor of the namespace with the backend asked for.
    pub fn monitor(&self) -> Result<Monitor, netreach::Error> {
        Monitor::builder()
            .netns(self.netns.clone())
            .backend(self.backend)
            .build()
    }
}
