//! Verified internet: the status monitor's HTTP probes, per interface and family.
//!
//! The schedule and the verdicts are the core's ([`netreach_core::probe::ProbeBook`], kept by
//! the monitor's machine: re-probe soon after a connectivity change, back off while `limited` or
//! `portal`, rarely while `full`, at most one probe in flight per interface and family). The
//! monitor's thread runs each probe the machine asks for on a worker thread inside the
//! monitor's namespace and hands the result back. Nothing is ever probed unless a
//! [`ProbeConfig`] was given.

use std::sync::Arc;
use std::time::Duration;

use netreach_core::probe::{ProbeEndpoint, ProbeSchedule};
pub use netreach_core::probe::{Verification, VerificationChange, Verified};

use crate::probe::ProbeOptions;

/// How the status monitor verifies internet access. Probing is off unless one is given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// What to fetch and what answer proves full access.
    pub endpoint: ProbeEndpoint,
    /// Hard limit for one probe: name resolution, connection and response together.
    pub timeout: Duration,
    /// When to probe again.
    pub schedule: ProbeSchedule,
    /// TLS settings for `https` endpoints (default: the public web roots).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ProbeConfig {
    /// Probe `endpoint` with a 5 s timeout and the default schedule.
    pub fn new(endpoint: ProbeEndpoint) -> ProbeConfig {
        ProbeConfig {
            endpoint,
            timeout: Duration::from_secs(5),
            schedule: ProbeSchedule::default(),
            tls: None,
        }
    }

    /// A different timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A different schedule.
    pub fn schedule(mut self, schedule: ProbeSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// TLS settings for `https` endpoints.
    pub fn tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    pub(crate) fn options(&self) -> ProbeOptions {
        let o = ProbeOptions::new(self.timeout);
        match &self.tls {
            Some(t) => o.tls(t.clone()),
            None => o,
        }
    }
}
