//! The epoch map's raw core: a table of *groups* holding entries inline, so that a
//! hit costs one dependent cache miss (the group), resized incrementally into a
//! table twice (or half) the size. The only module of the crate allowed `unsafe`;
//! [`super::EpochMap`] is the safe API over it.
//!
//! # Layout
//!
//! A group has an 8-byte *control* word, its state bits and seven 6-bit hash
//! tags, and a 64-byte-aligned *body*: seven slots of `(key, value, low half of
//! the hash, weight)` written in place, an overflow pointer and seven CLOCK
//! counters (256 bytes for `u64` keys and values). A table keeps the controls in
//! one array and the bodies in another, as SwissTable keeps its control bytes
//! apart: the control array is a 33rd of the table for `u64` keys and values
//! (1 MiB at 2^19 entries, as much as DashMap's control bytes), so it stays in
//! the CPU's caches, and a hit misses only on its slot's line.
//! Arrays of 2 MiB and more are aligned to huge pages and advised as such
//! (`madvise`), so that on Linux with transparent huge pages that miss rarely
//! adds a page walk. The group of a hash is `hash & mask`; a group that fills
//! links an overflow group (control and body in one allocation), and overflow
//! groups are only ever appended, so every chain has a fixed order, head first.
//!
//! The state word holds, per slot `i`, an *occupied* bit (`i`), a *reserved*
//! bit (`8 + i`) and a tag (bits `16 + 6i` to `21 + 6i`: the top six bits of the
//! hash), and *linked* (bit 61: an overflow group follows); in head groups
//! also the chain's writer lock (bit 62) and *moved* (bit 63: the chain's entries
//! live in the next table now); and *more* (bit 60: a later group of the chain
//! holds an occupied slot).
//!
//! # Reads
//!
//! A read loads the head's state (`Acquire`); if the chain has moved, it goes on in
//! the next table. Otherwise it compares the tags of the occupied slots with the
//! hash's top six bits, all at once in the state word it loaded (so a tag and its
//! occupied bit are always seen together), and, on a match, the stored low half
//! of the hash and the key in place, group by group down the chain. It takes no lock, retries nothing
//! and stores nothing (but for the CLOCK counter in bounded mode, see below). It
//! returns a reference into the slot, valid while the caller's epoch guard lives;
//! the value is read in place until the key's first replacement, then through a
//! box (one more miss).
//!
//! # Writes
//!
//! Writers hold the chain's lock (one CAS on the head's state word; the lock
//! covers the whole chain), so writes are not lock-free: a writer preempted while
//! holding it delays the other writers of that one chain, never a reader.
//! * An insert writes the entry into a slot whose reserved bit is clear, then
//!   sets the slot's occupied and reserved bits and its tag with one `Release`
//!   RMW (which also releases the lock when the group is the head): readers that
//!   see the bit see the entry.
//! * A removal clears the occupied bit. The slot stays reserved, so no writer
//!   reuses it, and a deferred function (crossbeam-epoch) drops the entry and
//!   clears the reserved bit and the tag once every guard that might be reading it is gone.
//! * A replacement keeps the key's slot: it boxes the new value and swaps the
//!   box into the entry (`AcqRel`), and defers the drop of the old value (the
//!   first time, the inline value is moved out to a box of its own; its bits stay
//!   in the slot for readers that loaded them). A new slot per replacement would
//!   keep the old slots out of use until their release, a few epochs later, and a
//!   hot key's chain would grow with its write rate.
//!
//! # Resizing
//!
//! Past 5 entries per group on average (of 7 slots) the table grows to twice the
//! groups; below one entry per two groups it shrinks to half (never below its
//! initial size). (At 4 the table's footprint at a given size was up to twice
//! as large, and one-thread lookups, which mostly wait for the slot's line, were
//! 17% slower at 2^19 entries.) A group that fills links an overflow group,
//! which stays linked; its predecessors' `MORE` bits say whether any later group
//! holds an entry, so lookups skip the overflow groups of a chain while they are
//! empty. A writer that sees the load out of range installs the next table in the root's
//! `next` (one CAS); from then on every write moves a chunk of chains. Moving a
//! chain takes its lock for good: its entries are copied bit for bit into the
//! next table (taking each target chain's lock: old before new, so locks never
//! cycle), and the head is marked *moved*. The copies own the entries from then
//! on; the old slots keep the same bits for readers still in the old table and are
//! never dropped from there. Until its chain moves, a key's truth is the old
//! chain, which readers read and writers write; after, it is the next table's. The
//! thread that moves the last chain makes the next table the root and retires the
//! old one. Nobody waits for a whole resize, and there is no global lock; a writer
//! waits only for the move of its own chain, a bounded copy.
//!
//! # Reclamation
//!
//! A table counts its pending deferred releases, in stripes, plus an *owner
//! token* held while it is reachable. The token goes in a deferred function once
//! the table is unlinked (so after the guards of that time), or when the map is
//! dropped (after dropping the entries the table owns); whichever count goes last
//! frees the table. No deferred function pins, so a collector that is shutting
//! down can run them in any order.
//!
//! # Bounded mode
//!
//! A read in a bounded map raises the entry's CLOCK counter up to 3, only when
//! below 3, so hot entries stop being written once saturated: the one shared store
//! a read makes. An insert that takes the total weight over the bound runs the
//! hand over the root's chains under their locks: an entry with counter zero is
//! removed, others are decremented (GCLOCK).
//!
//! # Invariants the `unsafe` below relies on
//!
//! * **G1.** A slot holds an initialised entry exactly while its reserved bit is
//!   set; occupied implies reserved; its tag field is zero while it is not
//!   reserved.
//! * **G2.** A slot is written only by the chain's lock holder, only while its
//!   reserved bit is clear (after the `Acquire` load that saw it clear, which pairs
//!   with the release's `Release` clear), and is published by the `Release` RMW that
//!   sets its bits (an add of bits known clear, which carries into no other field). Its contents never change while reserved (but for the moving
//!   of a whole chain, which copies and never changes the source).
//! * **G3.** An entry is owned by the one slot that is occupied in a chain that has
//!   not moved; it is dropped only by the deferred release scheduled by the writer
//!   that cleared that occupied bit, or by the map's drop, once.
//! * **G4.** A table and its groups are freed only when its last pending count
//!   goes: its owner token, dropped after the table was unlinked from the root and
//!   every guard pinned before that is gone (or when the map is dropped), and each
//!   pending release, dropped as that release's last step.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr::{self, NonNull};

use crossbeam_epoch::Guard;

use crate::sync::{
    AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
    Padded, StripedCounter, sampled, spin,
};

/// Slots per group.
const SLOTS: usize = 7;
const OCCUPIED: u64 = (1 << SLOTS) - 1;
const RESERVED_SHIFT: usize = 8;
const LOCKED: u64 = 1 << 62;
const MOVED: u64 = 1 << 63;
/// In any group's state: an overflow group is linked after this one.
const LINKED: u64 = 1 << 61;
/// In any group's state: a later group of the chain has an occupied slot. Kept
/// exact by the chain's lock holders, so that lookups skip the overflow groups a
/// chain keeps once it has needed them (they are never unlinked) while they are
/// empty.
const MORE: u64 = 1 << 60;
/// Where the tags start in a state word: slot `i`'s tag is the `TAG_BITS`-bit
/// field at `TAG_SHIFT + TAG_BITS * i`.
const TAG_SHIFT: usize = 16;
const TAG_BITS: usize = 6;
/// One tag field, unshifted.
const TAG_FIELD: u64 = (1 << TAG_BITS) - 1;
/// The lowest bit of every tag field, unshifted.
const TAG_LOWS: u64 = {
    let (mut m, mut i) = (0, 0);
    while i < SLOTS {
        m |= 1 << (TAG_BITS * i);
        i += 1;
    }
    m
};
// The tags fit between the reserved bits and the flags.
const _: () = assert!(RESERVED_SHIFT + SLOTS <= TAG_SHIFT && TAG_SHIFT + TAG_BITS * SLOTS <= 60);

