//! One module per subcommand.

pub mod status;
pub mod watch;

use netreach::Netns;

use crate::Failure;

/// `--netns`: a name from `ip netns`, or a path when it contains a `/`.
pub fn netns(arg: Option<&str>) -> Result<Netns, Failure> {
    match arg {
        None => Ok(Netns::Current),
        Some(p) if p.contains('/') => Ok(Netns::Path(p.into())),
        Some(name) => Ok(Netns::named(name)?),
    }
}
