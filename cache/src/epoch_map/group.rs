//! The epoch map's next raw core: a table of *groups* holding entries inline, so
//! that a hit costs one dependent cache miss (the group) instead of two or three
//! (slot, bucket, entry) in [`super::raw`]. This step is the fixed-size table:
//! lookups, inserts, replacements and removals with overflow chains and epoch-delayed
//! slot reuse, and its tests. It is not wired into [`super::EpochMap`] yet: resizing
//! (moving groups into a table twice the size) and the bounded mode come next, and
//! then it replaces `raw`.
//!
//! # Layout
//!
//! A group is 64-byte aligned: a state word, seven one-byte hash tags, seven CLOCK
//! counters, an overflow pointer, then seven slots of `(hash, key, value, weight)`
//! written in place. For `u64` keys and values a group is four cache lines on one
//! page, the state and tags in the first. The group of a hash is `hash & mask`; a
//! group that fills links an overflow group, and overflow groups are only ever
//! appended, so every chain has a fixed order, head first.
//!
//! The state word holds, per slot `i`, an *occupied* bit (`i`) and a *reserved*
//! bit (`8 + i`), and the chain's writer lock (bit 62, head groups only).
//!
//! # Reads
//!
//! A read loads the state (`Acquire`), compares the tags of the occupied slots with
//! the hash's top seven bits and, on a match, the stored hash and the key in place.
//! It takes no lock, retries nothing and stores nothing. It returns a reference
//! into the slot, valid while the caller's epoch guard lives.
//!
//! # Writes
//!
//! Writers hold the chain's lock (one CAS on the head's state word; the lock
//! covers the whole chain), so writes are not lock-free: a writer preempted while
//! holding it delays the other writers of that one chain, never a reader.
//! * An insert writes the entry into a slot whose reserved bit is clear, then
//!   sets the slot's occupied and reserved bits with one `Release` RMW: readers
//!   that see the bit see the entry.
//! * A removal clears the occupied bit. The slot stays reserved, so no writer
//!   reuses it, and a deferred function (crossbeam-epoch) drops the entry and
//!   clears the reserved bit once every guard that might be reading it is gone.
//! * A replacement writes the new entry into a free slot *at or after* the old
//!   entry's group in chain order, sets its bits, then clears the old entry's
//!   occupied bit (in one RMW when both are in one group). A reader scans the chain
//!   head first and stops at its first match, so it meets the old entry's group
//!   before the new one's: if it reads the old group before the old bit is
//!   cleared it returns the old value, else it is past the clear and finds the new
//!   entry, which was set before. The replacement takes effect at the clear; the
//!   key is never seen absent, nor old after new.
//!
//! # Reclamation
//!
//! A table is freed only when no deferred slot release is pending in it (no
//! reserved bit without its occupied bit): the owner drops the occupied entries,
//! then a deferred *reaper* frees the groups once the pending releases have run,
//! deferring itself again while some remain. A release touches its group last when
//! it clears its reserved bit (`Release`, paired with the reaper's `Acquire`).
//!
//! # Invariants the `unsafe` below relies on
//!
//! * **G1.** A slot holds an initialised entry exactly while its reserved bit is
//!   set; occupied implies reserved.
//! * **G2.** A slot is written only by the chain's lock holder, only while its
//!   reserved bit is clear (after the `Acquire` load that saw it clear, which pairs
//!   with the release's `Release` clear), and is published by the `Release` RMW that
//!   sets its bits. Its contents never change while reserved.
//! * **G3.** An entry is dropped only by the deferred release scheduled by the
//!   writer that cleared its occupied bit, or by the owner at drop time, once.
//! * **G4.** Groups are freed only by the reaper, after no release is pending and
//!   the owner has let go of the table.
#![allow(unsafe_code)]
// Wired into `EpochMap` once it resizes; until then only its tests use it.
#![cfg_attr(not(test), allow(dead_code))]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_epoch::Guard;

