//! Samples, their median and 90th percentile, and the Markdown tables the benchmark prints.
//!
//! The machine is shared and noisy, so absolute figures move from run to run; what the tables
//! are for is the ratio of netreach to each peer measured in the same run, side by side.

use std::fmt::Write as _;
use std::time::Duration;

/// The measurements of one thing, plus how many attempts saw nothing in time.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<Duration>,
    pub missed: usize,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.values.push(d);
    }

    /// Records an attempt: a value, or a miss (`None`).
    pub fn record(&mut self, d: Option<Duration>) {
        match d {
            Some(d) => self.push(d),
            None => self.missed += 1,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The `p`-th percentile (nearest rank), `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.values.is_empty() {
            return None;
        }
        let mut v = self.values.clone();
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }

    pub fn median(&self) -> Option<Duration> {
        self.percentile(50.0)
    }

    pub fn p90(&self) -> Option<Duration> {
        self.percentile(90.0)
    }
}

/// A duration with three significant digits and a unit that suits it.
pub fn dur(d: Option<Duration>) -> String {
    let Some(d) = d else {
        return "n/a".into();
    };
    let ns = d.as_nanos() as f64;
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

/// `a / b` as a ratio ("0.25×": a takes a quarter of b's time).
pub fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if !b.is_zero() => {
            let r = a.as_secs_f64() / b.as_secs_f64();
            // Two significant digits at least, however small.
            let decimals = (1.0 - r.log10().floor()).clamp(2.0, 8.0) as usize;
            if r >= 10.0 {
                format!("{r:.0}×")
            } else {
                format!("{r:.decimals$}×")
            }
        }
        _ => "n/a".into(),
    }
}

/// Kibibytes, readable.
pub fn kib(k: Option<u64>) -> String {
    match k {
        None => "n/a".into(),
        Some(k) if k >= 10 * 1024 => format!("{:.1} MiB", k as f64 / 1024.0),
        Some(k) => format!("{k} KiB"),
    }
}

/// A Markdown table, built row by row and printed at the end.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rows so far, to copy into a bigger table.
    pub fn rows(&self) -> impl Iterator<Item = Vec<String>> + '_ {
        self.rows.iter().cloned()
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width = vec![3; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = w - c.chars().count();
                // First column left-aligned (names), the figures right-aligned.
                if i == 0 {
                    let _ = write!(s, " {c}{} |", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {}{c} |", " ".repeat(pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.header);
        out.push('|');
        for (i, w) in width.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, " {} |", "-".repeat(*w));
            } else {
                let _ = write!(out, " {}: |", "-".repeat(w - 1));
            }
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}