/// Load bounds, as `(numerator, denominator)` entries per group: the table grows
/// above the first and shrinks below the second. Loom models tiny maps, so it
/// resizes them at a handful of entries.
#[cfg(not(crossbeam_loom))]
const GROW_ABOVE: (usize, usize) = (5, 1);
#[cfg(not(crossbeam_loom))]
const SHRINK_BELOW: (usize, usize) = (1, 2);
#[cfg(crossbeam_loom)]
const GROW_ABOVE: (usize, usize) = (3, 4);
#[cfg(crossbeam_loom)]
const SHRINK_BELOW: (usize, usize) = (1, 7);

/// Chains a writer moves per write while a resize is under way.
#[cfg(not(crossbeam_loom))]
const MOVE_CHUNK: usize = 8;
#[cfg(crossbeam_loom)]
const MOVE_CHUNK: usize = 1;

/// Smallest table, in groups.
const MIN_GROUPS: usize = 2;
/// Largest table, in groups: entries keep the low 32 bits of their hash.
const MAX_GROUPS: usize = 1 << 31;

/// Largest CLOCK counter: an entry read this many times since the hand last
/// passed survives this many passes.
const CLOCK_MAX: u8 = 3;

#[inline]
fn occupied(i: usize) -> u64 {
    1 << i
}

#[inline]
fn reserved(i: usize) -> u64 {
    1 << (RESERVED_SHIFT + i)
}

/// The slot indices of the set bits of `mask`, lowest first.
#[inline]
fn slots_in(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

/// Slots whose reserved bit is set in `state`.
#[inline]
fn reserved_set(state: u64) -> u64 {
    (state >> RESERVED_SHIFT) & OCCUPIED
}

/// The tag of a hash: its top `TAG_BITS` bits (independent of the low bits that
/// choose the group and that the entry keeps).
#[inline]
fn tag(hash: u64) -> u64 {
    hash >> (64 - TAG_BITS)
}

/// Slot `i`'s tag field in a state word.
#[inline]
fn tag_field(i: usize) -> u64 {
    TAG_FIELD << (TAG_SHIFT + TAG_BITS * i)
}

/// Slot `i`'s tag in `state`.
#[inline]
fn tag_in(state: u64, i: usize) -> u64 {
    (state >> (TAG_SHIFT + TAG_BITS * i)) & TAG_FIELD
}

/// The occupied slots of `state` whose tag is `tag`, as a mask of slot bits.
#[inline]
fn matching(state: u64, tag: u64) -> u64 {
    let low = TAG_LOWS * (TAG_FIELD >> 1);
    let high = TAG_LOWS << (TAG_BITS - 1);
    let diff = ((state >> TAG_SHIFT) & (TAG_LOWS * TAG_FIELD)) ^ (TAG_LOWS * tag);
    // A field's high bit ends up clear exactly when the field is zero: adding
    // `low` carries into it when any lower bit is set, and never past it, so a
    // zero field never borrows from or carries into its neighbours.
    let mut equal = !(((diff & low) + low) | diff) & high;
    let mut slots = 0;
    while equal != 0 {
        slots |= 1 << (equal.trailing_zeros() as usize / TAG_BITS);
        equal &= equal - 1;
    }
    slots & state & OCCUPIED
}

/// Groups for `capacity` entries at the growth threshold.
pub(crate) fn groups_for(capacity: usize) -> usize {
    capacity
        .saturating_mul(GROW_ABOVE.1)
        .div_ceil(GROW_ABOVE.0)
        .max(MIN_GROUPS)
        .checked_next_power_of_two()
        .unwrap_or(MAX_GROUPS)
        .min(MAX_GROUPS)
}

/// One entry, written in place in its group's slot. Its key never changes once
/// published; its value does, in place: a replacement boxes the new value and
/// swaps the box in, so that a key replaced over and over keeps its slot (a new
/// slot per replacement would leave the old ones out of use until their release,
/// a few epochs later, and a hot key's chain would grow with its write rate).
///
/// It keeps the low half of its hash, which places it in tables of up to 2^32
/// groups (the tag, from the top bits, is in the group's control part), and its
/// weight saturated to `u32::MAX`: 32 bytes with `u64` keys and values.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    /// The value as inserted; dead (moved out) once `boxed` is set.
    inline: ManuallyDrop<V>,
    /// The value since the last replacement, null before the first.
    boxed: AtomicPtr<V>,
    pub(crate) hash: u32,
    /// Written under the chain's lock; read by writers (accounting) only.
    weight: AtomicU32,
}

impl<K, V> Entry<K, V> {
    /// An entry for `key` of full hash `hash`.
    pub(crate) fn new(hash: u64, key: K, value: V, weight: u64) -> Self {
        Self {
            key,
            inline: ManuallyDrop::new(value),
            boxed: AtomicPtr::new(ptr::null_mut()),
            hash: hash as u32,
            weight: AtomicU32::new(saturate(weight)),
        }
    }

    /// The current value.
    #[inline]
    pub(crate) fn value(&self) -> &V {
        // Acquire: pairs with the AcqRel swap that installed the box after
        // writing it.
        let p = self.boxed.load(Acquire);
        if p.is_null() {
            &self.inline
        } else {
            // SAFETY: a box installed in this entry is freed only by a deferred
            // function scheduled when it was replaced, or with the entry: after
            // the guard under which the caller reached the entry (G3).
            unsafe { &*p }
        }
    }

    /// The current weight.
    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Well-mixed bits for choosing a counter stripe.
    #[inline]
    fn hint(&self) -> u64 {
        u64::from(self.hash) << 32
    }
}

impl<K, V> Drop for Entry<K, V> {
    fn drop(&mut self) {
        let p = self.boxed.load(Relaxed);
        if p.is_null() {
            // SAFETY: never moved out (no box installed); dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.inline) };
        } else {
            // SAFETY: the entry owns its current box.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// A weight as an entry keeps it.
fn saturate(weight: u64) -> u32 {
    u32::try_from(weight).unwrap_or(u32::MAX)
}

/// A group's control word, state bits and tags: what a lookup reads first. Kept
/// apart from the slots, eight to a cache line, so that the control array of a
/// large table stays in the CPU's caches and a hit misses only on its slot.
#[repr(C, align(8))]
struct Ctrl {
    state: AtomicU64,
}

impl Ctrl {
    fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
        }
    }
}

/// A group's slots, its overflow link and its CLOCK counters.
#[repr(C, align(64))]
struct Body<K, V> {
    slots: [UnsafeCell<MaybeUninit<Entry<K, V>>>; SLOTS],
    /// Set (then `LINKED` in the state) when the group fills.
    overflow: AtomicPtr<Overflow<K, V>>,
    /// GCLOCK counters (bounded mode). `Relaxed` throughout: a hint for the
    /// eviction hand that orders nothing.
    clocks: [AtomicU8; 8],
}

impl<K, V> Body<K, V> {
    fn new() -> Self {
        Self {
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; SLOTS],
            overflow: AtomicPtr::new(ptr::null_mut()),
            clocks: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

/// An overflow group, allocated on its own and linked from the group before it.
struct Overflow<K, V> {
    ctrl: Ctrl,
    body: Body<K, V>,
}

/// A group: its control word and its body, in a table's arrays or in an
/// overflow allocation.
struct Group<'a, K, V> {
    ctrl: &'a Ctrl,
    body: &'a Body<K, V>,
}

impl<K, V> Clone for Group<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Group<'_, K, V> {}

// SAFETY: other threads read `&K`/`&V` through a body (needs `Sync`) and drop
// entries in deferred releases or at drop (needs `Send`); the bounds require both.
// The cells are written only under G2's rules.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Body<K, V> {}
// SAFETY: as for `Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Body<K, V> {}

impl<'a, K, V> Group<'a, K, V> {
    /// The entry in slot `i`.
    ///
    /// # Safety
    /// Slot `i` is reserved (G1) and its table is not freed while the reference
    /// lives: it was seen occupied under a guard that outlives `'b` (G3, G4), or
    /// the caller holds the chain's lock and does not release the slot meanwhile.
    #[inline]
    unsafe fn entry<'b>(self, i: usize) -> &'b Entry<K, V> {
        // SAFETY: initialised by G1; not freed for `'b` by the caller's contract.
        unsafe { &*(*self.body.slots[i].get()).as_ptr() }
    }

