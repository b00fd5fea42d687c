//! `EpochMap`: a lock-free hash map on crossbeam-epoch, with an optional
//! weight-bounded cache mode.
//!
//! # Algorithm
//!
//! The map is an array of *buckets* (a power of two of them); the bucket of a
//! key is `hash & mask`. Each bucket slot is an atomic pointer to an
//! **immutable** bucket: null when empty, the entry itself when the bucket
//! holds one entry (the common case, tagged in the pointer's low bits), and
//! otherwise one allocation holding `(hash, entry pointer)` pairs. Entries
//! (hash, key, value, weight) are allocated once and never change.
//!
//! * **Reads** pin the epoch, load the slot and scan the bucket, comparing the
//!   stored hashes first and keys only on a hash match. They take no lock, retry
//!   nothing and store to no shared location of the map (but see *Bounded mode*).
//! * **Writes** (insert, replace, remove) are copy-on-write: build the bucket's
//!   next version and install it with one compare-and-swap on the slot; on
//!   failure, retry against the bucket that won. The replaced bucket and any
//!   replaced or removed entry are handed to the epoch collector, which frees
//!   them once every thread that could have seen them has unpinned.
//!   A CAS fails only because another write to the same bucket succeeded, so
//!   writes are lock-free.
//! * **Resizing** (grow by two past load factor 3/4, shrink by two at 1/8,
//!   never below the initial size) is incremental and cooperative, after the
//!   forwarding scheme of Java's `ConcurrentHashMap` and Click's non-blocking
//!   hash table, with target-driven bucket migration. A writer that sees the load
//!   factor out of range allocates a table of the new size whose slots are all
//!   tagged *uninitialised*, and installs it with a CAS on the old table's
//!   `next`. A target slot is built by *freezing* its one (growing) or two
//!   (shrinking) source slots — a CAS that tags the source pointer, after which
//!   writes to it fail — and then CAS-installing a new bucket holding the source
//!   entries that hash to that target (pointers are copied; entries are not).
//!   Every writer that meets a frozen slot builds its own target slot and
//!   continues there, and every write also builds a chunk of target slots; the
//!   thread that builds the last one makes the new table the root and retires
//!   the old one. Nobody waits for a migration: until a target slot is built the
//!   frozen source bucket is still the live one for its keys, so readers read it
//!   and writers build the target themselves. There is no global lock and no
//!   stop-the-world phase; a resize costs each writer a bounded amount of work.
//!   A migration advances with writes (removes that miss included); while one
//!   is pending, lookups of keys whose target is built take one more hop.
//! * **Reclamation** is crossbeam-epoch's (Fraser's epoch-based reclamation):
//!   buckets and entries are retired by the thread whose CAS unlinked them, old
//!   tables with their frozen buckets by the thread that finished the
//!   migration. Dropping the map finishes any migration and frees what is left.
//!   Each entry is freed exactly once, after no guard can reach it. Buckets store
//!   each entry's hash beside its pointer (and a frozen single-entry pointer
//!   records which of the two growth targets its entry goes to), so that a
//!   reader of a frozen bucket dereferences only entries whose own target slot
//!   it saw unbuilt — the others may already be removed from it and freed.
//!
//! Builds on: K. Fraser, *Practical lock-freedom* (2004), epoch-based
//! reclamation as implemented by crossbeam-epoch; D. Lea, `java.util.concurrent.
//! ConcurrentHashMap` (JDK 8), forwarding nodes and cooperative transfer;
//! C. Click, *A lock-free wait-free hash table* (2007), incremental copying of
//! a table under concurrent access; copy-on-write buckets as in RCU-protected
//! hash tables (Triplett, McKenney, Walpole, *Resizable, scalable, concurrent
//! hash tables via relativistic programming*, 2011). Eviction is CLOCK
//! (Corbató, 1968) with the generalised counters of GCLOCK (Smith, 1978).
//!
//! # Consistency
//!
//! * Per key, the map is linearizable: `get`, `insert`, `remove` and
//!   `get_or_insert_with` take effect atomically at one instant between their
//!   call and return (a write at its successful CAS; a read at its load of the
//!   live bucket). Each key has exactly one live bucket at any time.
//! * A reference returned under a [`MapGuard`] stays valid (the entry is not
//!   freed) while the guard lives, even if the key is removed or replaced
//!   meanwhile; it then shows the value the key had when it was read.
//! * `len`, `weight` and statistics are striped counters: exact when no write
//!   is running, otherwise a recent approximation (never negative).
//! * Iteration is weakly consistent (like `ConcurrentHashMap`'s): it yields each
//!   key at most once, every key present for the whole iteration exactly once,
//!   and keys inserted or removed during it either way. It walks the root table
//!   it started with; through frozen slots it follows each key's class along
//!   exactly one path of later tables, however many resizes happen meanwhile. It does not block
//!   writers, and writers do not invalidate it.
//! * `clear` removes what it finds, bucket by bucket; it is not atomic.
//!
//! # Bounded mode
//!
//! [`EpochMap::bounded`] caps the total weight. An insert that pushes the total
//! over the bound runs the CLOCK hand over the root buckets: an entry whose
//! counter is zero is evicted (a CAS removal like any other), others have their
//! counter decremented. A read increments the entry's counter up to 3 — but
//! only when below 3, so hot entries stop being written once saturated and the
//! read path stays free of contended stores. That counter is the only shared
//! store a read ever makes. An entry heavier than the bound is not inserted.
//!
//! # Loom
//!
//! Under `--cfg crossbeam_loom` the map's own atomics are loom's, and
//! crossbeam-epoch (with its `loom` feature, enabled by this crate's
//! `cfg(crossbeam_loom)` dependency table) uses loom too; see the crate docs
//! for the command.

