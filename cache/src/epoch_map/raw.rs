//! The epoch map's raw core: tables, buckets, migration and reclamation. The only
//! module of the crate allowed `unsafe`; [`super::EpochMap`] is the safe API over it.
//!
//! See the module docs of [`super`] for the algorithm, its sources and its
//! guarantees. The invariants the `unsafe` below relies on are:
//!
//! * **I1 (publication).** A table, bucket or entry is fully written before the
//!   `Release` (or `AcqRel`) store/CAS that first makes it reachable, and every
//!   load that leads to a dereference is `Acquire`.
//! * **I2 (immutability).** A bucket never changes after it is published; writers
//!   replace it whole. An entry's `hash`, `key`, `value` and `weight` never change
//!   either (only its CLOCK counter, an atomic).
//! * **I3 (retirement).** An object is handed to the epoch collector (`defer_*`)
//!   only after it was unlinked from the place where it is *live*, by the one
//!   thread whose CAS unlinked it. A bucket is live in its slot; a frozen bucket
//!   lives until its whole table is retired; an entry lives while it is in the
//!   live (truth) bucket for its key, see I4. A guard pinned before the retirement
//!   keeps it allocated ([crossbeam-epoch's guarantee]), so anything loaded under a
//!   guard from a place where it was live stays readable while that guard lives.
//! * **I4 (truth).** During a resize from table `t` to `t.next = n`, the live
//!   bucket for hash `h` is `n[h & n.mask]` once that slot is initialised, and
//!   `t[h & t.mask]` (frozen or not) before. Source slots are frozen before any
//!   target built from them is published, and a frozen slot never changes again.
//!   So an entry in a frozen bucket is dereferenced only after its own target slot
//!   was seen uninitialised *under the current guard*: it cannot have been
//!   retired before that guard was pinned. Buckets keep each entry's hash beside
//!   its pointer, and a frozen single-entry pointer carries `HI` (set by the
//!   freezer, which may still dereference the live entry), so that this filter
//!   needs no dereference.
//!
//! [crossbeam-epoch's guarantee]: crossbeam_epoch::Guard::defer_destroy
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crossbeam_epoch::{Atomic, Guard, Owned, Pointer, Shared, unprotected};

use crate::sync::{
    AtomicU8, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
    StripedCounter,
};

/// Tag on a bucket pointer: the slot is frozen, its table is being migrated and
/// this bucket no longer accepts writes.
const FROZEN: usize = 0b01;
/// Tag on a null bucket pointer of a resize target: not built from its sources yet.
const UNINIT: usize = 0b10;
/// Tag on a frozen single-entry pointer (never on a null one, so it cannot be
/// confused with `UNINIT`): when growing, the entry goes to the upper target.
const HI: usize = 0b10;
/// Tag on a bucket pointer that points straight at the bucket's only entry
/// instead of at a slot array: one pointer less to chase in the common case.
const SINGLE: usize = 0b100;
const TAGS: usize = 0b111;

/// Target slots a writer initialises per call to [`RawMap::help_resize`].
#[cfg(not(crossbeam_loom))]
const MIGRATE_CHUNK: usize = 16;
#[cfg(crossbeam_loom)]
const MIGRATE_CHUNK: usize = 1;

/// Smallest table.
pub(crate) const MIN_BUCKETS: usize = 2;

/// Largest CLOCK counter: an entry read this many times since the hand last
/// passed survives this many passes.
const CLOCK_MAX: u8 = 3;

/// One key/value pair. Allocated once, never mutated (but for `clock`), shared by
/// pointer between bucket versions and between tables during a migration.
/// Aligned to 8 so a pointer to it has three tag bits (see `SINGLE`).
#[repr(align(8))]
pub(crate) struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) weight: u64,
    /// GCLOCK counter, bounded mode only. `Relaxed` throughout: it is a hint for
    /// the eviction hand and orders nothing.
    clock: AtomicU8,
}

impl<K, V> Entry<K, V> {
    pub(crate) fn new(hash: u64, key: K, value: V, weight: u64) -> Box<Self> {
        Box::new(Self {
            hash,
            key,
            value,
            weight,
            clock: AtomicU8::new(0),
        })
    }

    /// Records a read for the eviction hand. Writes only while the counter is
    /// below its ceiling, so a hot entry's cache line stops being written once it
    /// is saturated.
    #[inline]
    pub(crate) fn touch(&self) {
        let c = self.clock.load(Relaxed);
        if c < CLOCK_MAX {
            self.clock.store(c + 1, Relaxed);
        }
    }
}

/// A bucket's reference to an entry, with the entry's hash kept beside the
/// pointer (see I4). Aligned to 8 so bucket pointers have three tag bits.
#[repr(C, align(8))]
struct Slot<K, V> {
    hash: u64,
    entry: NonNull<Entry<K, V>>,
}

impl<K, V> Clone for Slot<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Slot<K, V> {}

// SAFETY: a slot is a hash and a pointer to an entry. Through it other
// threads get `&K`/`&V` (needs `Sync`) and may run the entry's destructor
// (needs `Send`); the bounds require both.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Slot<K, V> {}
// SAFETY: as for `Send`; a slot has no interior mutability.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Slot<K, V> {}