// Not in loom builds yet (see `super`), so `std`'s atomics directly.
use std::sync::atomic::{
    AtomicPtr, AtomicU8, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// Slots per group.
pub(crate) const SLOTS: usize = 7;
const OCCUPIED: u64 = (1 << SLOTS) - 1;
const RESERVED_SHIFT: usize = 8;
const LOCKED: u64 = 1 << 62;

#[inline]
fn occupied(i: usize) -> u64 {
    1 << i
}

#[inline]
fn reserved(i: usize) -> u64 {
    1 << (RESERVED_SHIFT + i)
}

/// Slots whose reserved bit is set in `state`.
#[inline]
fn reserved_set(state: u64) -> u64 {
    (state >> RESERVED_SHIFT) & OCCUPIED
}

/// The one-byte tag of a hash: its top seven bits, high bit set.
#[inline]
fn tag(hash: u64) -> u8 {
    (hash >> 57) as u8 | 0x80
}

/// One entry, written in place in its group's slot.
pub(crate) struct Slot<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) weight: u64,
}

#[repr(C, align(64))]
struct Group<K, V> {
    state: AtomicU64,
    tags: [AtomicU8; 8],
    /// GCLOCK counters, for the bounded mode (not used yet).
    clocks: [AtomicU8; 8],
    overflow: AtomicPtr<Group<K, V>>,
    slots: [UnsafeCell<MaybeUninit<Slot<K, V>>>; SLOTS],
}

// SAFETY: other threads read `&K`/`&V` through a group (needs `Sync`) and drop
// entries in deferred releases or at drop (needs `Send`); the bounds require both.
// The cells are written only under G2's rules.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Group<K, V> {}
// SAFETY: as for `Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Group<K, V> {}

impl<K, V> Group<K, V> {
    fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            tags: Default::default(),
            clocks: Default::default(),
            overflow: AtomicPtr::new(ptr::null_mut()),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; SLOTS],
        }
    }

    /// The entry in slot `i`.
    ///
    /// # Safety
    /// Slot `i` is reserved (G1), and stays so while the reference lives: it was
    /// seen occupied or reserved under a guard that outlives `'a`, or the caller
    /// holds the chain's lock and does not release the slot meanwhile.
    #[inline]
    unsafe fn slot<'a>(&self, i: usize) -> &'a Slot<K, V> {
        // SAFETY: initialised by G1; not freed while reserved, and the group
        // itself outlives `'a` by the caller's contract.
        unsafe { &*(*self.slots[i].get()).as_ptr() }
    }

    /// The occupied slot of this group holding `hash` and a key `eq` accepts.
    #[inline]
    fn find(&self, state: u64, hash: u64, eq: &impl Fn(&K) -> bool) -> Option<usize> {
        let t = tag(hash);
        let mut m = state & OCCUPIED;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            // Relaxed: the tag was written before the Release RMW that set the
            // occupied bit this thread loaded with Acquire.
            if self.tags[i].load(Relaxed) == t {
                // SAFETY: occupied in a state loaded by this thread, which holds a
                // guard (readers) or the lock (writers); see `slot`.
                let s = unsafe { self.slot(i) };
                if s.hash == hash && eq(&s.key) {
                    return Some(i);
                }
            }
        }
        None
    }

    /// The next group of the chain.
    #[inline]
    fn next(&self) -> Option<&Group<K, V>> {
        // Acquire: pairs with the Release store that linked the group after
        // initialising it.
        let p = self.overflow.load(Acquire);
        // SAFETY: overflow groups are freed with their table only (G4), which
        // outlives `&self`.
        unsafe { p.as_ref() }
    }
}

