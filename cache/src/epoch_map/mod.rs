//! `EpochMap`: a lock-free hash map on crossbeam-epoch, with an optional
//! weight-bounded cache mode.
//!
//! # Algorithm
//!
//! The map is a table of *groups* of seven slots holding the entries (hash,
//! key, value, weight) in place; the group of a key is `hash & mask`, and a full
//! group links an overflow group. Each group's 8-byte control word (occupied
//! and reserved bits per slot, seven 6-bit hash tags, a writer lock, *moved*,
//! and whether a later group of the chain holds entries) sits in a control
//! array apart from the slots, as SwissTable keeps its control bytes: the
//! control array is small enough to stay in the CPU's caches (as large as
//! DashMap's control bytes), so a hit costs one dependent miss, on its slot.
//!
//! * **Reads** load the control word (`Acquire`), compare tags, then the hash and
//!   the key in place. They take no lock, retry nothing and store to no shared
//!   location of the map (but see *Bounded mode*). A value is inline until its
//!   key's first replacement, then boxed: one more miss to read it.
//! * **Writes** take the key's chain lock (one CAS on the head group's control
//!   word; the chain is the head group and its overflow groups), write the entry
//!   into a free slot and publish it with one `Release` RMW that also releases the
//!   lock. Writes are therefore *not* lock-free: a writer preempted while holding
//!   a chain lock delays the writers of that chain (a few keys), never a reader
//!   and never another chain. A removal clears the slot's occupied bit; the slot
//!   stays reserved until a deferred function (crossbeam-epoch) has dropped the
//!   entry, once no guard can be reading it. A replacement keeps the key's slot
//!   and swaps a boxed value into it (the old value is dropped through the epoch
//!   too), so a hot key written over and over does not use up its chain's slots.
//! * **Resizing** (grow by two past 5 entries per group on average, shrink by two
//!   below one per two groups, never below the initial size) is incremental and
//!   cooperative, as in Java's `ConcurrentHashMap`: the writer that sees the load
//!   out of range installs the next table, and every write then moves a chunk of
//!   chains into it. Moving a chain takes its lock for good, copies its entries
//!   bit for bit into the next table and marks the chain *moved*; readers and
//!   writers that meet a moved chain go on in the next table. The thread that
//!   moves the last chain makes the new table the root. There is no global lock
//!   and no stop-the-world phase.
//! * **Reclamation** is crossbeam-epoch's (Fraser's epoch-based reclamation).
//!   Each table counts its pending deferred releases plus an owner token that
//!   goes once it is unlinked and the guards of that time are gone; the last
//!   count frees it.
//!
//! The raw core is `group.rs`, the only module with `unsafe`, with its
//! invariants. Builds on: K. Fraser, *Practical lock-freedom* (2004), epoch-based
//! reclamation as implemented by crossbeam-epoch; D. Lea, `java.util.concurrent.
//! ConcurrentHashMap` (JDK 8), cooperative transfer of bins to a new table; the
//! SwissTable and hashbrown layout of control bytes apart from slots (Google
//! Abseil, 2017); scc's `HashIndex` and papaya for lock-free reads of a resizable
//! table under epoch reclamation. Eviction is CLOCK (Corbató, 1968) with the
//! generalised counters of GCLOCK (Smith, 1978).
//!
//! # Consistency
//!
//! * Per key, the map is linearizable: `get`, `insert`, `remove` and
//!   `get_or_insert_with` take effect atomically at one instant between their
//!   call and return (a write at the RMW that publishes or clears its slot; a
//!   read at its load of the control word of the group where it finds the key,
//!   or of the last group of the chain). Each key has exactly one chain holding
//!   its truth at any time: in the old table until that chain has moved.
//! * A reference returned under a [`MapGuard`] stays valid (the entry is not
//!   freed) while the guard lives, even if the key is removed or replaced
//!   meanwhile; it then shows the value the key had when it was read.
//! * `len`, `weight` and statistics are striped counters: exact when no write
//!   is running, otherwise a recent approximation (never negative).
//! * Iteration is weakly consistent (like `ConcurrentHashMap`'s): it yields each
//!   key at most once, every key present for the whole iteration exactly once,
//!   and keys inserted or removed during it either way. It walks the root table
//!   it started with; through moved chains it follows each key's class along
//!   exactly one path of later tables, however many resizes happen meanwhile.
//!   It does not block writers, and writers do not invalidate it.
//! * `clear` removes what it finds, chain by chain; it is not atomic.
//!
//! # Bounded mode
//!
//! [`EpochMap::bounded`] caps the total weight. An insert that pushes the total
//! over the bound runs the CLOCK hand over the root's chains, under their locks:
//! an entry whose counter is zero is evicted (removed like any other), others
//! have their counter decremented. A read increments the entry's counter up to 3 — but
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