/// An immutable bucket version: one allocation holding its length and its
/// slots (crossbeam-epoch's array `Pointable`). An empty bucket is a null
/// pointer, never an allocation. Freeing a bucket frees the array only, never
/// the entries. All elements are initialised before the bucket is published.
type Bucket<K, V> = [MaybeUninit<Slot<K, V>>];

/// Whether `p` is an uninitialised target slot.
#[inline]
fn is_uninit<K, V>(p: Shared<'_, Bucket<K, V>>) -> bool {
    p.tag() & UNINIT != 0 && p.with_tag(0).is_null()
}

/// The entry of a single-entry bucket pointer.
#[inline]
fn single<K, V>(p: Shared<'_, Bucket<K, V>>) -> Option<NonNull<Entry<K, V>>> {
    if p.tag() & SINGLE == 0 {
        return None;
    }
    NonNull::new((p.into_usize() & !TAGS) as *mut Entry<K, V>)
}

/// A bucket pointer to the single entry `e`.
#[inline]
fn single_bucket<'g, K, V>(e: NonNull<Entry<K, V>>) -> Shared<'g, Bucket<K, V>> {
    // SAFETY: an aligned (to 8, see `Entry`) non-null address with the SINGLE
    // tag. It is never dereferenced as a bucket: every reader checks `single`
    // first, and `free_unpublished` and the retire paths skip it.
    unsafe { Shared::from_usize(e.as_ptr() as usize | SINGLE) }
}

/// Makes a bucket of the `n` slots in `slots`: null when `n == 0`, a single
/// entry pointer when `n == 1`, otherwise a slot array.
fn new_bucket<'g, K, V>(
    n: usize,
    mut slots: impl Iterator<Item = Slot<K, V>>,
    guard: &'g Guard,
) -> Shared<'g, Bucket<K, V>> {
    match n {
        0 => return Shared::null(),
        1 => return single_bucket(slots.next().expect("bucket under-filled").entry),
        _ => {}
    }
    let mut b = Owned::<Bucket<K, V>>::init(n);
    let mut filled = 0;
    for (dst, src) in b.iter_mut().zip(slots) {
        dst.write(src);
        filled += 1;
    }
    assert_eq!(filled, n, "bucket under-filled");
    b.into_shared(guard)
}

/// Frees a bucket that was never published (a lost CAS).
///
/// # Safety
/// `b` must come from [`new_bucket`] and never have been shared.
unsafe fn free_unpublished<K, V>(b: Shared<'_, Bucket<K, V>>) {
    if !b.is_null() && single(b).is_none() {
        // SAFETY: an array of ours that nobody else has seen.
        drop(unsafe { b.into_owned() });
    }
}

/// Retires a bucket version unlinked by this thread: frees its slot array, if
/// it has one, once no guard can see it. Entries are not touched.
///
/// # Safety
/// The caller's CAS unlinked `b` from its slot (I3).
unsafe fn retire_bucket<K, V>(b: Shared<'_, Bucket<K, V>>, guard: &Guard) {
    if !b.is_null() && single(b).is_none() {
        // SAFETY: unlinked by the caller, so retired once (I3).
        unsafe { guard.defer_destroy(b.with_tag(0)) };
    }
}

/// The slots of a bucket pointer, ignoring `FROZEN`/`HI` (null is empty).
enum Slots<'g, K, V> {
    One([Slot<K, V>; 1]),
    Many(&'g [Slot<K, V>]),
}

impl<K, V> std::ops::Deref for Slots<'_, K, V> {
    type Target = [Slot<K, V>];
    fn deref(&self) -> &[Slot<K, V>] {
        match self {
            Slots::One(one) => one,
            Slots::Many(many) => many,
        }
    }
}

/// The slots of a bucket pointer.
///
/// # Safety
/// `b` must be null or a bucket from [`new_bucket`] not freed for `'g` (I3),
/// and for a single-entry bucket the entry must be live for `'g` (it is
/// dereferenced for its hash).
unsafe fn slots<'g, K, V>(b: Shared<'g, Bucket<K, V>>) -> Slots<'g, K, V> {
    if let Some(e) = single(b) {
        // SAFETY: the caller guarantees the entry is live.
        let hash = unsafe { e.as_ref() }.hash;
        return Slots::One([Slot { hash, entry: e }]);
    }
    // SAFETY: the caller guarantees the pointee is live for 'g.
    match unsafe { b.with_tag(0).as_ref() } {
        None => Slots::Many(&[]),
        // SAFETY: `new_bucket` initialised every element (it asserts so), and
        // `MaybeUninit<T>` has the layout of `T`.
        Some(arr) => Slots::Many(unsafe {
            &*(arr as *const [MaybeUninit<Slot<K, V>>] as *const [Slot<K, V>])
        }),
    }
}

/// For a frozen source bucket `b` of a resize from `n_old` to `n_new` slots:
/// the entries that belong to target `j`, without dereferencing any other.
///
/// # Safety
/// `b` must be frozen, loaded under a guard living for `'g`, and target `j`
/// must have been seen uninitialised under that guard (I4: so the entries
/// that belong to `j` are live).
unsafe fn frozen_slots_for<'g, K, V>(
    b: Shared<'g, Bucket<K, V>>,
    n_old: usize,
    n_new: usize,
    j: usize,
) -> Slots<'g, K, V> {
    if single(b).is_some() {
        // Growing, the entry belongs to the upper target iff HI; shrinking,
        // there is one target.
        let mine = n_new < n_old || (b.tag() & HI != 0) == (j >= n_old);
        return if mine {
            // SAFETY: the entry belongs to `j`, which is uninitialised (I4).
            unsafe { slots(b) }
        } else {
            Slots::Many(&[])
        };
    }
    // SAFETY: an array: no entry is dereferenced here, the caller filters
    // the slots by their stored hash first.
    unsafe { slots(b) }
}