    /// The occupied slot of this group, in `state`, holding `hash` and a key
    /// `eq` accepts.
    #[inline]
    fn find(self, state: u64, hash: u64, eq: &impl Fn(&K) -> bool) -> Option<usize> {
        slots_in(matching(state, tag(hash))).find(|&i| {
            // SAFETY: occupied in a state loaded by this thread, which holds a
            // guard (readers) or the lock (writers); see `entry`.
            let e = unsafe { self.entry(i) };
            e.hash == hash as u32 && eq(&e.key)
        })
    }

    /// The next group of the chain that may hold an occupied slot, given this
    /// group's `state`: none when no later group has one (`MORE`).
    #[inline]
    fn next_after(self, state: u64) -> Option<Group<'a, K, V>> {
        if state & MORE == 0 {
            return None;
        }
        // `MORE` may be set just before `LINKED`, while a full group's writer
        // links the group its entry will go to: then nothing is published there.
        self.linked_after(state)
    }

    /// The next group of the chain, occupied or not, given this group's `state`.
    #[inline]
    fn linked_after(self, state: u64) -> Option<Group<'a, K, V>> {
        if state & LINKED == 0 {
            return None;
        }
        // Acquire: pairs with the Release store that linked the group after
        // initialising it.
        let p = self.body.overflow.load(Acquire);
        // SAFETY: `LINKED` is set after the pointer; overflow groups are freed
        // with their table only (G4), which outlives `'a`.
        let o = unsafe { &*p };
        Some(Group {
            ctrl: &o.ctrl,
            body: &o.body,
        })
    }

    /// The next group of the chain that may hold an occupied slot.
    #[inline]
    fn next(self) -> Option<Group<'a, K, V>> {
        // Acquire: pairs with the Release RMWs that set `LINKED` and `MORE`.
        self.next_after(self.ctrl.state.load(Acquire))
    }

    /// This group and the overflow groups after it that may hold occupied slots.
    fn chain(self) -> impl Iterator<Item = Group<'a, K, V>> {
        std::iter::successors(Some(self), |g| g.next())
    }

    /// Raises slot `i`'s CLOCK counter, writing only while below the ceiling.
    #[inline]
    fn touch(self, i: usize) {
        let c = self.body.clocks[i].load(Relaxed);
        if c < CLOCK_MAX {
            self.body.clocks[i].store(c + 1, Relaxed);
        }
    }
}

/// A chain's writer lock, released on drop.
struct ChainLock<'a>(&'a AtomicU64);

impl ChainLock<'_> {
    /// Adds `delta` to `g`'s state (setting bits the lock holder knows are clear,
    /// or clearing bits it knows are set: no carry or borrow crosses a bit) with
    /// `Release`, and releases the lock, in one RMW when `g` is the chain's head.
    fn commit<K, V>(self, g: Group<'_, K, V>, delta: u64) {
        if ptr::eq(self.0, &g.ctrl.state) {
            // Release: publishes the slot writes (G2) and hands the chain to the
            // next holder (pairs with its Acquire CAS).
            self.0.fetch_add(delta.wrapping_sub(LOCKED), Release);
            std::mem::forget(self);
        } else {
            g.ctrl.state.fetch_add(delta, Release);
        }
    }
}

/// The state delta that publishes slot `i` with `tag` (its occupied and reserved
/// bits and its tag field, known clear).
#[inline]
fn publish(i: usize, tag: u64) -> u64 {
    occupied(i) + reserved(i) + (tag << (TAG_SHIFT + TAG_BITS * i))
}

/// The state delta that clears occupied bit `i` (known set).
#[inline]
fn unpublish(i: usize) -> u64 {
    occupied(i).wrapping_neg()
}

impl Drop for ChainLock<'_> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire CAS of the next holder.
        self.0.fetch_and(!LOCKED, Release);
    }
}

/// Takes the lock of the chain at `head`, unless the chain has moved.
fn lock_chain<K, V>(head: Group<'_, K, V>) -> Option<ChainLock<'_>> {
    let state = &head.ctrl.state;
    let mut spins = 0u32;
    loop {
        // Acquire: a moved chain's entries are read in the next table, whose
        // link this orders after (pairs with the Release that set MOVED).
        let s = state.load(Acquire);
        if s & MOVED != 0 {
            return None;
        }
        // Acquire: pairs with the Release that unlocked, so the previous
        // holder's writes are visible.
        if s & LOCKED == 0
            && state
                .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                .is_ok()
        {
            return Some(ChainLock(state));
        }
        spin(&mut spins);
    }
}

/// The group and slot of the occupied entry for `hash` and `eq`, under the lock.
fn find_locked<'a, K, V>(
    head: Group<'a, K, V>,
    hash: u64,
    eq: &impl Fn(&K) -> bool,
) -> Option<(Group<'a, K, V>, usize)> {
    head.chain().find_map(|g| {
        // Acquire: as in `RawMap::get`.
        g.find(g.ctrl.state.load(Acquire), hash, eq).map(|i| (g, i))
    })
}

/// A slot with its reserved bit clear in the chain at `head`, first in chain
/// order, linking a new overflow group when the chain has none. Sets `MORE` in
/// the groups before it, for the entry the caller will publish there. Under the
/// lock.
fn free_slot<K, V>(head: Group<'_, K, V>) -> (Group<'_, K, V>, usize) {
    let mut g = head;
    loop {
        // Acquire: pairs with a release's Release clear of the reserved bit, so
        // its drop happened before the slot is overwritten (G2).
        let state = g.ctrl.state.load(Acquire);
        let used = reserved_set(state);
        if used != OCCUPIED {
            return (g, (!used & OCCUPIED).trailing_zeros() as usize);
        }
        if state & MORE == 0 {
            // Release: before the publishing RMW, so a reader that sees the
            // entry's group skipped sees it unpublished too.
            g.ctrl.state.fetch_or(MORE, Release);
        }
        match g.linked_after(state) {
            Some(n) => g = n,
            None => {
                let o = Box::into_raw(Box::new(Overflow {
                    ctrl: Ctrl::new(),
                    body: Body::new(),
                }));
                // Release (both): the group is initialised before readers
                // reach it through the pointer, and the pointer before `LINKED`.
                g.body.overflow.store(o, Release);
                g.ctrl.state.fetch_or(LINKED, Release);
                // SAFETY: just allocated; freed with the table (G4).
                let o = unsafe { &*o };
                let n = Group {
                    ctrl: &o.ctrl,
                    body: &o.body,
                };
                return (n, 0);
            }
        }
    }
}

/// Makes the `MORE` bit of `g` and of the groups after it exact again after
/// removals emptied overflow groups; returns whether `g` or a later group holds
/// an occupied slot. Under the lock. Recursive over the chain, which is short.
fn settle_more<K, V>(g: Group<'_, K, V>) -> bool {
    // Acquire: as in `find_locked`.
    let state = g.ctrl.state.load(Acquire);
    let later = g.linked_after(state).is_some_and(settle_more);
    if later != (state & MORE != 0) {
        // Release: a reader that sees `MORE` clear skips only empty groups.
        if later {
            g.ctrl.state.fetch_or(MORE, Release);
        } else {
            g.ctrl.state.fetch_and(!MORE, Release);
        }
    }
    later || state & OCCUPIED != 0
}

/// Writes `entry` into free slot `i` of `g`, with its CLOCK counter in bounded
/// mode (an unbounded map never reads them, and the store would cost an insert
/// a second line). Does not publish it (`publish` sets the tag).
///
/// # Safety
/// The caller holds the chain's lock and slot `i`'s reserved bit is clear (G2).
unsafe fn fill<K, V>(g: Group<'_, K, V>, i: usize, entry: Entry<K, V>, clock: Option<u8>) {
    if let Some(clock) = clock {
        g.body.clocks[i].store(clock, Relaxed);
    }
    // SAFETY: the caller's contract.
    unsafe { (*g.body.slots[i].get()).write(entry) };
}

