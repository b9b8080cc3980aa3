//! What the property and mutation tests share: how many cases (`NETREACH_FUZZ_ITERS`), which
//! seed (`NETREACH_FUZZ_SEED`), and a small deterministic generator.

#![allow(dead_code)] // Each test file uses part of it.

/// Cases to run: `NETREACH_FUZZ_ITERS` (underscores allowed), else `default`.
pub fn cases(default: u64) -> u64 {
    std::env::var("NETREACH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The seed: `NETREACH_FUZZ_SEED`, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("NETREACH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: small, fast, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A generator of its own for case `case` of a run, so that a failing case replays alone.
    pub fn for_case(seed: u64, case: u64) -> Rng {
        let mut r = Rng((seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// Any byte.
    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())].clone()
    }
}
