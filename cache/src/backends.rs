//! The four [`Cache`] backends: thin adapters over moka, quick_cache, DashMap
//! (with a CLOCK ring of this crate's design) and [`EpochMap`].

use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use crate::stats::Counters;
use crate::{Backend, Cache, CacheStats, EpochMap, Inserted};

/// Weight as the backends count it: at least 1.
#[inline]
fn weight(w: u64) -> u64 {
    w.max(1)
}

/// A value with the weight it was inserted with.
#[derive(Clone)]
struct Weighted<V> {
    value: V,
    weight: u64,
}

// ---------------------------------------------------------------- moka

/// [`moka::sync::Cache`] bounded by weight (moka's weigher is `u32`, so
/// larger weights are clamped to `u32::MAX`).
pub struct MokaCache<K, V> {
    inner: moka::sync::Cache<K, Weighted<V>>,
    counters: Counters,
    evictions: Arc<AtomicU64>,
}

impl<K, V> MokaCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache bounded to `max_weight`.
    pub fn new(max_weight: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let ev = Arc::clone(&evictions);
        let inner = moka::sync::Cache::builder()
            .max_capacity(max_weight)
            .weigher(|_k: &K, v: &Weighted<V>| u32::try_from(v.weight).unwrap_or(u32::MAX))
            .eviction_listener(move |_k, _v, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    ev.fetch_add(1, Relaxed);
                }
            })
            .build();
        Self {
            inner,
            counters: Counters::new(),
            evictions,
        }
    }
}

impl<K, V> Cache<K, V> for MokaCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Option<V> {
        let v = self.inner.get(key).map(|w| w.value);
        self.counters.get(v.is_some());
        v
    }

    fn insert(&self, key: K, value: V, w: u64) {
        self.counters.insert();
        let weight = weight(w);
        self.inner.insert(key, Weighted { value, weight });
    }

    fn remove(&self, key: &K) -> Option<V> {
        self.inner.remove(key).map(|w| w.value)
    }

    fn len(&self) -> usize {
        self.inner.run_pending_tasks();
        self.inner.entry_count() as usize
    }

    fn clear(&self) {
        self.inner.invalidate_all();
        self.inner.run_pending_tasks();
    }

    fn stats(&self) -> CacheStats {
        self.inner.run_pending_tasks();
        CacheStats {
            evictions: self.evictions.load(Relaxed),
            entries: self.inner.entry_count(),
            weight: self.inner.weighted_size(),
            ..self.counters.snapshot()
        }
    }

    fn backend(&self) -> Backend {
        Backend::Moka
    }
}

// ---------------------------------------------------------- quick_cache

#[derive(Clone)]
struct QcWeighter;

impl<K, V> quick_cache::Weighter<K, Weighted<V>> for QcWeighter {
    fn weight(&self, _key: &K, val: &Weighted<V>) -> u64 {
        val.weight
    }
}

#[derive(Clone)]
struct QcLifecycle(Arc<AtomicU64>);

impl<K, V> quick_cache::Lifecycle<K, V> for QcLifecycle {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: K, _val: V) {
        self.0.fetch_add(1, Relaxed);
    }
}

type QcInner<K, V> = quick_cache::sync::Cache<
    K,
    Weighted<V>,
    QcWeighter,
    quick_cache::DefaultHashBuilder,
    QcLifecycle,
>;

/// [`quick_cache::sync::Cache`] bounded by weight.
pub struct QuickCache<K, V> {
    inner: QcInner<K, V>,
    counters: Counters,
    evictions: Arc<AtomicU64>,
}

impl<K, V> QuickCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache bounded to `max_weight`. quick_cache sizes its queues from an
    /// estimated item count: up to 2^20 the bound is taken as an entry count,
    /// beyond it as bytes of about 4 KiB entries.
    pub fn new(max_weight: u64) -> Self {
        let items = if max_weight <= 1 << 20 {
            max_weight
        } else {
            (max_weight / 4096).max(1 << 20)
        };
        Self::with_estimated_items(max_weight, items as usize)
    }

    /// A cache bounded to `max_weight`, sized for about `items` entries.
    pub fn with_estimated_items(max_weight: u64, items: usize) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let build = |weight: u64| {
            QcInner::with(
                items.max(1),
                weight,
                QcWeighter,
                quick_cache::DefaultHashBuilder::default(),
                QcLifecycle(Arc::clone(&evictions)),
            )
        };
        // quick_cache gives each shard the bound divided by the shard count, rounded up, so the
        // total could exceed `max_weight` by up to one per shard. Round the bound down to a
        // multiple of the shard count instead (the count depends only on `items`).
        let probe = build(max_weight);
        let shards = probe.num_shards() as u64;
        let inner = if max_weight % shards == 0 || max_weight < shards {
            probe
        } else {
            build(max_weight / shards * shards)
        };
        Self {
            inner,
            counters: Counters::new(),
            evictions,
        }
    }
}

impl<K, V> Cache<K, V> for QuickCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Option<V> {
        let v = self.inner.get(key).map(|w| w.value);
        self.counters.get(v.is_some());
        v
    }

    fn insert(&self, key: K, value: V, w: u64) {
        self.counters.insert();
        let weight = weight(w);
        self.inner.insert(key, Weighted { value, weight });
    }

    fn remove(&self, key: &K) -> Option<V> {
        self.inner.remove(key).map(|(_, w)| w.value)
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn clear(&self) {
        self.inner.clear();
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            evictions: self.evictions.load(Relaxed),
            entries: self.inner.len() as u64,
            weight: self.inner.weight(),
            ..self.counters.snapshot()
        }
    }

    fn backend(&self) -> Backend {
        Backend::QuickCache
    }
}