/// What a write did; references are valid while the guard passed in lives.
pub(crate) enum Written<'g, K, V> {
    /// The key was absent; this is the new entry.
    Inserted(&'g Slot<K, V>),
    /// The key was present; this was its entry, now replaced.
    Replaced(&'g Slot<K, V>),
    /// Insert-if-absent found the key; this is its entry, unchanged.
    Existing(&'g Slot<K, V>),
}

/// A fixed-size table of groups. See the module docs.
pub(crate) struct GroupTable<K, V> {
    groups: *mut [Group<K, V>],
    mask: usize,
}

// SAFETY: shares entries as `Group` does.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for GroupTable<K, V> {}
// SAFETY: as for `Send`.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for GroupTable<K, V> {}

/// A chain's writer lock, released on drop.
struct ChainLock<'a>(&'a AtomicU64);

impl Drop for ChainLock<'_> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire CAS of the next holder.
        self.0.fetch_and(!LOCKED, Release);
    }
}

impl<K, V> GroupTable<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A table with `groups` groups (a power of two).
    pub(crate) fn new(groups: usize) -> Self {
        assert!(groups.is_power_of_two());
        let b: Box<[Group<K, V>]> = (0..groups).map(|_| Group::new()).collect();
        Self {
            groups: Box::into_raw(b),
            mask: groups - 1,
        }
    }

    #[inline]
    fn head(&self, hash: u64) -> &Group<K, V> {
        // SAFETY: the groups live until the table is dropped (G4).
        let groups = unsafe { &*self.groups };
        &groups[hash as usize & self.mask]
    }

    /// The entry for `hash` whose key `eq` accepts.
    #[inline]
    pub(crate) fn get<'g>(
        &'g self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        _guard: &'g Guard,
    ) -> Option<&'g Slot<K, V>> {
        let mut g = self.head(hash);
        loop {
            // Acquire: pairs with the Release RMW that set an occupied bit after
            // writing the slot (G2).
            let state = g.state.load(Acquire);
            if let Some(i) = g.find(state, hash, &eq) {
                // SAFETY: occupied when loaded under `_guard`: a removal defers
                // the drop past this guard (G3).
                return Some(unsafe { g.slot(i) });
            }
            g = g.next()?;
        }
    }

    fn lock<'a>(&self, head: &'a Group<K, V>) -> ChainLock<'a> {
        let mut spins = 0u32;
        loop {
            let s = head.state.load(Relaxed);
            // Acquire: pairs with the Release that unlocked, so the previous
            // holder's writes are visible.
            if s & LOCKED == 0
                && head
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                    .is_ok()
            {
                return ChainLock(&head.state);
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// The group and slot of the occupied entry for `hash` and `eq`, under the lock.
    fn find_locked<'a>(
        head: &'a Group<K, V>,
        hash: u64,
        eq: &impl Fn(&K) -> bool,
    ) -> Option<(&'a Group<K, V>, usize)> {
        let mut g = head;
        loop {
            if let Some(i) = g.find(g.state.load(Acquire), hash, eq) {
                return Some((g, i));
            }
            g = g.next()?;
        }
    }

    /// A slot with its reserved bit clear, at or after `from` in chain order,
    /// linking a new overflow group when the chain has none. Under the lock.
    fn free_slot(from: &Group<K, V>) -> (&Group<K, V>, usize) {
        let mut g = from;
        loop {
            // Acquire: pairs with a release's Release clear of the reserved bit,
            // so its drop happened before this slot is overwritten (G2).
            let used = reserved_set(g.state.load(Acquire));
            if used != OCCUPIED {
                return (g, (!used & OCCUPIED).trailing_zeros() as usize);
            }
            match g.next() {
                Some(n) => g = n,
                None => {
                    let n = Box::into_raw(Box::new(Group::new()));
                    // Release: the group is initialised before readers reach it.
                    g.overflow.store(n, Release);
                    // SAFETY: just allocated; freed with the table (G4).
                    return (unsafe { &*n }, 0);
                }
            }
        }
    }

    /// Schedules the drop of slot `i` of `g` and the clearing of its reserved bit
    /// for when no guard pinned now remains.
    fn release(g: &Group<K, V>, i: usize, guard: &Guard) {
        let g = g as *const Group<K, V> as usize;
        // SAFETY: the closure runs after every guard that could read the slot is
        // gone (G3), and before the groups are freed: the reaper waits for this
        // reserved bit (G4). `K` and `V` are `Send + 'static`.
        unsafe {
            guard.defer_unchecked(move || {
                let g = &*(g as *const Group<K, V>);
                ptr::drop_in_place((*g.slots[i].get()).as_mut_ptr());
                // Release: pairs with the Acquire loads of `free_slot` and the
                // reaper; the group is not touched after this.
                g.state.fetch_and(!reserved(i), Release);
            });
        }
    }

    /// Inserts `key`/`value`, replacing the entry of an equal key unless
    /// `if_absent`.
    pub(crate) fn insert<'g>(
        &'g self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        if_absent: bool,
        guard: &'g Guard,
    ) -> Written<'g, K, V>
    where
        K: Eq,
    {
        let head = self.head(hash);
        let _lock = self.lock(head);
        let old = Self::find_locked(head, hash, &|k: &K| *k == key);
        if let (true, Some((g, i))) = (if_absent, old) {
            // SAFETY: occupied under the lock and `guard`.
            return Written::Existing(unsafe { g.slot(i) });
        }
        // Forward of the old entry's group only: see "Writes" in the module docs.
        let (g, i) = Self::free_slot(old.map_or(head, |(g, _)| g));
        // SAFETY: reserved bit clear, lock held (G2).
        unsafe {
            (*g.slots[i].get()).write(Slot {
                hash,
                key,
                value,
                weight,
            });
        }
        g.tags[i].store(tag(hash), Relaxed);
        g.clocks[i].store(0, Relaxed);
        match old {
            Some((og, oi)) if ptr::eq(og, g) => {
                // One RMW: publish the new slot and retire the old one together.
                // Release: publishes the slot (G2).
                g.state
                    .fetch_xor(occupied(i) | reserved(i) | occupied(oi), Release);
            }
            Some((og, oi)) => {
                g.state.fetch_or(occupied(i) | reserved(i), Release);
                og.state.fetch_and(!occupied(oi), Release);
            }
            None => {
                g.state.fetch_or(occupied(i) | reserved(i), Release);
            }
        }
        match old {
            Some((og, oi)) => {
                Self::release(og, oi, guard);
                // SAFETY: reserved until the release, which waits for `guard`.
                Written::Replaced(unsafe { og.slot(oi) })
            }
            // SAFETY: just published; released only after `guard` is gone.
            None => Written::Inserted(unsafe { g.slot(i) }),
        }
    }

    /// Removes the entry for `hash` whose key `eq` accepts.
    pub(crate) fn remove<'g>(
        &'g self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g Slot<K, V>> {
        let head = self.head(hash);
        let _lock = self.lock(head);
        let (g, i) = Self::find_locked(head, hash, &eq)?;
        g.state.fetch_and(!occupied(i), Release);
        Self::release(g, i, guard);
        // SAFETY: reserved until the release, which waits for `guard`.
        Some(unsafe { g.slot(i) })
    }

    /// Calls `f` on every occupied entry (weakly consistent).
    pub(crate) fn for_each<'g>(&'g self, _guard: &'g Guard, mut f: impl FnMut(&'g Slot<K, V>)) {
        // SAFETY: the groups live as long as the table (G4).
        for head in unsafe { &*self.groups } {
            let mut g = head;
            loop {
                let mut m = g.state.load(Acquire) & OCCUPIED;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    m &= m - 1;
                    // SAFETY: occupied when loaded under `_guard` (G3).
                    f(unsafe { g.slot(i) });
                }
                match g.next() {
                    Some(n) => g = n,
                    None => break,
                }
            }
        }
    }
}

