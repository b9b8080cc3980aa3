//! `GET /metrics`: the state as Prometheus metrics, made with the `prometheus-client` crate.
//!
//! Gauges of the state (connectivity, interfaces, probe verdicts) are read from the fan-out's
//! state at each scrape, so they can never disagree with `/v1/status`; counters of what
//! happened (events, carrier changes, probe durations) are counted by the fan-out as it hands
//! out the stream; the monitor's own counters come from `Monitor::stats()`. Names, labels and
//! meanings: docs/metrics.md. Interfaces carry node_exporter's `device` label.

use std::sync::Arc;
use std::time::Duration;

use netreach::Monitor;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::fanout::Fanout;

type Labels = Vec<(&'static str, String)>;

/// What the fan-out counts as it hands out the stream.
#[derive(Debug)]
pub struct Metrics {
    events: Family<Labels, Counter>,
    carrier_changes: Family<Labels, Counter>,
    probe_duration: Histogram,
    sse_clients: Gauge,
    sse_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            events: Family::default(),
            carrier_changes: Family::default(),
            // 1 ms to about 33 s, doubling.
            probe_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            sse_clients: Gauge::default(),
            sse_dropped: Counter::default(),
        }
    }
}

impl Metrics {
    /// One line of this type was handed out.
    pub fn count_line(&self, kind: &'static str) {
        self.events
            .get_or_create(&vec![("type", kind.to_owned())])
            .inc();
    }

    /// The carrier of this interface changed.
    pub fn carrier_changed(&self, device: &str) {
        self.carrier_changes
            .get_or_create(&vec![("device", device.to_owned())])
            .inc();
    }

    /// The interface is gone: its series go too, so the label set stays that of the
    /// interfaces there are.
    pub fn interface_removed(&self, device: &str) {
        self.carrier_changes
            .remove(&vec![("device", device.to_owned())]);
    }

    /// A probe gave a verdict that changed (the library reports changes, not every probe).
    pub fn observe_probe(&self, latency: Duration) {
        self.probe_duration.observe(latency.as_secs_f64());
    }

    pub fn set_sse_clients(&self, n: usize) {
        self.sse_clients.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn sse_dropped(&self) {
        self.sse_dropped.inc();
    }

    /// The registry of a service: these counters, the state of `fanout`, the stats of
    /// `monitor` and the process.
    pub fn registry(&self, fanout: Arc<Fanout>, monitor: Monitor) -> Registry {
        let mut r = Registry::default();
        r.register(
            "netreach_events",
            "Lines of the event stream handed out, by type (as /v1/events and watch --json)",
            self.events.clone(),
        );
        r.register(
            "netreach_interface_carrier_changes",
            "Carrier changes of the interface seen since the service started",
            self.carrier_changes.clone(),
        );
        r.register(
            "netreach_probe_duration_seconds",
            "Duration of the HTTP probes whose verdict changed, name resolution included",
            self.probe_duration.clone(),
        );
        r.register(
            "netreach_sse_clients",
            "Open /v1/events streams",
            self.sse_clients.clone(),
        );
        r.register(
            "netreach_sse_dropped",
            "Event streams closed because the client did not read",
            self.sse_dropped.clone(),
        );
        r.register_collector(Box::new(State { fanout, monitor }));
        r.register_collector(Box::new(super::process::Process));
        r
    }
}

/// The gauges of the state, read at each scrape.
#[derive(Debug)]
struct State {
    fanout: Arc<Fanout>,
    monitor: Monitor,
}

const LEVELS: [&str; 4] = ["disconnected", "local", "site", "internet"];
const VERDICTS: [&str; 4] = ["full", "portal", "limited", "none"];

impl Collector for State {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.monitor.stats();
        self.fanout.with_state(|snap, conn, verification| {
            let mut m = enc.encode_descriptor(
                "netreach_connectivity_state",
                "1 for the family's current connectivity level, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for (family, level) in [
                ("ipv4", conn.ipv4),
                ("ipv6", conn.ipv6),
                ("overall", conn.overall),
            ] {
                for l in LEVELS {
                    let v = i64::from(level.as_str() == l);
                    ConstGauge::new(v)
                        .encode(m.encode_family(&[("family", family), ("level", l)])?)?;
                }
            }
            gauge(
                &mut enc,
                "netreach_online",
                "1 when the overall level is internet",
                i64::from(conn.is_online()),
            )?;
            let mut up = enc.encode_descriptor(
                "netreach_interface_up",
                "1 when the interface is administratively up (IFF_UP)",
                None,
                MetricType::Gauge,
            )?;
            for i in snap.interfaces() {
                ConstGauge::new(i64::from(i.admin_up))
                    .encode(up.encode_family(&[("device", i.name.as_str())])?)?;
            }
            let mut carrier = enc.encode_descriptor(
                "netreach_interface_carrier",
                "1 when the interface has carrier (the link is up)",
                None,
                MetricType::Gauge,
            )?;
            for i in snap.interfaces() {
                ConstGauge::new(i64::from(i.carrier))
                    .encode(carrier.encode_family(&[("device", i.name.as_str())])?)?;
            }
            if let Some(v) = verification {
                let mut probe = enc.encode_descriptor(
                    "netreach_probe_state",
                    "1 for the latest verdict of the probe of the interface and family, 0 for \
                     the others",
                    None,
                    MetricType::Gauge,
                )?;
                for r in &v.results {
                    for verdict in VERDICTS {
                        let labels = [
                            ("interface", r.interface.as_str()),
                            ("family", r.family.as_str()),
                            ("result", verdict),
                        ];
                        ConstGauge::new(i64::from(r.verdict.as_str() == verdict))
                            .encode(probe.encode_family(&labels)?)?;
                    }
                }
            }
            Ok::<(), std::fmt::Error>(())
        })?;
        counter(
            &mut enc,
            "netreach_resyncs",
            "Times the monitor lost kernel notifications and dumped the state again",
            stats.resyncs,
        )?;
        counter(
            &mut enc,
            "netreach_netlink_messages",
            "Kernel messages the monitor decoded",
            stats.messages,
        )?;
        counter(
            &mut enc,
            "netreach_netlink_decode_errors",
            "Kernel messages the monitor could not decode and skipped",
            stats.decode_errors,
        )?;
        Ok(())
    }
}

/// One gauge without labels.
pub fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// One counter without labels (`_total` is added to the sample's name).
pub fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

/// One floating-point gauge without labels.
pub fn gauge_f64(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// One floating-point counter without labels.
pub fn counter_f64(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

/// The exposition: OpenMetrics when the scraper accepts it (as Prometheus says it does),
/// else the text format 0.0.4. Returns the content type and the text.
pub fn render(registry: &Registry, accept: Option<&str>) -> (&'static str, String) {
    let mut out = String::with_capacity(4096);
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        let _ = prometheus_client::encoding::text::encode(&mut out, registry);
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            out,
        )
    } else {
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
        (
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            out,
        )
    }
}