/// One generation of the bucket array.
struct Table<K, V> {
    buckets: Box<[Atomic<Bucket<K, V>>]>,
    mask: usize,
    /// The resize target, set once (null → table) and never changed again.
    next: Atomic<Table<K, V>>,
    /// Migration cursor handed out in chunks to helpers (only spreads work).
    claim: AtomicUsize,
    /// As a resize target: how many of its slots are initialised.
    filled: AtomicUsize,
}

impl<K, V> Table<K, V> {
    fn new(buckets: usize, tag: usize) -> Self {
        debug_assert!(buckets.is_power_of_two());
        Self {
            buckets: (0..buckets)
                .map(|_| Atomic::from(Shared::<Bucket<K, V>>::null().with_tag(tag)))
                .collect(),
            mask: buckets - 1,
            next: Atomic::null(),
            claim: AtomicUsize::new(0),
            filled: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> &Atomic<Bucket<K, V>> {
        &self.buckets[hash as usize & self.mask]
    }
}

/// What a write found and did.
pub(crate) enum Outcome<'g, K, V> {
    /// The key was absent; this new entry is in.
    Inserted(&'g Entry<K, V>),
    /// The key was present; this (now retired) entry was replaced.
    Replaced(&'g Entry<K, V>),
    /// Insert-if-absent found this entry and left it; the new entry was dropped.
    Existing(&'g Entry<K, V>),
    /// This (now retired) entry was removed.
    Removed(&'g Entry<K, V>),
    /// Nothing matched; nothing changed.
    NotFound,
    /// Bounded mode: the entry alone outweighs the bound; it was dropped.
    Rejected,
}

impl<K, V> Outcome<'_, K, V> {
    /// The variant's name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Outcome::Inserted(_) => "inserted",
            Outcome::Replaced(_) => "replaced",
            Outcome::Existing(_) => "existing",
            Outcome::Removed(_) => "removed",
            Outcome::NotFound => "not found",
            Outcome::Rejected => "rejected",
        }
    }
}

/// What a write does to the bucket holding its key.
enum Mode<'a, K, V> {
    /// Insert or replace the entry with the given key.
    Upsert(NonNull<Entry<K, V>>),
    /// Insert unless an entry with the key exists.
    InsertIfAbsent(NonNull<Entry<K, V>>),
    /// Remove the entry whose key satisfies the predicate.
    RemoveKey(&'a dyn Fn(&K) -> bool),
    /// Remove exactly this entry, if it is still live.
    RemoveEntry(*const Entry<K, V>),
}

/// The lock-free hash table. Hashing and the safe API are in [`super::EpochMap`].
pub(crate) struct RawMap<K, V> {
    root: Atomic<Table<K, V>>,
    len: StripedCounter,
    weight: StripedCounter,
    /// The table never shrinks below this many buckets.
    min_buckets: usize,
    /// Bound on the total weight; `u64::MAX` for an unbounded map.
    max_weight: u64,
    /// CLOCK hand: the next root bucket the evictor looks at.
    hand: AtomicUsize,
    evictions: AtomicU64,
    /// Completed resizes.
    resizes: AtomicU64,
}

/// Number of buckets for `capacity` entries at the maximum load factor (3/4).
pub(crate) fn buckets_for(capacity: usize) -> usize {
    capacity
        .saturating_add(capacity / 3)
        .max(MIN_BUCKETS)
        .checked_next_power_of_two()
        .unwrap_or(1 << (usize::BITS - 2))
}

impl<K, V> RawMap<K, V> {
    pub(crate) fn new(capacity: usize, max_weight: u64) -> Self {
        let buckets = buckets_for(capacity);
        Self {
            root: Atomic::new(Table::new(buckets, 0)),
            len: StripedCounter::new(),
            weight: StripedCounter::new(),
            min_buckets: buckets,
            max_weight,
            hand: AtomicUsize::new(0),
            evictions: AtomicU64::new(0),
            resizes: AtomicU64::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len.sum() as usize
    }

    pub(crate) fn weight(&self) -> u64 {
        if self.is_bounded() {
            self.weight.sum()
        } else {
            self.len.sum()
        }
    }

    pub(crate) fn max_weight(&self) -> u64 {
        self.max_weight
    }

    pub(crate) fn is_bounded(&self) -> bool {
        self.max_weight != u64::MAX
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    pub(crate) fn resizes(&self) -> u64 {
        self.resizes.load(Relaxed)
    }

    /// Bucket count of the current root table.
    pub(crate) fn buckets(&self, guard: &Guard) -> usize {
        self.root_table(guard).1.buckets.len()
    }

    /// Whether a resize is under way.
    pub(crate) fn is_resizing(&self, guard: &Guard) -> bool {
        // Relaxed: only the pointer's nullness is used, nothing is read
        // through it.
        !self.root_table(guard).1.next.load(Relaxed, guard).is_null()
    }

    #[inline]
    fn root_table<'g>(&self, guard: &'g Guard) -> (Shared<'g, Table<K, V>>, &'g Table<K, V>) {
        // Acquire: pairs with the AcqRel CAS in `finish_resize` that installs a
        // new root (the first root is published by whatever shared the map).
        let t = self.root.load(Acquire, guard);
        // SAFETY: the root is never null, and a table loaded from `root` under
        // `guard` stays allocated while `guard` lives (I3: tables are retired
        // only after `finish_resize` unlinked them from `root`).
        (t, unsafe { t.deref() })
    }

    /// The live bucket for `hash` (I4), possibly tagged `FROZEN`. Reads only.
    #[inline]
    fn read_bucket<'g>(&self, hash: u64, guard: &'g Guard) -> Shared<'g, Bucket<K, V>> {
        let (_, mut table) = self.root_table(guard);
        loop {
            // Acquire: pairs with the AcqRel CASes that publish buckets (`write`,
            // `init_target`) and freeze them (`freeze`).
            let b = table.slot(hash).load(Acquire, guard);
            if b.tag() & FROZEN == 0 {
                return b;
            }
            // Acquire: pairs with the AcqRel CAS in `maybe_resize` that sets
            // `next`. It is non-null: the freezer read it before freezing, and
            // our Acquire load of the frozen slot synchronised with the freeze.
            let next = table.next.load(Acquire, guard);
            // SAFETY: `next` is non-null (above) and was reachable from `table`,
            // itself reachable under `guard`; tables are retired in order, so
            // `next` is retired after `table` and after `guard` was pinned (I3).
            let nt = unsafe { next.deref() };
            // Acquire: pairs with the AcqRel CAS in `init_target`.
            let nb = nt.slot(hash).load(Acquire, guard);
            if is_uninit(nb) {
                // Not migrated yet: the frozen bucket is still the live one.
                // A single entry that goes to the other target (HI says which,
                // without dereferencing it) is not ours and may be gone.
                let n_old = table.buckets.len();
                if single(b).is_some()
                    && nt.buckets.len() > n_old
                    && (b.tag() & HI != 0) != (hash as usize & n_old != 0)
                {
                    return Shared::null();
                }
                return b;
            }
            table = nt;
        }
    }

    /// Freezes a source slot and returns its (final) bucket, tagged `FROZEN`.
    /// `split` is the old size when growing: a single entry then gets `HI` if
    /// it goes to the upper target.
    fn freeze<'g>(
        slot: &Atomic<Bucket<K, V>>,
        split: Option<usize>,
        guard: &'g Guard,
    ) -> Shared<'g, Bucket<K, V>> {
        // Acquire: pairs with the CAS that published the current bucket.
        let mut cur = slot.load(Acquire, guard);
        loop {
            if cur.tag() & FROZEN != 0 {
                return cur;
            }
            let mut tag = cur.tag() | FROZEN;
            if let (Some(e), Some(n_old)) = (single(cur), split) {
                // SAFETY: `cur` is not frozen, so it is the live bucket and its
                // entry is live under `guard` (I3).
                if unsafe { e.as_ref() }.hash as usize & n_old != 0 {
                    tag |= HI;
                }
            }
            // Success AcqRel: the Release half makes `next` (read by this thread
            // before freezing) visible to readers whose Acquire load sees the
            // FROZEN tag (`read_bucket`, `visit`); the Acquire half pairs with the
            // CAS that published `cur`. Failure Acquire: pairs with the CAS that
            // published the bucket we retry with.
            match slot.compare_exchange(cur, cur.with_tag(tag), AcqRel, Acquire, guard) {
                Ok(_) => return cur.with_tag(tag),
                Err(e) => cur = e.current,
            }
        }
    }

    /// Builds target slot `j` of `next` (the resize target of `t`) from its
    /// source slots in `t`, freezing them first. Idempotent; any thread may call
    /// it; the thread that fills the last slot finishes the resize.
    fn init_target<'g>(
        &self,
        t: Shared<'g, Table<K, V>>,
        next: Shared<'g, Table<K, V>>,
        j: usize,
        guard: &'g Guard,
    ) {
        // SAFETY: callers pass `t` reachable under `guard` and `next` loaded
        // non-null from `t.next` under `guard` (see `read_bucket`).
        let (table, nt) = unsafe { (t.deref(), next.deref()) };
        let slot = &nt.buckets[j];
        // Acquire: pairs with the AcqRel CAS below, run by another initialiser.
        let cur = slot.load(Acquire, guard);
        if !is_uninit(cur) {
            return;
        }
        let (n_old, n_new) = (table.buckets.len(), nt.buckets.len());
        let (first, second) = if n_new > n_old {
            (j & table.mask, None) // growing: one source
        } else {
            (j, Some(j + n_new)) // shrinking: two sources
        };
        let split = (n_new > n_old).then_some(n_old);
        let a = Self::freeze(&table.buckets[first], split, guard);
        let b = second.map_or(Shared::null(), |s| {
            Self::freeze(&table.buckets[s], split, guard)
        });
        // SAFETY: frozen buckets are never retired before their table (I3),
        // `table` is reachable under `guard`, and target `j` was seen
        // uninitialised under `guard` (above).
        let (a, b) = unsafe {
            (
                frozen_slots_for(a, n_old, n_new, j),
                frozen_slots_for(b, n_old, n_new, j),
            )
        };
        // Only this target's entries, chosen by stored hash.
        let mine = |s: &&Slot<K, V>| s.hash as usize & nt.mask == j;
        let n = a.iter().chain(b.iter()).filter(mine).count();
        let new = new_bucket(n, a.iter().chain(b.iter()).filter(mine).copied(), guard);
        // Success AcqRel: the Release half publishes the new bucket to the
        // Acquire loads of this slot (`read_bucket`, `write`, `visit`, other
        // initialisers). Failure Acquire: pairs with the winning initialiser.
        match slot.compare_exchange(cur, new, AcqRel, Acquire, guard) {
            Ok(_) => {
                // AcqRel: a release sequence over all initialisers, so that the
                // one that reaches the total sees every freeze and every target.
                let filled = nt.filled.fetch_add(1, AcqRel) + 1;
                if filled == n_new {
                    self.finish_resize(t, next, guard);
                }
            }
            // SAFETY: `new` lost the race and was never published.
            Err(_) => unsafe { free_unpublished(new) },
        }
    }

    /// Installs the filled target as root and retires the old table.
    fn finish_resize<'g>(
        &self,
        t: Shared<'g, Table<K, V>>,
        next: Shared<'g, Table<K, V>>,
        guard: &'g Guard,
    ) {
        // Success AcqRel: the Release half publishes the migration's end state
        // to `root_table`'s Acquire loads. Only the thread that filled the last
        // target gets here, and `t` stays root until it does.
        let swapped = self.root.compare_exchange(t, next, AcqRel, Acquire, guard);
        debug_assert!(swapped.is_ok(), "resize finished twice");
        if swapped.is_ok() {
            self.resizes.fetch_add(1, Relaxed);
            // SAFETY: `t` was just unlinked from `root` by this thread, every
            // slot of `t` is frozen (each fed a target that is now filled), and
            // its entries all live on in `next`.
            unsafe { Self::retire_table(t, guard) };
        }
    }

    /// Frees a table and its frozen buckets (not their entries) once no guard
    /// can see them.
    ///
    /// # Safety
    /// `t` must be unlinked from `root`, all its slots frozen, and this must be
    /// the only call for `t`.
    unsafe fn retire_table(t: Shared<'_, Table<K, V>>, guard: &Guard) {
        let raw = t.as_raw();
        // SAFETY: the closure runs when no guard pinned before now remains, so
        // nobody can reach the table any more (precondition: it is unlinked, and
        // stale holders are all pinned before now).
        unsafe {
            guard.defer_unchecked(move || {
                let table = Shared::from(raw).into_owned();
                for slot in table.buckets.iter() {
                    // Relaxed: the epoch collector's synchronisation orders the
                    // freezes before this deferred call.
                    let b = slot.load(Relaxed, unprotected());
                    debug_assert!(b.tag() & FROZEN != 0);
                    if single(b).is_none() && !b.with_tag(0).is_null() {
                        drop(b.with_tag(0).into_owned());
                    }
                }
                drop(table);
            });
        }
    }

    /// Initialises a chunk of target slots of the running resize `t` → `next`.
    fn help_resize<'g>(
        &self,
        t: Shared<'g, Table<K, V>>,
        next: Shared<'g, Table<K, V>>,
        guard: &'g Guard,
    ) {
        // SAFETY: as in `init_target`.
        let nt = unsafe { next.deref() };
        let n = nt.buckets.len();
        // Relaxed: the cursor only spreads work; `init_target`'s CAS decides.
        // It wraps modulo `n`, so slots a stalled helper claimed are revisited.
        let start = nt.claim.fetch_add(MIGRATE_CHUNK, Relaxed);
        for k in 0..MIGRATE_CHUNK.min(n) {
            self.init_target(t, next, start.wrapping_add(k) % n, guard);
        }
    }

    /// Helps the resize under way, if any.
    fn help_running_resize(&self, guard: &Guard) {
        let (t, table) = self.root_table(guard);
        // Acquire: pairs with the AcqRel CAS in `maybe_resize` that sets `next`.
        let next = table.next.load(Acquire, guard);
        if !next.is_null() {
            self.help_resize(t, next, guard);
        }
    }

    /// Starts a resize when the load factor leaves (1/8, 3/4] (never below the
    /// initial size), or helps the one under way.
    fn maybe_resize(&self, guard: &Guard) {
        let (t, table) = self.root_table(guard);
        // Acquire: pairs with the AcqRel CAS below (by another thread).
        let next = table.next.load(Acquire, guard);
        if !next.is_null() {
            self.help_resize(t, next, guard);
            return;
        }
        let n = table.buckets.len();
        let len = self.len();
        let target = if len > n / 4 * 3 + (n % 4 * 3) / 4 && n < 1 << (usize::BITS - 2) {
            n * 2
        } else if n > self.min_buckets && len.saturating_mul(8) <= n {
            n / 2
        } else {
            return;
        };
        let new = Owned::new(Table::new(target, UNINIT));
        // Success AcqRel: the Release half publishes the new table (UNINIT
        // slots, zero counters) to the Acquire loads of `next`. Failure Acquire:
        // pairs with the winner's CAS, whose table we then help with.
        // `next` is set only while `t` is root: `t` stops being root only after
        // its own `next` is set and filled.
        match table
            .next
            .compare_exchange(Shared::null(), new, AcqRel, Acquire, guard)
        {
            Ok(next) => self.help_resize(t, next, guard),
            Err(e) => self.help_resize(t, e.current, guard),
        }
    }

    /// Calls `f` on every live entry reachable from slot `i` of `t` whose hash
    /// satisfies `hash & fmask == fval`.
    fn visit<'g>(
        &self,
        t: Shared<'g, Table<K, V>>,
        i: usize,
        (fmask, fval): (usize, usize),
        guard: &'g Guard,
        f: &mut dyn FnMut(&'g Entry<K, V>),
    ) {
        // SAFETY: callers pass a table reachable under `guard`.
        let table = unsafe { t.deref() };
        // Acquire: pairs with the CASes that publish and freeze buckets.
        let b = table.buckets[i].load(Acquire, guard);
        if b.tag() & FROZEN == 0 {
            // SAFETY: loaded under `guard` from its slot and not frozen: the
            // live bucket, with live entries (I3).
            for s in unsafe { slots(b) }.iter() {
                if s.hash as usize & fmask == fval {
                    // SAFETY: the bucket is live, so are its entries (I3).
                    f(unsafe { s.entry.as_ref() });
                }
            }
            return;
        }
        // Acquire: pairs with `maybe_resize`; non-null as in `read_bucket`.
        let next = table.next.load(Acquire, guard);
        // SAFETY: as in `read_bucket`.
        let nt = unsafe { next.deref() };
        let (first, second) = if nt.buckets.len() > table.buckets.len() {
            (i, Some(i + table.buckets.len()))
        } else {
            (i & nt.mask, None)
        };
        for j in std::iter::once(first).chain(second) {
            // Keep the filter the finest constraint on the path and prune
            // targets that cannot hold a matching key: after a grow and a
            // shrink (or the reverse) two targets lead to the same slot further
            // down, and each key must be reached by one path only.
            let sub = if nt.mask >= fmask {
                if j & fmask != fval {
                    continue;
                }
                (nt.mask, j)
            } else {
                if fval & nt.mask != j {
                    continue;
                }
                (fmask, fval)
            };
            // Acquire: pairs with the AcqRel CAS in `init_target`.
            let nb = nt.buckets[j].load(Acquire, guard);
            if !is_uninit(nb) {
                self.visit(next, j, sub, guard, f);
                continue;
            }
            let (n_old, n_new) = (table.buckets.len(), nt.buckets.len());
            // SAFETY: frozen buckets live as long as their table, and target
            // `j` was seen uninitialised under `guard` just above.
            for s in unsafe { frozen_slots_for(b, n_old, n_new, j) }.iter() {
                if s.hash as usize & sub.0 == sub.1 {
                    // SAFETY: I4: the entry's target was uninitialised under
                    // this guard, so the frozen bucket is its live bucket.
                    f(unsafe { s.entry.as_ref() });
                }
            }
        }
    }
}