// The next raw core (std atomics and cells only, so not in loom builds yet).
#[cfg(not(crossbeam_loom))]
mod group;
mod raw;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use raw::{Entry, Outcome, RawIter, RawMap};

/// Default capacity of [`EpochMap::new`], in entries.
const DEFAULT_CAPACITY: usize = 16;

/// A pinned epoch: while it lives, nothing read from any [`EpochMap`] under it
/// is freed. Hold it briefly; a long-lived guard delays reclamation for the
/// whole process.
pub struct MapGuard {
    guard: crossbeam_epoch::Guard,
}

impl fmt::Debug for MapGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MapGuard")
    }
}

/// Pins the current thread. All `EpochMap`s share crossbeam-epoch's default
/// collector, so one guard serves every map.
pub fn pin() -> MapGuard {
    MapGuard {
        guard: crossbeam_epoch::pin(),
    }
}

/// Pushes this thread's retired objects to the global epoch collector and
/// tries to advance the epoch and free what no guard can reach any more.
/// Reclamation also happens on its own as threads pin; tests and shutdown
/// paths call this to make it prompt.
pub fn flush() {
    crossbeam_epoch::pin().flush();
}

/// A lock-free concurrent hash map with epoch-based reclamation and an
/// optional weight bound. See the [module docs](self) for the algorithm and
/// its guarantees.
pub struct EpochMap<K, V, S = RandomState> {
    raw: RawMap<K, V>,
    hasher: S,
}

impl<K, V, S> fmt::Debug for EpochMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochMap")
            .field("len", &self.raw.len())
            .field("weight", &self.raw.weight())
            .finish_non_exhaustive()
    }
}

impl<K, V> EpochMap<K, V> {
    /// An empty, unbounded map.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty, unbounded map sized for `capacity` entries (it never shrinks
    /// below that).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, RandomState::new())
    }

    /// An empty cache whose entries' weights sum to at most `max_weight`.
    pub fn bounded(max_weight: u64) -> Self {
        Self::bounded_with_hasher(max_weight, DEFAULT_CAPACITY, RandomState::new())
    }
}

impl<K, V> Default for EpochMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> EpochMap<K, V, S> {
    /// An empty, unbounded map using `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(DEFAULT_CAPACITY, hasher)
    }

    /// An empty, unbounded map sized for `capacity` entries, using `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self {
            raw: RawMap::new(capacity, u64::MAX),
            hasher,
        }
    }

    /// An empty cache bounded to `max_weight`, initially sized for `capacity`
    /// entries, using `hasher`. `max_weight` of `u64::MAX` means unbounded.
    pub fn bounded_with_hasher(max_weight: u64, capacity: usize, hasher: S) -> Self {
        Self {
            raw: RawMap::new(capacity, max_weight),
            hasher,
        }
    }

    /// Number of entries (see the module docs on consistency).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the entries' weights. Weights matter in bounded mode only: an
    /// unbounded map counts every entry as 1 (its weight is its length).
    pub fn weight(&self) -> u64 {
        self.raw.weight()
    }

    /// The weight bound, `None` when unbounded.
    pub fn max_weight(&self) -> Option<u64> {
        self.raw.is_bounded().then(|| self.raw.max_weight())
    }

    /// Entries evicted by the bound so far.
    pub fn evictions(&self) -> u64 {
        self.raw.evictions()
    }

    /// Resizes (grow or shrink) completed so far.
    pub fn resizes(&self) -> u64 {
        self.raw.resizes()
    }

    /// Number of buckets of the current table (for tests and metrics).
    pub fn buckets(&self) -> usize {
        self.raw.buckets(&pin().guard)
    }

    /// Whether a resize is under way (for tests and metrics).
    pub fn is_resizing(&self) -> bool {
        self.raw.is_resizing(&pin().guard)
    }

    /// The hasher.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }
}

