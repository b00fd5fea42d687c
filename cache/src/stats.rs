//! Per-thread striped hit/miss/insert counters shared by the backend adapters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::CacheStats;

const STRIPES: usize = 32;

/// Three counters on their own cache line.
#[repr(align(128))]
#[derive(Default)]
struct Line {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

/// Counters striped by thread: each thread updates its own cache line, so
/// counting on the read path causes no cross-core contention (threads beyond
/// `STRIPES` share lines). `Relaxed`: statistics, ordering nothing.
pub(crate) struct Counters {
    lines: Box<[Line]>,
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            lines: (0..STRIPES).map(|_| Line::default()).collect(),
        }
    }

    #[inline]
    fn line(&self) -> &Line {
        &self.lines[stripe()]
    }

    /// Counts a `get` that found (`true`) or missed.
    #[inline]
    pub(crate) fn get(&self, hit: bool) {
        let l = self.line();
        if hit {
            l.hits.fetch_add(1, Relaxed);
        } else {
            l.misses.fetch_add(1, Relaxed);
        }
    }

    /// Counts an `insert`.
    #[inline]
    pub(crate) fn insert(&self) {
        self.line().inserts.fetch_add(1, Relaxed);
    }

    /// Hits, misses and inserts; the caller fills in the rest.
    pub(crate) fn snapshot(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for l in self.lines.iter() {
            s.hits += l.hits.load(Relaxed);
            s.misses += l.misses.load(Relaxed);
            s.inserts += l.inserts.load(Relaxed);
        }
        s
    }
}