/// Whether any slot of the table is reserved without being occupied (a release
/// is pending).
///
/// # Safety
/// `groups` is a live table.
unsafe fn releases_pending<K, V>(groups: *mut [Group<K, V>]) -> bool {
    // SAFETY: the caller's contract.
    for head in unsafe { &*groups } {
        let mut g = head;
        loop {
            // Acquire: pairs with the release's Release clear (G4).
            let s = g.state.load(Acquire);
            if reserved_set(s) & !(s & OCCUPIED) != 0 {
                return true;
            }
            match g.next() {
                Some(n) => g = n,
                None => break,
            }
        }
    }
    false
}

/// Frees the table's groups and overflow groups once no release is pending,
/// deferring itself meanwhile.
///
/// # Safety
/// `groups` is a table whose owner has dropped its entries and let go of it,
/// and no one else frees it.
unsafe fn reap<K, V>(groups: *mut [Group<K, V>]) {
    // SAFETY: the caller's contract.
    if unsafe { releases_pending(groups) } {
        let addr = (groups as *mut Group<K, V> as usize, groups.len());
        let guard = crossbeam_epoch::pin();
        // SAFETY: the releases run before this closure can, or it defers
        // itself again; nothing else frees the table.
        unsafe {
            guard.defer_unchecked(move || {
                let groups = ptr::slice_from_raw_parts_mut(addr.0 as *mut Group<K, V>, addr.1);
                reap(groups);
            });
        }
        return;
    }
    // SAFETY: no release is pending and no reader remains (the owner let go of
    // the table after its last guard), so nothing can reach the groups.
    unsafe {
        for head in &*groups {
            let mut p = head.overflow.load(Relaxed);
            while !p.is_null() {
                let b = Box::from_raw(p);
                p = b.overflow.load(Relaxed);
            }
        }
        drop(Box::from_raw(groups));
    }
}