mod group;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use group::{Entry, Outcome, RawIter, RawMap};

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

    /// Number of groups (of seven slots) of the current table (for tests and
    /// metrics).
    pub fn groups(&self) -> usize {
        self.raw.groups(&pin().guard)
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

    /// A view of the map pinned to the epoch once, for many operations: each
    /// operation through it skips pinning (a thread-local lookup and a fenced
    /// store), and the references it returns live as long as the view. Keep it
    /// short-lived, as any guard: while it lives, nothing removed from any map
    /// is freed. The methods of the map itself pin per call.
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned {
            map: self,
            guard: pin(),
        }
    }

    /// A reference to the value for `key`, valid while `guard` lives.
    pub fn get_ref<'g, Q>(&self, key: &Q, guard: &'g MapGuard) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let e = self
            .raw
            .get(self.hash(key), |k| k.borrow() == key, true, &guard.guard)?;
        Some(e.value())
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
        self.pin().contains_key(key)
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
    /// insert may evict other entries. A weight above `u32::MAX` counts as
    /// `u32::MAX`.
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
        let hash = self.hash(&key);
        match self
            .raw
            .insert(hash, key, value, weight, false, &guard.guard)
        {
            Outcome::Replaced(v) => Inserted::Replaced(v),
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
        match self.get_or_insert_entry(key, make, &guard) {
            Ok(e) => e.value().clone(),
            Err(value) => value,
        }
    }

    /// The entry for `key`, inserting `make()` (weight 1) first if absent; in a
    /// bounded map of bound 0, where nothing fits, `make()`'s value back.
    fn get_or_insert_entry<'g>(
        &self,
        key: K,
        make: impl FnOnce() -> V,
        guard: &'g MapGuard,
    ) -> Result<&'g Entry<K, V>, V> {
        let hash = self.hash(&key);
        if let Some(e) = self.raw.get(hash, |k| *k == key, true, &guard.guard) {
            return Ok(e);
        }
        let value = make();
        if self.raw.max_weight() == 0 {
            return Err(value); // nothing fits
        }
        match self.raw.insert(hash, key, value, 1, true, &guard.guard) {
            Outcome::Existing(e) | Outcome::Inserted(e) => Ok(e),
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
            .remove(self.hash(key), |k: &K| k.borrow() == key, &guard.guard)
            .map(|e| e.value())
    }

    /// Removes the entries present when called (not atomic; see module docs).
    pub fn clear(&self) {
        let guard = pin();
        for e in self.raw.iter(&guard.guard) {
            self.raw
                .remove(self.hash(&e.key), |k| k == &e.key, &guard.guard);
        }
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

/// An [`EpochMap`] pinned to the epoch: see [`EpochMap::pin`].
pub struct Pinned<'m, K, V, S = RandomState> {
    map: &'m EpochMap<K, V, S>,
    guard: MapGuard,
}

impl<K, V, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").field("map", self.map).finish()
    }
}

impl<K, V, S> Pinned<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_ref(key, &self.guard)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.map.hash(key);
        let eq = |k: &K| k.borrow() == key;
        self.map
            .raw
            .get(hash, eq, false, &self.guard.guard)
            .is_some()
    }

    /// Inserts with weight 1; returns the replaced value.
    pub fn insert(&self, key: K, value: V) -> Option<&V> {
        match self.map.insert_ref(key, value, 1, &self.guard) {
            Inserted::Replaced(old) => Some(old),
            _ => None,
        }
    }

    /// Inserts with `weight`; reports what happened (see
    /// [`EpochMap::insert_weighted`]).
    pub fn insert_weighted(&self, key: K, value: V, weight: u64) -> Inserted<'_, V> {
        self.map.insert_ref(key, value, weight, &self.guard)
    }

    /// The value for `key`, inserting `make()` (weight 1) first if the key is
    /// absent; atomic, as [`EpochMap::get_or_insert_with`]. In a bounded map of
    /// bound 0, where nothing fits, `Err` with `make()`'s value.
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> Result<&V, V> {
        self.map
            .get_or_insert_entry(key, make, &self.guard)
            .map(|e| e.value())
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove_ref(key, &self.guard)
    }

    /// Iterates over `(key, value)` pairs, weakly consistently.
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.map.iter(&self.guard)
    }

    /// The map.
    pub fn map(&self) -> &EpochMap<K, V, S> {
        self.map
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

impl<'g, K: Eq, V> Iterator for Iter<'g, K, V> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|e| (&e.key, e.value()))
    }
}