/// Schedules the drop of slot `i` of `g` (in `table`) and the clearing of its
/// reserved bit for when no guard pinned now remains. Counted in the table's
/// pending releases until it has run.
fn release<K: Send + 'static, V: Send + 'static>(
    table: &Table<K, V>,
    g: Group<'_, K, V>,
    i: usize,
    guard: &Guard,
) {
    let stripe = table.pending.up();
    let t = table as *const Table<K, V> as usize;
    // SAFETY: reserved until the release below runs.
    let e = unsafe { g.entry(i) };
    // An entry with nothing to drop is not read again: the release then touches
    // only the control word, not the slot's line. Relaxed: `boxed` is written
    // under the chain's lock only, which the caller held when it unpublished the
    // slot, and no writer finds the slot since.
    let drops =
        mem::needs_drop::<K>() || mem::needs_drop::<V>() || !e.boxed.load(Relaxed).is_null();
    // Three words, so that crossbeam-epoch stores the closure inline instead of
    // boxing it: whether to drop rides in the control pointer's low bit (a
    // control word is 8-byte aligned), the slot and the stripe in the body
    // pointer's (a body is 64-byte aligned; `i < 8`, `stripe < 8`).
    let ctrl = g.ctrl as *const Ctrl as usize | usize::from(drops);
    let body = g.body as *const Body<K, V> as usize | i | stripe << 3;
    // SAFETY: the closure runs after every guard that could read the slot is gone
    // (G3), and before the table is freed: it holds one of the table's pending
    // counts until its last step (G4). `K` and `V` are `Send + 'static`.
    unsafe {
        guard.defer_unchecked(move || {
            let (i, stripe) = (body & 7, body >> 3 & 7);
            let body = &*((body & !63) as *const Body<K, V>);
            if ctrl & 1 != 0 {
                ptr::drop_in_place((*body.slots[i].get()).as_mut_ptr());
            }
            let ctrl = ctrl & !1;
            // Release: pairs with the Acquire loads of `free_slot`. The tag
            // goes with the reserved bit (G1).
            (*(ctrl as *const Ctrl))
                .state
                .fetch_and(!(reserved(i) | tag_field(i)), Release);
            Table::down(t as *mut Table<K, V>, stripe);
        });
    }
}

/// Stripes of a table's pending-release count (at most 8: see `release`).
#[cfg(not(crossbeam_loom))]
const PENDING_STRIPES: usize = 8;
#[cfg(crossbeam_loom)]
const PENDING_STRIPES: usize = 1;

// `release` packs a slot index and a stripe into a body pointer's low bits.
const _: () = assert!(
    SLOTS <= 8
        && PENDING_STRIPES <= 8
        && align_of::<Ctrl>() >= 2
        && align_of::<Body<u8, u8>>() >= 64
);

/// How many deferred releases of a table have not run yet, plus one *owner
/// token* held while the table is reachable (dropped once it is unlinked and the
/// guards of that time are gone, or when the map is dropped). Striped so that
/// writers to different chains do not contend; the last count to go frees the
/// table.
///
/// A table gets no new release once its owner token is dropped (writers stop at
/// moved chains, and a dropped map has none), so after that every stripe only
/// falls, and all stripes seen at zero means none will rise again.
struct Pending {
    stripes: [Padded<AtomicUsize>; PENDING_STRIPES],
    /// Set by the one thread that frees the table.
    freed: AtomicU8,
}

impl Pending {
    fn new() -> Self {
        let p = Self {
            stripes: std::array::from_fn(|_| Padded(AtomicUsize::new(0))),
            freed: AtomicU8::new(0),
        };
        // The owner token.
        p.stripes[0].0.store(1, Relaxed);
        p
    }

    /// Counts one more pending release; returns its stripe.
    fn up(&self) -> usize {
        // Spread by the calling thread's stack address: stable per thread and
        // distinct between threads, with no thread-local lookup.
        let probe = 0u8;
        let s = (&probe as *const u8 as usize >> 12) % PENDING_STRIPES;
        // Relaxed: the count is raised before the release is deferred, on this
        // thread; only its fall orders anything (`down`).
        self.stripes[s].0.fetch_add(1, Relaxed);
        s
    }

    /// Whether every stripe is zero.
    fn all_zero(&self) -> bool {
        // Acquire: pairs with the AcqRel decrements, so every release's work
        // happened before the table is freed.
        self.stripes.iter().all(|s| s.0.load(Acquire) == 0)
    }
}

/// Arrays at least this large are aligned to, and advised as, huge pages.
const HUGE_PAGE: usize = 2 << 20;

/// A fixed-size array of a table, allocated by hand so that a large one can be
/// backed by transparent huge pages: a lookup's one miss then rarely adds a TLB
/// miss (a page walk) on top. The kernel decides; where huge pages are off or
/// unavailable this is an ordinary allocation.
struct Array<T> {
    ptr: NonNull<T>,
    len: usize,
}

impl<T> Array<T> {
    fn new(len: usize, mut make: impl FnMut() -> T) -> Self {
        let layout = Self::layout(len);
        if layout.size() == 0 {
            return Self {
                ptr: NonNull::dangling(),
                len,
            };
        }
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) }.cast::<T>();
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout);
        };
        #[cfg(all(target_os = "linux", not(crossbeam_loom)))]
        if layout.size() >= HUGE_PAGE {
            // SAFETY: advice on memory this array owns, page aligned (the layout's
            // alignment is a huge page). A failure only means no huge pages.
            unsafe {
                libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE);
            }
        }
        for i in 0..len {
            // SAFETY: within the allocation; each element written once.
            unsafe { ptr.as_ptr().add(i).write(make()) };
        }
        Self { ptr, len }
    }

    fn layout(len: usize) -> Layout {
        let layout = Layout::array::<T>(len).expect("table size overflows");
        if layout.size() >= HUGE_PAGE {
            layout.align_to(HUGE_PAGE).expect("huge page alignment")
        } else {
            layout
        }
    }
}

impl<T> std::ops::Deref for Array<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements (`new`), alive until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Array<T> {
    fn drop(&mut self) {
        let layout = Self::layout(self.len);
        // SAFETY: the elements were initialised in `new` and are dropped once
        // here; the memory was allocated with this same layout.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len));
            if layout.size() != 0 {
                alloc::dealloc(self.ptr.as_ptr().cast(), layout);
            }
        }
    }
}

// SAFETY: an owned array of `T`.
unsafe impl<T: Send> Send for Array<T> {}
// SAFETY: shared access hands out `&T` only.
unsafe impl<T: Sync> Sync for Array<T> {}

/// One table: the groups and, during a resize, the next table.
struct Table<K, V> {
    ctrls: Array<Ctrl>,
    bodies: Array<Body<K, V>>,
    mask: usize,
    /// The table this one is being moved into; null when no resize is under way.
    next: AtomicPtr<Table<K, V>>,
    /// Chains handed out to movers so far.
    claimed: AtomicUsize,
    /// Chains moved so far.
    moved: AtomicUsize,
    /// Pending releases and the owner token: see [`Pending`].
    pending: Pending,
}

impl<K, V> Table<K, V> {
    fn new(groups: usize) -> Self {
        Self {
            ctrls: Array::new(groups, Ctrl::new),
            bodies: Array::new(groups, Body::new),
            mask: groups - 1,
            next: AtomicPtr::new(ptr::null_mut()),
            claimed: AtomicUsize::new(0),
            moved: AtomicUsize::new(0),
            pending: Pending::new(),
        }
    }

    /// Drops one count of stripe `stripe` of `table`'s pending releases (stripe 0
    /// for the owner token), freeing the table when it was the last.
    ///
    /// # Safety
    /// The caller holds that count, and does not touch the table afterwards.
    unsafe fn down(table: *mut Table<K, V>, stripe: usize) {
        // SAFETY: allocated while a count is held.
        let t = unsafe { &*table };
        // AcqRel: Release orders this holder's work before the free; Acquire
        // (with `all_zero`'s) orders the others' before it, if this thread frees.
        if t.pending.stripes[stripe].0.fetch_sub(1, AcqRel) == 1
            && t.pending.all_zero()
            && t.pending.freed.swap(1, AcqRel) == 0
        {
            // SAFETY: no count is left, none can be taken any more (see
            // `Pending`), and `freed` makes this the only free.
            drop(unsafe { Box::from_raw(table) });
        }
    }

    /// Number of groups (chains).
    #[inline]
    fn len(&self) -> usize {
        self.ctrls.len()
    }