// -------------------------------------------------------------- DashMap

/// A DashMap value: the value, its weight, its insertion generation and a
/// CLOCK reference bit.
struct DmSlot<V> {
    value: V,
    weight: u64,
    generation: u64,
    referenced: AtomicBool,
}

/// [`DashMap`] with CLOCK eviction.
///
/// Every insert appends `(key, generation)` to a ring (a `VecDeque` behind a
/// mutex). When the total weight exceeds the bound, the inserting thread pops
/// the ring's front: a record whose generation no longer matches the map is
/// stale and dropped; an entry whose reference bit is set gets it cleared and
/// goes to the back (a second chance); otherwise it is evicted. Reads take only
/// DashMap's shard read lock and set the reference bit when it is clear.
/// Inserts serialise on the ring mutex: this is the simple baseline, not a
/// contender.
pub struct DashMapCache<K, V> {
    map: DashMap<K, DmSlot<V>>,
    ring: Mutex<VecDeque<(K, u64)>>,
    generation: AtomicU64,
    weight: AtomicU64,
    max_weight: u64,
    evictions: AtomicU64,
    counters: Counters,
}

impl<K, V> DashMapCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache bounded to `max_weight`.
    pub fn new(max_weight: u64) -> Self {
        Self {
            map: DashMap::new(),
            ring: Mutex::new(VecDeque::new()),
            generation: AtomicU64::new(0),
            weight: AtomicU64::new(0),
            max_weight,
            evictions: AtomicU64::new(0),
            counters: Counters::new(),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<(K, u64)>> {
        // A panic while holding the ring leaves it consistent enough (stale
        // records are tolerated), so a poisoned lock is used as is.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn evict(&self) {
        let mut ring = self.ring();
        // Each record is looked at most twice per call (second chance).
        let mut budget = ring.len() * 2 + 1;
        while self.weight.load(Relaxed) > self.max_weight && budget > 0 {
            budget -= 1;
            let Some((key, generation)) = ring.pop_front() else {
                break;
            };
            let second_chance = match self.map.get(&key) {
                Some(s) if s.generation == generation => s.referenced.swap(false, Relaxed),
                _ => continue, // stale record
            };
            if second_chance {
                ring.push_back((key, generation));
                continue;
            }
            if let Some((_, s)) = self.map.remove_if(&key, |_, s| s.generation == generation) {
                self.weight.fetch_sub(s.weight, Relaxed);
                self.evictions.fetch_add(1, Relaxed);
            }
        }
        // Drop stale records when they dominate.
        if ring.len() > 2 * self.map.len() + 64 {
            ring.retain(|(k, g)| self.map.get(k).is_some_and(|s| s.generation == *g));
        }
    }
}

impl<K, V> Cache<K, V> for DashMapCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Option<V> {
        let v = self.map.get(key).map(|s| {
            if !s.referenced.load(Relaxed) {
                s.referenced.store(true, Relaxed);
            }
            s.value.clone()
        });
        self.counters.get(v.is_some());
        v
    }

    fn insert(&self, key: K, value: V, w: u64) {
        self.counters.insert();
        let weight = weight(w);
        if weight > self.max_weight {
            self.remove(&key);
            return;
        }
        let generation = self.generation.fetch_add(1, Relaxed);
        let slot = DmSlot {
            value,
            weight,
            generation,
            referenced: AtomicBool::new(false),
        };
        self.weight.fetch_add(weight, Relaxed);
        if let Some(old) = self.map.insert(key.clone(), slot) {
            self.weight.fetch_sub(old.weight, Relaxed);
        }
        self.ring().push_back((key, generation));
        if self.weight.load(Relaxed) > self.max_weight {
            self.evict();
        }
    }

    fn remove(&self, key: &K) -> Option<V> {
        let (_, s) = self.map.remove(key)?;
        self.weight.fetch_sub(s.weight, Relaxed);
        Some(s.value)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn clear(&self) {
        let mut ring = self.ring();
        self.map.retain(|_, s| {
            self.weight.fetch_sub(s.weight, Relaxed);
            false
        });
        ring.clear();
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            evictions: self.evictions.load(Relaxed),
            entries: self.map.len() as u64,
            weight: self.weight.load(Relaxed),
            ..self.counters.snapshot()
        }
    }

    fn backend(&self) -> Backend {
        Backend::DashMap
    }
}

// ---------------------------------------------------------------- epoch

/// [`EpochMap`] in bounded mode.
pub struct EpochCache<K, V> {
    map: EpochMap<K, V>,
    counters: Counters,
}

impl<K, V> EpochCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache bounded to `max_weight`.
    pub fn new(max_weight: u64) -> Self {
        Self {
            map: EpochMap::bounded(max_weight),
            counters: Counters::new(),
        }
    }

    /// The map underneath.
    pub fn map(&self) -> &EpochMap<K, V> {
        &self.map
    }
}

impl<K, V> Cache<K, V> for EpochCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn get(&self, key: &K) -> Option<V> {
        let v = self.map.get(key);
        self.counters.get(v.is_some());
        v
    }

    fn insert(&self, key: K, value: V, w: u64) {
        self.counters.insert();
        let guard = self.map.guard();
        let _: Inserted<'_, V> = self.map.insert_ref(key, value, weight(w), &guard);
    }

    fn remove(&self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn clear(&self) {
        self.map.clear();
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            evictions: self.map.evictions(),
            entries: self.map.len() as u64,
            weight: self.map.weight(),
            ..self.counters.snapshot()
        }
    }

    fn backend(&self) -> Backend {
        Backend::Epoch
    }
}