impl<K, V, S> EpochMap<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Pins the epoch for the `*_ref` and `iter` methods; same as [`pin`].
    pub fn guard(&self) -> MapGuard {
        pin()
    }

    /// A reference to the value for `key`, valid while `guard` lives.
    pub fn get_ref<'g, Q>(&self, key: &Q, guard: &'g MapGuard) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let e = self
            .raw
            .get(self.hash(key), |k| k.borrow() == key, &guard.guard)?;
        if self.raw.is_bounded() {
            e.touch();
        }
        Some(&e.value)
    }

    /// Applies `f` to the value for `key`.
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = pin();
        self.get_ref(key, &guard).map(f)
    }

    /// A clone of the value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_with(key, V::clone)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = pin();
        self.raw
            .get(self.hash(key), |k| k.borrow() == key, &guard.guard)
            .is_some()
    }

    /// Inserts with weight 1; returns the replaced value.
    pub fn insert(&self, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        self.insert_weighted(key, value, 1)
    }

    /// Inserts with `weight`; returns the replaced value. In bounded mode an
    /// entry heavier than the bound is dropped (and `None` returned), and the
    /// insert may evict other entries.
    pub fn insert_weighted(&self, key: K, value: V, weight: u64) -> Option<V>
    where
        V: Clone,
    {
        let guard = pin();
        match self.insert_ref(key, value, weight, &guard) {
            Inserted::Replaced(old) => Some(old.clone()),
            _ => None,
        }
    }

    /// Inserts with `weight` without cloning; reports what happened, with a
    /// reference to the replaced value valid while `guard` lives.
    pub fn insert_ref<'g>(
        &self,
        key: K,
        value: V,
        weight: u64,
        guard: &'g MapGuard,
    ) -> Inserted<'g, V> {
        let entry = Entry::new(self.hash(&key), key, value, weight);
        match self.raw.insert(entry, false, &guard.guard) {
            Outcome::Replaced(e) => Inserted::Replaced(&e.value),
            Outcome::Rejected => Inserted::Rejected,
            Outcome::Inserted(_) => Inserted::New,
            other => unreachable!("upsert: {}", other.name()),
        }
    }

    /// Returns the value for `key`, inserting `make()` (weight 1) first if the
    /// key is absent. Atomic: concurrent callers for one key all get the same
    /// value, and `make` runs at most once per caller.
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let guard = pin();
        let hash = self.hash(&key);
        if let Some(e) = self.raw.get(hash, |k| *k == key, &guard.guard) {
            if self.raw.is_bounded() {
                e.touch();
            }
            return e.value.clone();
        }
        let value = make();
        if self.raw.max_weight() == 0 {
            return value; // nothing fits
        }
        let entry = Entry::new(hash, key, value, 1);
        match self.raw.insert(entry, true, &guard.guard) {
            Outcome::Existing(e) | Outcome::Inserted(e) => e.value.clone(),
            other => unreachable!("insert-if-absent of weight 1: {}", other.name()),
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let guard = pin();
        self.remove_ref(key, &guard).cloned()
    }

    /// Removes `key`; returns a reference to its value valid while `guard`
    /// lives.
    pub fn remove_ref<'g, Q>(&self, key: &Q, guard: &'g MapGuard) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.raw
            .remove(self.hash(key), &|k: &K| k.borrow() == key, &guard.guard)
            .map(|e| &e.value)
    }

    /// Removes the entries present when called (not atomic; see module docs).
    pub fn clear(&self) {
        self.raw.clear(&pin().guard);
    }

    /// Iterates over `(key, value)` pairs, weakly consistently.
    pub fn iter<'g>(&'g self, guard: &'g MapGuard) -> Iter<'g, K, V> {
        Iter {
            inner: self.raw.iter(&guard.guard),
        }
    }

    /// Calls `f` on every `(key, value)` pair, weakly consistently.
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let guard = pin();
        for (k, v) in self.iter(&guard) {
            f(k, v);
        }
    }
}

/// What [`EpochMap::insert_ref`] did.
#[derive(Debug)]
pub enum Inserted<'g, V> {
    /// The key was absent.
    New,
    /// The key was present; this was its value.
    Replaced(&'g V),
    /// Bounded mode: the entry alone outweighs the bound and was dropped.
    Rejected,
}

/// Iterator over an [`EpochMap`]; see [`EpochMap::iter`].
pub struct Iter<'g, K, V> {
    inner: RawIter<'g, K, V>,
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter")
    }
}

impl<'g, K, V> Iterator for Iter<'g, K, V> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|e| (&e.key, &e.value))
    }
}