    /// The head group of chain `j`.
    #[inline]
    fn group(&self, j: usize) -> Group<'_, K, V> {
        Group {
            ctrl: &self.ctrls[j],
            body: &self.bodies[j],
        }
    }

    #[inline]
    fn head(&self, hash: u64) -> Group<'_, K, V> {
        self.group(hash as usize & self.mask)
    }

    /// The head groups of every chain.
    fn heads(&self) -> impl Iterator<Item = Group<'_, K, V>> {
        (0..self.len()).map(|j| self.group(j))
    }

    /// The table being filled from this one.
    ///
    /// # Safety
    /// A resize of this table is under way (a chain was seen moved, or `next`
    /// non-null), so `next` is set, and the caller's guard keeps it.
    #[inline]
    unsafe fn next_table<'g>(&self) -> &'g Table<K, V> {
        // Acquire: pairs with the Release CAS that installed it.
        let n = self.next.load(Acquire);
        debug_assert!(!n.is_null());
        // SAFETY: the caller's contract; a table is freed only after it is
        // unlinked and the guards of that time are gone (G4).
        unsafe { &*n }
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        // The entries are dropped (or moved out) before: only the overflow
        // groups are left to free.
        for body in self.bodies.iter() {
            let mut p = body.overflow.load(Relaxed);
            while !p.is_null() {
                // SAFETY: overflow groups are owned by their table, freed once here.
                let o = unsafe { Box::from_raw(p) };
                p = o.body.overflow.load(Relaxed);
            }
        }
    }
}

/// What a write found and did.
pub(crate) enum Outcome<'g, K, V> {
    /// The key was absent; this new entry is in.
    Inserted(&'g Entry<K, V>),
    /// The key was present; this was its value, now replaced.
    Replaced(&'g V),
    /// Insert-if-absent found this entry and left it; the new entry was dropped.
    Existing(&'g Entry<K, V>),
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
            Outcome::Rejected => "rejected",
        }
    }
}

/// The hash table. Hashing and the safe API are in [`super::EpochMap`].
pub(crate) struct RawMap<K, V> {
    root: AtomicPtr<Table<K, V>>,
    len: StripedCounter,
    weight: StripedCounter,
    /// The table never shrinks below this many groups.
    min_groups: usize,
    /// Bound on the total weight; `u64::MAX` for an unbounded map.
    max_weight: u64,
    /// CLOCK hand: the next root chain the evictor looks at.
    hand: AtomicUsize,
    evictions: AtomicU64,
    resizes: AtomicU64,
}

// SAFETY: the map shares entries as `Group` does.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for RawMap<K, V> {}
// SAFETY: as for `Send`.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawMap<K, V> {}

impl<K, V> RawMap<K, V> {
    pub(crate) fn new(capacity: usize, max_weight: u64) -> Self {
        let groups = groups_for(capacity);
        Self {
            root: AtomicPtr::new(Box::into_raw(Box::new(Table::new(groups)))),
            len: StripedCounter::new(),
            weight: StripedCounter::new(),
            min_groups: groups,
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

    /// Groups of the current root table.
    pub(crate) fn groups(&self, guard: &Guard) -> usize {
        self.root(guard).len()
    }

    /// Whether a resize is under way.
    pub(crate) fn is_resizing(&self, guard: &Guard) -> bool {
        // Relaxed: only nullness is used.
        !self.root(guard).next.load(Relaxed).is_null()
    }

    #[inline]
    fn root<'g>(&self, _guard: &'g Guard) -> &'g Table<K, V> {
        // Acquire: pairs with the Release CAS in `finish` that installs a new
        // root (the first is published by whatever shared the map).
        let t = self.root.load(Acquire);
        // SAFETY: never null; a table loaded from `root` under a guard is freed
        // only after that guard is gone (G4).
        unsafe { &*t }
    }

