//! Concurrent caches for sluice: one [`Cache`] trait, four backends chosen by
//! name ([`Backend`]), and [`EpochMap`], a lock-free hash map on crossbeam-epoch.
//!
//! This crate is a leaf: it knows nothing of logs, HTTP or ClickHouse.
//!
//! | backend | what | eviction |
//! |---|---|---|
//! | `moka` (default) | [`moka::sync::Cache`] | TinyLFU admission, LRU |
//! | `quick_cache` | [`quick_cache::sync::Cache`] | CLOCK-Pro-like |
//! | `dashmap` | [`dashmap::DashMap`] + a CLOCK ring (see [`backends`]) | CLOCK |
//! | `epoch` | [`EpochMap::bounded`] | GCLOCK |
//!
//! Every backend counts an entry's weight as given to [`Cache::insert`]
//! (a weight of 0 counts as 1) and keeps the total at most `max_weight`
//! (moka enforces it in its maintenance step, which [`Cache::len`] and
//! [`Cache::stats`] run first). Hits and misses are counted by [`Cache::get`]
//! in per-thread striped counters, so counting does not make reads contend.
//!
//! `unsafe` is confined to `epoch_map::group`, the epoch map's raw core.
//!
//! # Tests
//!
//! * `cargo test -p cache` runs the generic suite over every backend
//!   (`tests/backends.rs`), the model-based proptests against
//!   `std::collections::HashMap` (`tests/model.rs`) and the stress tests
//!   (`tests/stress.rs`) at a CI-sized scale.
//! * Long stress run, by hand: `CACHE_STRESS_SCALE=200 cargo test -p cache
//!   --release --test stress -j2 -- --nocapture`. The scale multiplies the
//!   operations per thread (default 1); `CACHE_STRESS_THREADS` sets the
//!   writer count (default 4). Each test prints its figures.
//! * Loom: crossbeam-epoch supports loom through its `crossbeam_loom` cfg plus
//!   its `loom` feature; this crate turns both on from its
//!   `[target.'cfg(crossbeam_loom)'.dependencies]` table, switches its own
//!   atomics to loom's under the same cfg (`src/sync.rs`), and leaves the other
//!   backends and the non-loom tests out. Run it in a separate target
//!   directory, because the cfg changes every crate:
//!
//!   ```text
//!   RUSTFLAGS="--cfg crossbeam_loom" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p cache --release --test loom -j2
//!   ```
//!
//!   (under a minute on two cores once built; without `LOOM_MAX_PREEMPTIONS`
//!   the tests default to 2. At 3, the 13 models take about a minute; at 4,
//!   about six.) Loom
//!   checks the atomics (orderings, interleavings) and, through
//!   `loom::alloc::Track` values, that every value is freed; it does not see
//!   plain memory, so publication of slot contents is covered by the
//!   Release/Acquire pairs on the group control words that carry them.
//! * Read-heavy comparison with DashMap: `cargo bench -p cache --bench
//!   read_heavy -j2`.
//! * The contention suite, every map side by side (conc-map-bench's and
//!   Caffeine's mixes, papaya and scc as outside references, bytes per entry):
//!   `cargo run --release -p cache --example contention -- --workload all`
//!   (see the example's header for the options).
//! * Hit ratio of every backend beside Bélády's optimum on synthetic traces:
//!   `cargo run --release -p cache --example hit_ratio`.

#[cfg(not(crossbeam_loom))]
pub mod backends;
pub mod epoch_map;
#[cfg(not(crossbeam_loom))]
mod stats;
mod sync;

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

pub use epoch_map::{EpochMap, Inserted, Iter, MapGuard, Pinned, pin};

/// Errors of this crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A backend name that is none of `moka`, `quick_cache`, `dashmap`, `epoch`.
    #[error("unknown cache backend {0:?} (expected moka, quick_cache, dashmap or epoch)")]
    UnknownBackend(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which backend; parses from `"moka"`, `"quick_cache"`, `"dashmap"` or
/// `"epoch"` (also in configuration files, through serde).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// [`moka::sync::Cache`].
    #[default]
    Moka,
    /// [`quick_cache::sync::Cache`].
    QuickCache,
    /// [`dashmap::DashMap`] with CLOCK eviction.
    #[serde(rename = "dashmap")]
    DashMap,
    /// [`EpochMap`] in bounded mode.
    Epoch,
}

impl Backend {
    /// All backends, in declaration order.
    pub const ALL: [Backend; 4] = [
        Backend::Moka,
        Backend::QuickCache,
        Backend::DashMap,
        Backend::Epoch,
    ];

    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Moka => "moka",
            Backend::QuickCache => "quick_cache",
            Backend::DashMap => "dashmap",
            Backend::Epoch => "epoch",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::UnknownBackend(s.to_owned()))
    }
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get` calls that found a value.
    pub hits: u64,
    /// `get` calls that found none.
    pub misses: u64,
    /// `insert` calls.
    pub inserts: u64,
    /// Entries evicted to respect the weight bound.
    pub evictions: u64,
    /// Entries now.
    pub entries: u64,
    /// Total weight now.
    pub weight: u64,
}

/// A concurrent cache bounded by total weight (bytes, or 1 per entry).
///
/// Values are cloned out; put an `Arc` inside large values.
pub trait Cache<K, V>: Send + Sync {
    /// A clone of the value for `key`.
    fn get(&self, key: &K) -> Option<V>;
    /// Inserts or replaces; `weight` counts against the bound (0 counts as 1).
    /// May evict other entries; an entry heavier than the bound is not kept.
    fn insert(&self, key: K, value: V, weight: u64);
    /// Removes `key`; returns its value.
    fn remove(&self, key: &K) -> Option<V>;
    /// Number of entries.
    fn len(&self) -> usize;
    /// Whether there are no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes every entry.
    fn clear(&self);
    /// Counters.
    fn stats(&self) -> CacheStats;
    /// Which backend this is.
    fn backend(&self) -> Backend;
}

/// Builds a cache of the given backend bounded to `max_weight`.
#[cfg(not(crossbeam_loom))]
pub fn build<K, V>(backend: Backend, max_weight: u64) -> std::sync::Arc<dyn Cache<K, V>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    use std::sync::Arc;
    match backend {
        Backend::Moka => Arc::new(backends::MokaCache::new(max_weight)),
        Backend::QuickCache => Arc::new(backends::QuickCache::new(max_weight)),
        Backend::DashMap => Arc::new(backends::DashMapCache::new(max_weight)),
        Backend::Epoch => Arc::new(backends::EpochCache::new(max_weight)),
    }
}

#[cfg(all(test, not(crossbeam_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
        }
        assert_eq!(Backend::default(), Backend::Moka);
        assert_eq!(
            "lru".parse::<Backend>(),
            Err(Error::UnknownBackend("lru".into()))
        );
    }

    #[test]
    fn backend_deserializes_from_lowercase_names() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as DeError, StrDeserializer};
        for b in Backend::ALL {
            let d: StrDeserializer<'_, DeError> = b.name().into_deserializer();
            assert_eq!(Backend::deserialize(d), Ok(b));
        }
        let d: StrDeserializer<'_, DeError> = "Moka".into_deserializer();
        assert!(Backend::deserialize(d).is_err());
    }
}