impl<K, V> RawMap<K, V>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Looks `hash`/`eq` up. Never writes shared memory (but for the CLOCK
    /// counter in bounded mode, see [`Entry::touch`]).
    #[inline]
    pub(crate) fn get<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        let b = self.read_bucket(hash, guard);
        // SAFETY: `read_bucket` returns the live bucket for `hash`, loaded
        // under `guard`; a single entry in it is ours, hence live (I4).
        for s in unsafe { slots(b) }.iter() {
            if s.hash == hash {
                // SAFETY: the bucket is the live bucket for `hash`, so entries
                // with this hash are live under `guard` (I3, I4).
                let e = unsafe { s.entry.as_ref() };
                if eq(&e.key) {
                    return Some(e);
                }
            }
        }
        None
    }

    /// Inserts or replaces `entry`; `if_absent` keeps an existing entry instead.
    pub(crate) fn insert<'g>(
        &self,
        entry: Box<Entry<K, V>>,
        if_absent: bool,
        guard: &'g Guard,
    ) -> Outcome<'g, K, V> {
        if entry.weight > self.max_weight {
            // The caller meant to replace the key's value: drop the old one too.
            let key = &entry.key;
            self.write(entry.hash, Mode::RemoveKey(&|k: &K| k == key), guard);
            return Outcome::Rejected;
        }
        let hash = entry.hash;
        let ptr = NonNull::from(Box::leak(entry));
        let mode = if if_absent {
            Mode::InsertIfAbsent(ptr)
        } else {
            Mode::Upsert(ptr)
        };
        let out = self.write(hash, mode, guard);
        if self.is_bounded() && matches!(out, Outcome::Inserted(_) | Outcome::Replaced(_)) {
            self.evict(guard);
        }
        out
    }

    /// Removes the entry for `hash`/`eq`.
    pub(crate) fn remove<'g>(
        &self,
        hash: u64,
        eq: &dyn Fn(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        match self.write(hash, Mode::RemoveKey(eq), guard) {
            Outcome::Removed(e) => Some(e),
            _ => None,
        }
    }

    /// Removes exactly `entry` if it is still in the map.
    pub(crate) fn remove_entry(&self, entry: &Entry<K, V>, guard: &Guard) -> bool {
        matches!(
            self.write(entry.hash, Mode::RemoveEntry(entry), guard),
            Outcome::Removed(_)
        )
    }

    /// Removes every entry present when the call starts (entries inserted
    /// concurrently may survive).
    pub(crate) fn clear(&self, guard: &Guard) {
        let mut doomed = Vec::new();
        let (t, table) = self.root_table(guard);
        for i in 0..table.buckets.len() {
            doomed.clear();
            self.visit(t, i, (table.mask, i), guard, &mut |e| doomed.push(e));
            for e in &doomed {
                self.remove_entry(e, guard);
            }
        }
    }

    /// Iterates over the entries, one root bucket at a time.
    pub(crate) fn iter<'g>(&'g self, guard: &'g Guard) -> RawIter<'g, K, V> {
        let (t, table) = self.root_table(guard);
        RawIter {
            map: self,
            guard,
            table: t,
            buckets: table.buckets.len(),
            mask: table.mask,
            next_bucket: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// The one write path: a CAS loop on the live bucket for `hash`.
    fn write<'g>(&self, hash: u64, mode: Mode<'_, K, V>, guard: &'g Guard) -> Outcome<'g, K, V> {
        let (mut t, _) = self.root_table(guard);
        'table: loop {
            // SAFETY: `t` is the root or reached from it through `next` under
            // `guard` (see `read_bucket`).
            let table = unsafe { t.deref() };
            let slot = table.slot(hash);
            // Acquire: pairs with the CASes that publish and freeze buckets.
            let mut cur = slot.load(Acquire, guard);
            loop {
                if cur.tag() & FROZEN != 0 {
                    // Migrating: build our target slot, then write there.
                    // Acquire: pairs with `maybe_resize`; non-null as in
                    // `read_bucket`.
                    let next = table.next.load(Acquire, guard);
                    // SAFETY: as in `read_bucket`.
                    let nt = unsafe { next.deref() };
                    self.init_target(t, next, hash as usize & nt.mask, guard);
                    t = next;
                    continue 'table;
                }
                debug_assert_eq!(
                    cur.tag() & !SINGLE,
                    0,
                    "writer reached an uninitialised slot"
                );
                // SAFETY: loaded under `guard` from its slot, not frozen: it is
                // the live bucket for `hash` (I3, I4).
                let slots = unsafe { slots(cur) };
                let found = slots.iter().position(|s| match mode {
                    Mode::RemoveEntry(p) => std::ptr::eq(s.entry.as_ptr(), p),
                    _ if s.hash != hash => false,
                    // SAFETY: entries of the live bucket are live (I3).
                    Mode::RemoveKey(eq) => eq(unsafe { &s.entry.as_ref().key }),
                    Mode::Upsert(new) | Mode::InsertIfAbsent(new) => {
                        // SAFETY: as above; `new` is ours and not yet shared.
                        unsafe { s.entry.as_ref().key == new.as_ref().key }
                    }
                });
                let old = found.map(|i| slots[i].entry);
                let n = slots.len();
                let replacement = match (&mode, found) {
                    (Mode::Upsert(new), Some(i)) => {
                        let new_slot = Slot { hash, entry: *new };
                        let it = slots.iter().enumerate();
                        new_bucket(
                            n,
                            it.map(|(j, s)| if j == i { new_slot } else { *s }),
                            guard,
                        )
                    }
                    (Mode::Upsert(new) | Mode::InsertIfAbsent(new), None) => {
                        let new_slot = Slot { hash, entry: *new };
                        let it = slots.iter().copied().chain(std::iter::once(new_slot));
                        new_bucket(n + 1, it, guard)
                    }
                    (Mode::InsertIfAbsent(new), Some(i)) => {
                        // SAFETY: `new` was never shared; it is ours to free.
                        drop(unsafe { Box::from_raw(new.as_ptr()) });
                        // SAFETY: live entry of the live bucket (I3).
                        return Outcome::Existing(unsafe { slots[i].entry.as_ref() });
                    }
                    (Mode::RemoveKey(_) | Mode::RemoveEntry(_), Some(i)) => {
                        let it = slots.iter().enumerate().filter(|(j, _)| *j != i);
                        new_bucket(n - 1, it.map(|(_, s)| *s), guard)
                    }
                    (Mode::RemoveKey(_) | Mode::RemoveEntry(_), None) => {
                        // Keep resizes moving on a map that only sees misses.
                        self.maybe_resize(guard);
                        return Outcome::NotFound;
                    }
                };
                // Success AcqRel: the Release half publishes the new bucket and
                // the new entry to the Acquire loads of this slot (`read_bucket`,
                // `write`, `visit`, `freeze`, `init_target`). Failure Acquire:
                // pairs with the CAS that installed the bucket we retry with.
                match slot.compare_exchange(cur, replacement, AcqRel, Acquire, guard) {
                    Ok(_) => {
                        // SAFETY: this CAS unlinked `cur` from its slot (I3).
                        unsafe { retire_bucket(cur, guard) };
                        return self.committed(hash, &mode, old, guard);
                    }
                    Err(e) => {
                        // SAFETY: never published.
                        unsafe { free_unpublished(replacement) };
                        cur = e.current;
                    }
                }
            }
        }
    }

    /// Book-keeping after a successful write CAS: counters, retiring the old
    /// entry, resizing.
    fn committed<'g>(
        &self,
        hash: u64,
        mode: &Mode<'_, K, V>,
        old: Option<NonNull<Entry<K, V>>>,
        guard: &'g Guard,
    ) -> Outcome<'g, K, V> {
        // SAFETY: `old` was in the live bucket this thread just replaced, so it
        // is readable under `guard` (retired below, after this borrow starts).
        let old_ref: Option<&'g Entry<K, V>> = old.map(|p| unsafe { &*p.as_ptr() });
        if let Some(p) = old {
            let raw = p.as_ptr();
            // SAFETY: this thread's CAS unlinked `old` from its live bucket (I3);
            // K and V are Send + 'static, so dropping them later on any thread
            // is sound.
            unsafe { guard.defer_unchecked(move || drop(Box::from_raw(raw))) };
        }
        // Weights are kept in bounded mode only (an unbounded map reports its
        // length as its weight), which spares unbounded writes an atomic.
        let bounded = self.is_bounded();
        let weigh = |delta: isize| {
            if bounded && delta != 0 {
                self.weight.add(hash, delta);
            }
        };
        let out = match (mode, old_ref) {
            (Mode::Upsert(new) | Mode::InsertIfAbsent(new), None) => {
                self.len.add(hash, 1);
                // SAFETY: `new` is now in the map, live under `guard`.
                let new: &'g Entry<K, V> = unsafe { &*new.as_ptr() };
                weigh(new.weight as isize);
                Outcome::Inserted(new)
            }
            (Mode::Upsert(new), Some(o)) => {
                // SAFETY: as above.
                let nw = unsafe { new.as_ref() }.weight as isize;
                weigh(nw - o.weight as isize);
                // Same length: no resize to start, but keep helping one.
                self.help_running_resize(guard);
                return Outcome::Replaced(o);
            }
            (_, Some(o)) => {
                self.len.add(hash, -1);
                weigh(-(o.weight as isize));
                Outcome::Removed(o)
            }
            (_, None) => Outcome::NotFound,
        };
        self.maybe_resize(guard);
        out
    }

    /// CLOCK eviction until the total weight is within the bound. The hand
    /// sweeps root buckets; an entry with a zero counter is evicted, others are
    /// decremented (GCLOCK). Concurrent evictors share the hand.
    fn evict(&self, guard: &Guard) {
        let mut victims = Vec::new();
        let mut steps = 0usize;
        while self.weight() > self.max_weight {
            let (t, table) = self.root_table(guard);
            let n = table.buckets.len();
            // Each full sweep lowers every counter, so CLOCK_MAX + 1 sweeps
            // suffice unless entries keep arriving; then give up for now.
            if steps > (usize::from(CLOCK_MAX) + 2) * n {
                break;
            }
            steps += 1;
            // Relaxed: the hand only spreads evictors over the table.
            let i = self.hand.fetch_add(1, Relaxed) % n;
            victims.clear();
            self.visit(t, i, (table.mask, i), guard, &mut |e| {
                let c = e.clock.load(Relaxed);
                if c == 0 {
                    victims.push(e);
                } else {
                    e.clock.store(c - 1, Relaxed);
                }
            });
            for v in &victims {
                if self.weight() <= self.max_weight {
                    break;
                }
                if self.remove_entry(v, guard) {
                    self.evictions.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// Iterator over a [`RawMap`], weakly consistent (see the module docs).
pub(crate) struct RawIter<'g, K, V> {
    map: &'g RawMap<K, V>,
    guard: &'g Guard,
    table: Shared<'g, Table<K, V>>,
    buckets: usize,
    mask: usize,
    next_bucket: usize,
    buf: Vec<&'g Entry<K, V>>,
    pos: usize,
}

impl<'g, K, V> Iterator for RawIter<'g, K, V> {
    type Item = &'g Entry<K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos == self.buf.len() {
            if self.next_bucket == self.buckets {
                return None;
            }
            self.buf.clear();
            self.pos = 0;
            let i = self.next_bucket;
            self.next_bucket += 1;
            let buf = &mut self.buf;
            self.map
                .visit(self.table, i, (self.mask, i), self.guard, &mut |e| {
                    buf.push(e)
                });
        }
        self.pos += 1;
        Some(self.buf[self.pos - 1])
    }
}

impl<K, V> Drop for RawMap<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach this map. Objects
        // retired earlier are owned by the collector and never reachable from
        // `root` any more, so what we free below is freed exactly once.
        let guard = unsafe { unprotected() };
        let (t, table) = self.root_table(guard);
        // Acquire: pairs with `maybe_resize`'s CAS (`&mut self` already
        // orders it; kept for uniformity with the other loads of `next`).
        let next = table.next.load(Acquire, guard);
        if !next.is_null() {
            // Finish the migration, so all entries live in one table.
            // SAFETY: non-null, owned by the map.
            let n = unsafe { next.deref() }.buckets.len();
            for j in 0..n {
                self.init_target(t, next, j, guard);
            }
        }
        let (t, table) = self.root_table(guard);
        debug_assert!(table.next.load(Relaxed, guard).is_null());
        for slot in table.buckets.iter() {
            let b = slot.load(Relaxed, guard);
            debug_assert_eq!(b.tag() & !SINGLE, 0);
            // SAFETY: the root's buckets and their entries are live and now
            // exclusively ours; each entry is in exactly one root bucket.
            unsafe {
                for s in slots(b).iter() {
                    drop(Box::from_raw(s.entry.as_ptr()));
                }
                if !b.is_null() && single(b).is_none() {
                    drop(b.into_owned());
                }
            }
        }
        // SAFETY: the root table is exclusively ours.
        drop(unsafe { t.into_owned() });
    }
}