    /// Appends to `out` every entry reachable from chain `j` of `t` (a table
    /// loaded under a guard that lives for `'g`) whose hash
    /// satisfies `hash & fmask == fval`, following moved chains into later tables:
    /// each key along exactly one path, however many resizes happened since, and
    /// once.
    fn visit<'g>(
        t: &'g Table<K, V>,
        j: usize,
        (fmask, fval): (usize, usize),
        out: &mut Vec<&'g Entry<K, V>>,
    ) where
        K: Eq,
    {
        // Chain `j` holds only hashes with `hash & t.mask == j`. Both masks are
        // low-bit masks, so the two conditions together are the finer one, or
        // nothing when they disagree: then no key of this path is here. So two
        // paths that split in a grown table and meet again in a shrunk one each
        // keep only their own keys.
        let (fmask, fval) = if t.mask > fmask {
            if j & fmask != fval {
                return;
            }
            (t.mask, j)
        } else {
            if fval & t.mask != j {
                return;
            }
            (fmask, fval)
        };
        let head = t.group(j);
        // Acquire: as in `get`.
        if head.ctrl.state.load(Acquire) & MOVED != 0 {
            // SAFETY: a chain moved, so `next` is set.
            let n: &'g Table<K, V> = unsafe { t.next_table() };
            if n.len() > t.len() {
                Self::visit(n, j, (fmask, fval), out);
                Self::visit(n, j + t.len(), (fmask, fval), out);
            } else {
                Self::visit(n, j & n.mask, (fmask, fval), out);
            }
            return;
        }
        let start = out.len();
        for g in head.chain() {
            // Acquire: as in `get`.
            for i in slots_in(g.ctrl.state.load(Acquire) & OCCUPIED) {
                // SAFETY: occupied when loaded under `guard` (G3, G4).
                let e = unsafe { g.entry(i) };
                if e.hash as usize & fmask == fval {
                    out.push(e);
                }
            }
        }
        // The scan can meet a key twice: replaced (or removed and inserted again)
        // into a later group of the chain after the scan passed its first slot.
        // Keep one (either was the key's value during the iteration). A chain
        // holds a handful of entries.
        let mut k = start;
        while k < out.len() {
            if out[k + 1..].iter().any(|e| e.key == out[k].key) {
                out.remove(k);
            } else {
                k += 1;
            }
        }
    }

    /// Iterates over the entries, one root chain at a time.
    pub(crate) fn iter<'g>(&'g self, guard: &'g Guard) -> RawIter<'g, K, V> {
        let table = self.root(guard);
        RawIter {
            table,
            next_chain: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl<K, V> RawMap<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// The entry for `hash` whose key `eq` accepts. Stores nothing but, with
    /// `touch` in bounded mode, the CLOCK counter when below its ceiling.
    #[inline]
    pub(crate) fn get<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        touch: bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        let mut t = self.root(guard);
        'table: loop {
            let head = t.head(hash);
            // Acquire: pairs with the Release RMW that set an occupied bit after
            // writing the slot (G2), and with the one that set MOVED.
            let mut state = head.ctrl.state.load(Acquire);
            if state & MOVED != 0 {
                // SAFETY: a chain moved, so `next` is set.
                t = unsafe { t.next_table() };
                continue 'table;
            }
            let mut g = head;
            loop {
                if let Some(i) = g.find(state, hash, &eq) {
                    if touch && self.is_bounded() {
                        g.touch(i);
                    }
                    // SAFETY: occupied when loaded under `guard`: a removal defers
                    // the drop past it (G3), and the table outlives it (G4).
                    return Some(unsafe { g.entry(i) });
                }
                g = g.next_after(state)?;
                // Acquire: as above.
                state = g.ctrl.state.load(Acquire);
            }
        }
    }

    /// Locks the chain holding the truth for `hash`, moving on to later tables
    /// past moved chains. Returns the table and the lock.
    fn lock_for<'g>(&self, hash: u64, guard: &'g Guard) -> (&'g Table<K, V>, ChainLock<'g>) {
        let mut t = self.root(guard);
        loop {
            match lock_chain(t.head(hash)) {
                Some(lock) => return (t, lock),
                // SAFETY: a chain moved, so `next` is set.
                None => t = unsafe { t.next_table() },
            }
        }
    }

    /// Inserts `key` (of full hash `hash`) with `value`, replacing the value of an
    /// equal key unless `if_absent`.
    pub(crate) fn insert<'g>(
        &self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        if_absent: bool,
        guard: &'g Guard,
    ) -> Outcome<'g, K, V>
    where
        K: Eq,
    {
        if weight > self.max_weight {
            // The caller meant to replace the key's value: drop the old one too.
            self.remove(hash, |k| *k == key, guard);
            return Outcome::Rejected;
        }
        let weight = saturate(weight);
        let (t, lock) = self.lock_for(hash, guard);
        let head = t.head(hash);
        let out = match find_locked(head, hash, &|k: &K| *k == key) {
            Some((g, i)) if if_absent => {
                drop(lock);
                // SAFETY: occupied under the lock and `guard`.
                return Outcome::Existing(unsafe { g.entry(i) });
            }
            Some((g, i)) => {
                // SAFETY: occupied under the lock and `guard`.
                let e = unsafe { g.entry(i) };
                let new = Box::into_raw(Box::new(value));
                // AcqRel: Release publishes the box's contents to `value`'s
                // Acquire load; Acquire makes the old box's contents ours to move.
                let old = e.boxed.swap(new, AcqRel);
                let old_weight = e.weight.swap(weight, Relaxed);
                drop(lock);
                let old: *mut V = if old.is_null() {
                    // The first replacement: move the inline value out to a box
                    // of its own. Its bits stay in the slot for readers that
                    // loaded it, and the entry never drops them again (`Drop`).
                    // SAFETY: never moved before (no box was installed), and the
                    // lock was held across the swap, so no other writer did.
                    Box::into_raw(Box::new(unsafe { ptr::read(&*e.inline) }))
                } else {
                    old
                };
                // SAFETY: the box is freed only by the deferred drop below, after
                // `guard`.
                let old_ref: &'g V = unsafe { &*old };
                let addr = old as usize;
                // SAFETY: unlinked from the entry by the swap (or never in it);
                // freed once no guard that could have loaded it remains. `V` is
                // `Send + 'static`.
                unsafe { guard.defer_unchecked(move || drop(Box::from_raw(addr as *mut V))) };
                self.weigh(hash, weight as isize - old_weight as isize);
                Outcome::Replaced(old_ref)
            }
            None => {
                let (g, i) = free_slot(head);
                // SAFETY: lock held, reserved bit clear (G2).
                unsafe {
                    fill(
                        g,
                        i,
                        Entry::new(hash, key, value, weight.into()),
                        self.is_bounded().then_some(0),
                    )
                };
                lock.commit(g, publish(i, tag(hash)));
                let check = self.count(hash, 1);
                self.weigh(hash, weight as isize);
                self.after_write(check, guard);
                // SAFETY: published; released only after `guard` is gone.
                Outcome::Inserted(unsafe { g.entry(i) })
            }
        };
        if let Outcome::Replaced(_) = out {
            // Same length: no resize to start, but keep helping one.
            self.after_write(false, guard);
        }
        if self.is_bounded() && self.weight() > self.max_weight {
            self.evict(guard);
        }
        out
    }

    /// Removes the entry for `hash` whose key `eq` accepts.
    pub(crate) fn remove<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>> {
        let (t, lock) = self.lock_for(hash, guard);
        let Some((g, i)) = find_locked(t.head(hash), hash, &eq) else {
            drop(lock);
            // Misses too keep a resize moving on a map that sees only them.
            self.after_write(false, guard);
            return None;
        };
        let head = t.head(hash);
        if ptr::eq(g.ctrl, head.ctrl) {
            lock.commit(g, unpublish(i));
        } else {
            // Release: as `commit`'s.
            let state = g.ctrl.state.fetch_add(unpublish(i), Release);
            if state.wrapping_add(unpublish(i)) & (OCCUPIED | MORE) == 0 {
                settle_more(head);
            }
            drop(lock);
        }
        let out = Some(self.unlinked(t, g, i, guard));
        self.after_write(out.is_some_and(|(_, check)| check), guard);
        out.map(|(e, _)| e)
    }

    /// Book-keeping after occupied slot `i` of `g` was cleared: schedules its
    /// release and counts it out. Also says whether to check the load (see
    /// [`sampled`]).
    fn unlinked<'g>(
        &self,
        t: &Table<K, V>,
        g: Group<'_, K, V>,
        i: usize,
        guard: &'g Guard,
    ) -> (&'g Entry<K, V>, bool) {
        release(t, g, i, guard);
        // SAFETY: reserved until the release, which waits for `guard`.
        let e = unsafe { g.entry(i) };
        let check = self.count(e.hint(), -1);
        self.weigh(e.hint(), -(e.weight() as isize));
        (e, check)
    }

    /// Counts an entry in or out; whether this write should check the load.
    #[inline]
    fn count(&self, hash: u64, delta: isize) -> bool {
        self.len.add(hash, delta);
        sampled()
    }

    /// Weights are kept in bounded mode only (an unbounded map reports its
    /// length as its weight), which spares unbounded writes an atomic.
    #[inline]
    fn weigh(&self, hash: u64, delta: isize) {
        if self.is_bounded() && delta != 0 {
            self.weight.add(hash, delta);
        }
    }

    /// After a write: helps a resize under way, or, if `check`, starts one when
    /// the load has left its range.
    fn after_write(&self, check: bool, guard: &Guard) {
        let t = self.root(guard);
        // Acquire: pairs with the CAS below (by another thread).
        if !t.next.load(Acquire).is_null() {
            self.help(t, guard);
            return;
        }
        if !check {
            return;
        }
        let n = t.len();
        let len = self.len();
        let target = if len.saturating_mul(GROW_ABOVE.1) > n * GROW_ABOVE.0 && n < MAX_GROUPS {
            n * 2
        } else if n > self.min_groups && len.saturating_mul(SHRINK_BELOW.1) < n * SHRINK_BELOW.0 {
            n / 2
        } else {
            return;
        };
        let new = Box::into_raw(Box::new(Table::new(target)));
        // Success Release: publishes the new table to the Acquire loads of
        // `next`. Failure: another writer won; free ours and help.
        // `next` is set only while `t` is root: `t` stops being root only after
        // all its chains moved into its `next`.
        if t.next
            .compare_exchange(ptr::null_mut(), new, Release, Relaxed)
            .is_err()
        {
            // SAFETY: never published.
            drop(unsafe { Box::from_raw(new) });
        }
        self.help(t, guard);
    }

    /// Moves a chunk of `t`'s chains into its next table.
    fn help(&self, t: &Table<K, V>, guard: &Guard) {
        let n = t.len();
        // Relaxed: hands out indices; the moves synchronise through the locks.
        let start = t.claimed.fetch_add(MOVE_CHUNK, Relaxed);
        if start >= n {
            return;
        }
        // SAFETY: a resize of `t` is under way (callers saw `next` set).
        let next = unsafe { t.next_table() };
        for j in start..(start + MOVE_CHUNK).min(n) {
            self.move_chain(t, next, j, guard);
        }
    }

    /// Moves chain `j` of `t` into `next`, unless it moved already.
    fn move_chain(&self, t: &Table<K, V>, next: &Table<K, V>, j: usize, guard: &Guard) {
        let head = t.group(j);
        let Some(lock) = lock_chain(head) else {
            return;
        };
        for g in head.chain() {
            // Acquire: as in `find_locked`.
            let state = g.ctrl.state.load(Acquire);
            for i in slots_in(state & OCCUPIED) {
                // SAFETY: occupied under the lock.
                let hash = unsafe { g.entry(i) }.hash;
                // `next` is not resizing (a resize starts only at the root, and
                // `t` is still root), so its chains never move meanwhile. The low
                // half of the hash places it (tables stay below 2^32 groups).
                let target = next.head(u64::from(hash));
                let tlock = lock_chain(target).expect("a table being filled does not move");
                let (tg, ti) = free_slot(target);
                // SAFETY: the source is occupied and stays unchanged (its chain is
                // locked for good); the copy takes over ownership (G3), the source
                // is never dropped from the old table. The target slot is free
                // under its chain's lock (G2).
                unsafe {
                    let e = ptr::read((*g.body.slots[i].get()).as_ptr());
                    let clock = self.is_bounded().then(|| g.body.clocks[i].load(Relaxed));
                    fill(tg, ti, e, clock);
                }
                // Release: publishes the copy (G2).
                tg.ctrl
                    .state
                    .fetch_add(publish(ti, tag_in(state, i)), Release);
                drop(tlock);
            }
        }
        // The chain keeps its lock for good. Release: readers and writers that
        // see MOVED see the copies.
        head.ctrl.state.fetch_or(MOVED, Release);
        std::mem::forget(lock);
        // AcqRel: the last mover sees every other move before swapping the root.
        if t.moved.fetch_add(1, AcqRel) + 1 == t.len() {
            self.finish(t, next, guard);
        }
    }

    /// Makes `next` the root in place of `t`, whose chains have all moved, and
    /// retires `t`.
    fn finish(&self, t: &Table<K, V>, next: &Table<K, V>, guard: &Guard) {
        let old = t as *const Table<K, V> as *mut Table<K, V>;
        // Release: publishes the moves to `root`'s Acquire loads. Only the thread
        // that moved the last chain gets here, and `t` stays root until it does.
        let swapped = self.root.compare_exchange(
            old,
            next as *const Table<K, V> as *mut Table<K, V>,
            Release,
            Relaxed,
        );
        debug_assert!(swapped.is_ok(), "resize finished twice");
        self.resizes.fetch_add(1, Relaxed);
        let addr = old as usize;
        // SAFETY: `t` was unlinked from `root` just now and its entries all moved
        // (owned by `next` now): once the guards of now are gone, nothing reaches
        // it, and the owner token goes (G4). The table is freed then, or by its
        // last pending release.
        unsafe { guard.defer_unchecked(move || Table::down(addr as *mut Table<K, V>, 0)) };
    }

    /// CLOCK eviction until the total weight is within the bound. The hand sweeps
    /// the root's chains (or the chains they moved into) under their locks: an entry with a zero counter is
    /// removed, others are decremented (GCLOCK). Concurrent evictors share the
    /// hand.
    fn evict(&self, guard: &Guard) {
        let mut steps = 0usize;
        while self.weight() > self.max_weight {
            let t = self.root(guard);
            let n = t.len();
            // Each full sweep lowers every counter, so CLOCK_MAX + 1 sweeps
            // suffice unless entries keep arriving; then give up for now.
            if steps > (usize::from(CLOCK_MAX) + 2) * n {
                break;
            }
            steps += 1;
            // Relaxed: the hand only spreads evictors over the table.
            let mut j = self.hand.fetch_add(1, Relaxed) % n;
            // A moved chain's entries are in the next table: sweep there (chain
            // `j` of a grown table, the one `j` shrinks into otherwise).
            let mut t = t;
            let lock = loop {
                match lock_chain(t.group(j)) {
                    Some(lock) => break lock,
                    None => {
                        // SAFETY: a chain moved, so `next` is set.
                        t = unsafe { t.next_table() };
                        j &= t.mask;
                    }
                }
            };
            let mut emptied = false;
            'chain: for g in t.group(j).chain() {
                // Acquire: as in `find_locked`.
                for i in slots_in(g.ctrl.state.load(Acquire) & OCCUPIED) {
                    // The hand stops as soon as the bound holds: entries it has
                    // not reached keep their counters (a chain holds several
                    // entries; ageing them all per eviction would age hot
                    // entries faster than CLOCK does).
                    if self.weight() <= self.max_weight {
                        break 'chain;
                    }
                    let c = g.body.clocks[i].load(Relaxed);
                    if c > 0 {
                        g.body.clocks[i].store(c - 1, Relaxed);
                    } else {
                        // Release: as in `remove`.
                        g.ctrl.state.fetch_and(!occupied(i), Release);
                        self.unlinked(t, g, i, guard);
                        self.evictions.fetch_add(1, Relaxed);
                        emptied |= !ptr::eq(g.ctrl, t.group(j).ctrl);
                    }
                }
            }
            if emptied {
                settle_more(t.group(j));
            }
            drop(lock);
        }
    }
}