impl<K, V> Drop for GroupTable<K, V> {
    fn drop(&mut self) {
        // `&mut self`: no reader or writer of this table remains, only deferred
        // releases.
        // SAFETY: the groups are live (G4).
        for head in unsafe { &*self.groups } {
            let mut g = head;
            loop {
                let s = g.state.load(Acquire);
                let mut m = s & OCCUPIED;
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    m &= m - 1;
                    // SAFETY: occupied, so initialised and owned by the table
                    // (G1, G3); dropped once, its bits cleared below.
                    unsafe { ptr::drop_in_place((*g.slots[i].get()).as_mut_ptr()) };
                }
                let occ = s & OCCUPIED;
                g.state.fetch_and(!(occ | occ << RESERVED_SHIFT), Relaxed);
                // SAFETY: linked overflow groups live with the table.
                match unsafe { g.overflow.load(Acquire).as_ref() } {
                    Some(n) => g = n,
                    None => break,
                }
            }
        }
        // SAFETY: entries dropped, and the table is let go of here.
        unsafe { reap(self.groups) };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicI64, AtomicU64 as StdU64, Ordering::SeqCst};
    use std::sync::{Arc, Barrier};

    use super::*;

    fn h(k: u64) -> u64 {
        // Every key in one group of a small table: long chains. The top bits vary,
        // so the tags differ and the full-hash comparison is exercised on repeats.
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !0xff
    }

    /// Drives the collector until `live` reaches zero or ten seconds pass (tests
    /// running beside this one hold pins too, so one flush may not be enough).
    fn settle(live: &AtomicI64) {
        let start = std::time::Instant::now();
        while live.load(SeqCst) != 0 && start.elapsed() < std::time::Duration::from_secs(10) {
            for _ in 0..64 {
                crossbeam_epoch::pin().flush();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
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
    fn follows_a_model_through_long_chains() {
        let live = Arc::new(AtomicI64::new(0));
        let t: GroupTable<u64, Tracked> = GroupTable::new(2);
        let mut model = HashMap::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 97;
            let guard = crossbeam_epoch::pin();
            match x >> 60 {
                0..=7 => {
                    let w = t.insert(h(k), k, Tracked::new(step, &live), 1, false, &guard);
                    match (w, model.insert(k, step)) {
                        (Written::Inserted(s), None) => assert_eq!(s.value.v, step),
                        (Written::Replaced(s), Some(old)) => assert_eq!(s.value.v, old),
                        _ => panic!("insert {k}: outcome differs from the model"),
                    }
                }
                8..=9 => {
                    let w = t.insert(h(k), k, Tracked::new(step, &live), 1, true, &guard);
                    match (w, model.get(&k)) {
                        (Written::Existing(s), Some(&v)) => assert_eq!(s.value.v, v),
                        (Written::Inserted(_), None) => {
                            model.insert(k, step);
                        }
                        _ => panic!("insert-if-absent {k}: outcome differs from the model"),
                    }
                }
                10..=12 => {
                    let got = t.remove(h(k), |q| *q == k, &guard).map(|s| s.value.v);
                    assert_eq!(got, model.remove(&k), "remove {k}");
                }
                _ => {
                    let got = t.get(h(k), |q| *q == k, &guard).map(|s| s.value.v);
                    assert_eq!(got, model.get(&k).copied(), "get {k}");
                }
            }
        }
        let guard = crossbeam_epoch::pin();
        let mut seen = HashMap::new();
        t.for_each(&guard, |s| {
            assert_eq!(s.weight, 1);
            assert!(
                seen.insert(s.key, s.value.v).is_none(),
                "key {} twice",
                s.key
            );
        });
        assert_eq!(seen, model);
        drop(guard);
        drop(t);
        settle(&live);
        assert_eq!(live.load(SeqCst), 0, "values leaked or dropped twice");
    }

    #[test]
    fn readers_never_see_a_key_absent_or_going_back() {
        // Writers replace each key's value with rising versions and remove none;
        // readers must always find every key, with versions that never decrease.
        const KEYS: u64 = 40;
        let t: Arc<GroupTable<u64, u64>> = Arc::new(GroupTable::new(2));
        {
            let guard = crossbeam_epoch::pin();
            for k in 0..KEYS {
                t.insert(h(k), k, 0, 1, false, &guard);
            }
        }
        let start = Arc::new(Barrier::new(4));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (t, start) = (Arc::clone(&t), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for v in 1..=20_000u64 {
                        let k = (v * 7 + w) % KEYS;
                        let guard = crossbeam_epoch::pin();
                        // Versions rise per key: writer w owns keys of its parity.
                        if k % 2 == w {
                            t.insert(h(k), k, v, 1, false, &guard);
                        }
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (t, start) = (Arc::clone(&t), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let mut last = vec![0u64; KEYS as usize];
                    for n in 0..200_000u64 {
                        let k = n % KEYS;
                        let guard = crossbeam_epoch::pin();
                        let v = t.get(h(k), |q| *q == k, &guard).map(|s| s.value);
                        let v = v.unwrap_or_else(|| panic!("key {k} absent"));
                        assert!(
                            v >= last[k as usize],
                            "key {k} went back from {} to {v}",
                            last[k as usize]
                        );
                        last[k as usize] = v;
                    }
                })
            })
            .collect();
        for j in writers.into_iter().chain(readers) {
            j.join().unwrap();
        }
    }

    #[test]
    fn concurrent_churn_frees_every_value_once() {
        let live = Arc::new(AtomicI64::new(0));
        let t: Arc<GroupTable<u64, Tracked>> = Arc::new(GroupTable::new(4));
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4u64)
            .map(|n| {
                let (t, start, live) = (Arc::clone(&t), Arc::clone(&start), Arc::clone(&live));
                std::thread::spawn(move || {
                    start.wait();
                    let mut x = n + 1;
                    for step in 0..30_000u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = x % 200;
                        let guard = crossbeam_epoch::pin();
                        match x >> 62 {
                            0 | 1 => {
                                t.insert(h(k), k, Tracked::new(step, &live), 1, false, &guard);
                            }
                            2 => {
                                t.remove(h(k), |q| *q == k, &guard);
                            }
                            _ => {
                                if let Some(s) = t.get(h(k), |q| *q == k, &guard) {
                                    assert_eq!(s.key, k);
                                    assert_eq!(s.value.dropped.load(SeqCst), 0, "read after drop");
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for j in threads {
            j.join().unwrap();
        }
        let t = Arc::into_inner(t).expect("threads joined");
        drop(t);
        settle(&live);
        assert_eq!(live.load(SeqCst), 0, "values leaked or dropped twice");
    }
}