/// Iterator over a [`RawMap`], weakly consistent (see [`super`]'s docs).
pub(crate) struct RawIter<'g, K, V> {
    /// The root when the iteration started, loaded under a guard living for `'g`.
    table: &'g Table<K, V>,
    next_chain: usize,
    buf: Vec<&'g Entry<K, V>>,
    pos: usize,
}

impl<'g, K: Eq, V> Iterator for RawIter<'g, K, V> {
    type Item = &'g Entry<K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos == self.buf.len() {
            if self.next_chain == self.table.len() {
                return None;
            }
            self.buf.clear();
            self.pos = 0;
            let j = self.next_chain;
            self.next_chain += 1;
            RawMap::visit(self.table, j, (self.table.mask, j), &mut self.buf);
        }
        self.pos += 1;
        Some(self.buf[self.pos - 1])
    }
}

impl<K, V> Drop for RawMap<K, V> {
    fn drop(&mut self) {
        // `&mut self`: no reader or writer remains, only deferred releases and
        // the owner tokens of tables retired earlier (which never reach the root).
        let t = self.root.load(Acquire);
        // SAFETY: the root is live and ours.
        let next = unsafe { &*t }.next.load(Acquire);
        for table in [t, next] {
            if table.is_null() {
                continue;
            }
            // SAFETY: exclusive access; during a resize the entries of moved
            // chains are owned by the next table, the others by the root (G3),
            // so each is dropped once. Nothing reaches either table afterwards,
            // so the owner token goes now (G4).
            unsafe {
                drop_owned(&*table);
                Table::down(table, 0);
            }
        }
    }
}

/// Drops the entries owned by `t` (those of chains that have not moved) and
/// clears their bits.
///
/// # Safety
/// The caller has exclusive access to `t`, and drops its entries only once.
unsafe fn drop_owned<K, V>(t: &Table<K, V>) {
    for head in t.heads() {
        if head.ctrl.state.load(Acquire) & MOVED != 0 {
            continue;
        }
        for g in head.chain() {
            let s = g.ctrl.state.load(Acquire);
            let occ = s & OCCUPIED;
            for i in slots_in(occ) {
                // SAFETY: occupied, so initialised and owned here (G1, G3).
                unsafe { ptr::drop_in_place((*g.body.slots[i].get()).as_mut_ptr()) };
            }
            let tags = slots_in(occ).fold(0, |m, i| m | tag_field(i));
            g.ctrl
                .state
                .fetch_and(!(occ | occ << RESERVED_SHIFT | tags), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicI64, AtomicU64 as StdU64, Ordering::SeqCst};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use super::*;

    /// Every key in chain 0 of tables up to 256 groups: long chains through
    /// every resize. The top bits vary, so tags differ; repeats of a tag exercise
    /// the full comparison.
    fn h(k: u64) -> u64 {
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !0xff
    }

    /// The packed tag comparison agrees with comparing field by field, for
    /// states with every mix of occupied bits, tags and flags.
    #[test]
    fn matching_agrees_with_a_field_by_field_comparison() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            // xorshift: states with random bits everywhere, tags included.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let state = x;
            for t in [
                tag(x.rotate_left(9)),
                tag_in(state, (x % 7) as usize),
                0,
                TAG_FIELD,
            ] {
                let want = (0..SLOTS)
                    .filter(|&i| state & occupied(i) != 0 && tag_in(state, i) == t)
                    .fold(0, |m, i| m | 1 << i);
                assert_eq!(matching(state, t), want, "state {state:#x}, tag {t}");
            }
        }
    }

    fn put<'g, V: Send + Sync + 'static>(
        m: &RawMap<u64, V>,
        k: u64,
        v: V,
        if_absent: bool,
        guard: &'g Guard,
    ) -> Outcome<'g, u64, V> {
        m.insert(h(k), k, v, 1, if_absent, guard)
    }

    /// Drives the collector until `live` reaches zero or ten seconds pass (tests
    /// running beside this one hold pins too, so one flush may not be enough).
    fn settle(live: &AtomicI64) {
        let start = Instant::now();
        while live.load(SeqCst) != 0 && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..64 {
                crossbeam_epoch::pin().flush();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Counts live values; a second drop trips the assertion.
    struct Tracked {
        v: u64,
        live: Arc<AtomicI64>,
        dropped: StdU64,
    }
    impl Tracked {
        fn new(v: u64, live: &Arc<AtomicI64>) -> Self {
            live.fetch_add(1, SeqCst);
            Self {
                v,
                live: Arc::clone(live),
                dropped: StdU64::new(0),
            }
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            assert_eq!(self.dropped.swap(1, SeqCst), 0, "dropped twice");
            self.live.fetch_sub(1, SeqCst);
        }
    }

    #[test]
    fn follows_a_model_through_long_chains_and_resizes() {
        let live = Arc::new(AtomicI64::new(0));
        let m: RawMap<u64, Tracked> = RawMap::new(1, u64::MAX);
        let mut model = HashMap::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        for step in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // The key range swells and shrinks, so the table grows and shrinks.
            let range = if (step / 5_000) % 2 == 0 { 300 } else { 7 };
            let k = x % range;
            let guard = crossbeam_epoch::pin();
            match x >> 60 {
                0..=7 => match (
                    put(&m, k, Tracked::new(step, &live), false, &guard),
                    model.insert(k, step),
                ) {
                    (Outcome::Inserted(e), None) => assert_eq!(e.value().v, step),
                    (Outcome::Replaced(v), Some(old)) => assert_eq!(v.v, old),
                    _ => panic!("insert {k}: outcome differs from the model"),
                },
                8..=9 => match (
                    put(&m, k, Tracked::new(step, &live), true, &guard),
                    model.get(&k),
                ) {
                    (Outcome::Existing(e), Some(&v)) => assert_eq!(e.value().v, v),
                    (Outcome::Inserted(_), None) => {
                        model.insert(k, step);
                    }
                    _ => panic!("insert-if-absent {k}: outcome differs from the model"),
                },
                10..=12 => {
                    let got = m.remove(h(k), |q| *q == k, &guard).map(|e| e.value().v);
                    assert_eq!(got, model.remove(&k), "remove {k}");
                }
                _ => {
                    let got = m.get(h(k), |q| *q == k, false, &guard).map(|e| e.value().v);
                    assert_eq!(got, model.get(&k).copied(), "get {k}");
                }
            }
            assert_eq!(m.len(), model.len());
        }
        assert!(m.resizes() >= 4, "{} resizes", m.resizes());
        let guard = crossbeam_epoch::pin();
        let mut seen = HashMap::new();
        for e in m.iter(&guard) {
            assert_eq!(e.weight(), 1);
            assert!(
                seen.insert(e.key, e.value().v).is_none(),
                "key {} twice",
                e.key
            );
        }
        assert_eq!(seen, model);
        drop(guard);
        drop(m);
        settle(&live);
        assert_eq!(live.load(SeqCst), 0, "values leaked or dropped twice");
    }

    #[test]
    fn readers_never_see_a_key_absent_or_going_back() {
        // Writers replace each key's value with rising versions and remove none,
        // while a third thread swells and drains other keys so the table keeps
        // growing and shrinking; readers must always find every key, with
        // versions that never decrease.
        const KEYS: u64 = 40;
        let m: Arc<RawMap<u64, u64>> = Arc::new(RawMap::new(1, u64::MAX));
        {
            let guard = crossbeam_epoch::pin();
            for k in 0..KEYS {
                put(&m, k, 0, false, &guard);
            }
        }
        let start = Arc::new(Barrier::new(5));
        let mut threads: Vec<_> = (0..2u64)
            .map(|w| {
                let (m, start) = (Arc::clone(&m), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for v in 1..=20_000u64 {
                        // Writer w owns the keys of its parity: versions rise.
                        let k = (v * 2 + w) % KEYS;
                        let guard = crossbeam_epoch::pin();
                        put(&m, k, v, false, &guard);
                    }
                })
            })
            .collect();
        {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            threads.push(std::thread::spawn(move || {
                start.wait();
                for round in 0..20u64 {
                    for k in 1_000..1_400 {
                        put(&m, k, round, false, &crossbeam_epoch::pin());
                    }
                    for k in 1_000..1_400 {
                        m.remove(h(k), |q| *q == k, &crossbeam_epoch::pin());
                    }
                }
            }));
        }
        threads.extend((0..2).map(|_| {
            let (m, start) = (Arc::clone(&m), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut last = vec![0u64; KEYS as usize];
                for n in 0..200_000u64 {
                    let k = n % KEYS;
                    let guard = crossbeam_epoch::pin();
                    let v = m.get(h(k), |q| *q == k, false, &guard).map(|e| *e.value());
                    let v = v.unwrap_or_else(|| panic!("key {k} absent"));
                    let l = &mut last[k as usize];
                    assert!(v >= *l, "key {k} went back from {l} to {v}");
                    *l = v;
                }
            })
        }));
        for t in threads {
            t.join().unwrap();
        }
        assert!(m.resizes() >= 2, "{} resizes", m.resizes());
    }

    #[test]
    fn a_hot_key_replaced_over_and_over_keeps_its_chain_short() {
        let m: RawMap<u64, u64> = RawMap::new(64, u64::MAX);
        for k in 0..64 {
            put(&m, k, 0, false, &crossbeam_epoch::pin());
        }
        for v in 1..200_000u64 {
            put(&m, 7, v, false, &crossbeam_epoch::pin());
        }
        let guard = crossbeam_epoch::pin();
        let t = m.root(&guard);
        let longest = t.heads().map(|h| h.chain().count()).max().unwrap_or(0);
        // 64 keys in one chain (see `h`) take ten groups: a replacement keeps its
        // key's slot.
        assert!(longest <= 10, "a chain of {longest} groups");
        assert_eq!(
            m.get(h(7), |q| *q == 7, false, &guard).map(|e| *e.value()),
            Some(199_999)
        );
    }

    #[test]
    fn emptied_overflow_groups_are_skipped_until_refilled() {
        let m: RawMap<u64, u64> = RawMap::new(64, u64::MAX);
        let pin = crossbeam_epoch::pin;
        // Forty keys in one chain (see `h`): the head and five overflow groups.
        for k in 0..40 {
            put(&m, k, k, false, &pin());
        }
        let more = |m: &RawMap<u64, u64>| {
            let guard = pin();
            let head = m.root(&guard).head(h(0));
            (
                head.chain().count(),
                head.ctrl.state.load(SeqCst) & MORE != 0,
            )
        };
        assert_eq!(more(&m), (6, true));
        // Emptying the overflow groups, last first and then first last.
        for k in (20..40).chain(7..20) {
            assert!(m.remove(h(k), |q| *q == k, &pin()).is_some(), "key {k}");
        }
        assert_eq!(more(&m), (1, false), "the empty tail is skipped");
        for k in 0..40 {
            let found = m.get(h(k), |q| *q == k, false, &pin()).map(|e| *e.value());
            assert_eq!(found, (k < 7).then_some(k), "key {k}");
        }
        // One more key lands after the head (whose slots stay reserved until
        // their releases run) and is found through the restored bit.
        put(&m, 100, 100, false, &pin());
        assert!(more(&m).1);
        let found = m
            .get(h(100), |q| *q == 100, false, &pin())
            .map(|e| *e.value());
        assert_eq!(found, Some(100));
        // Removing the head's keys leaves the tail reachable.
        for k in 0..7 {
            assert!(m.remove(h(k), |q| *q == k, &pin()).is_some(), "key {k}");
        }
        assert!(m.get(h(100), |q| *q == 100, false, &pin()).is_some());
        assert!(m.remove(h(100), |q| *q == 100, &pin()).is_some());
        assert_eq!(more(&m), (1, false));
    }

    #[test]
    fn concurrent_churn_frees_every_value_once() {
        let live = Arc::new(AtomicI64::new(0));
        let m: Arc<RawMap<u64, Tracked>> = Arc::new(RawMap::new(1, u64::MAX));
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4u64)
            .map(|n| {
                let (m, start, live) = (Arc::clone(&m), Arc::clone(&start), Arc::clone(&live));
                std::thread::spawn(move || {
                    start.wait();
                    let mut x = n + 1;
                    for step in 0..30_000u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = x % if (step / 3_000) % 2 == 0 { 400 } else { 20 };
                        let guard = crossbeam_epoch::pin();
                        match x >> 62 {
                            0 | 1 => {
                                put(&m, k, Tracked::new(step, &live), false, &guard);
                            }
                            2 => {
                                m.remove(h(k), |q| *q == k, &guard);
                            }
                            _ => {
                                if let Some(e) = m.get(h(k), |q| *q == k, false, &guard) {
                                    assert_eq!(e.key, k);
                                    assert_eq!(
                                        e.value().dropped.load(SeqCst),
                                        0,
                                        "read after drop"
                                    );
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let m = Arc::into_inner(m).expect("threads joined");
        assert!(m.resizes() >= 2, "{} resizes", m.resizes());
        drop(m);
        settle(&live);
        assert_eq!(live.load(SeqCst), 0, "values leaked or dropped twice");
    }
}
