//! Loom models of the epoch map's races: insert/remove/get against each other
//! and against growing and shrinking migrations. crossbeam-epoch runs on loom
//! too, so reclamation is part of the model, and values are `loom::alloc::Track`
//! so loom reports any value that is never freed.
//!
//! Run (see the crate docs):
//! `RUSTFLAGS="--cfg crossbeam_loom" CARGO_TARGET_DIR=target/loom
//! LOOM_MAX_PREEMPTIONS=2 cargo test -p cache --release --test loom -j2`
#![cfg(crossbeam_loom)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use cache::{EpochMap, Inserted};
use loom::alloc::Track;
use loom::sync::Arc;
use loom::thread;

/// Loom replays executions and needs them deterministic: a fixed hasher
/// instead of `RandomState`.
type Fixed = BuildHasherDefault<DefaultHasher>;
type Map = EpochMap<u32, Track<u32>, Fixed>;

fn new_map<V>() -> EpochMap<u32, V, Fixed> {
    EpochMap::with_capacity_and_hasher(1, Fixed::default())
}

/// Runs `f` under loom, with at most two preemptions unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    // The set-ups that drive a map to a given size take many atomic steps before
    // the threads start, and a writer waiting for a chain's lock yields each
    // round: more branches than loom's default of 1,000 per execution.
    b.max_branches = 20_000;
    b.check(f);
}

fn put(map: &Map, k: u32, v: u32) -> Option<u32> {
    let guard = map.guard();
    match map.insert_ref(k, Track::new(v), 1, &guard) {
        Inserted::Replaced(old) => Some(*old.get_ref()),
        _ => None,
    }
}

fn get(map: &Map, k: u32) -> Option<u32> {
    map.get_with(&k, |v| *v.get_ref())
}

fn del(map: &Map, k: u32) -> Option<u32> {
    let guard = map.guard();
    map.remove_ref(&k, &guard).map(|v| *v.get_ref())
}

/// Single-threaded set-up: keeps writing a scratch key until the map is (or
/// is not) in the middle of a resize and has `groups` groups.
fn drive_to(map: &Map, groups: usize, resizing: bool) {
    for _ in 0..64 {
        if map.groups() == groups && map.is_resizing() == resizing {
            return;
        }
        put(map, 999, 0);
        del(map, 999);
    }
    panic!(
        "set-up did not reach {groups} groups (resizing: {resizing}); at {} ({})",
        map.groups(),
        map.is_resizing()
    );
}

/// Two writers on one key: the survivor is one of them, exactly one saw the
/// other's value, and the loser's value is freed.
#[test]
fn insert_insert_same_key() {
    model(|| {
        let map = Arc::new(new_map());
        let m1 = map.clone();
        let t1 = thread::spawn(move || put(&m1, 1, 10));
        let r2 = put(&map, 1, 20);
        let r1 = t1.join().unwrap();
        match get(&map, 1).unwrap() {
            10 => assert_eq!((r1, r2), (Some(20), None)),
            20 => assert_eq!((r1, r2), (None, Some(10))),
            _ => unreachable!(),
        }
        assert_eq!(map.len(), 1);
    });
}

/// A reader racing a replacement sees the old or the new value, never none.
#[test]
fn get_during_replace() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 1, 10);
        let m1 = map.clone();
        let t1 = thread::spawn(move || put(&m1, 1, 20));
        assert!(matches!(get(&map, 1), Some(10) | Some(20)));
        assert_eq!(t1.join().unwrap(), Some(10));
        assert_eq!(get(&map, 1), Some(20));
    });
}

/// An insert that starts a resize (2 → 4 groups) races a reader of an
/// existing key, which must never miss it.
#[test]
fn get_during_growth() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 0, 100);
        assert_eq!(map.groups(), 2);
        let m = map.clone();
        let writer = thread::spawn(move || put(&m, 1, 101));
        assert_eq!(get(&map, 0), Some(100));
        assert!(matches!(get(&map, 1), None | Some(101)));
        writer.join().unwrap();
        assert_eq!(get(&map, 0), Some(100));
        assert_eq!(get(&map, 1), Some(101));
        assert_eq!(map.len(), 2);
    });
}

/// With a growth under way, a remove and an insert race each other (each may
/// move the other's chain).
#[test]
fn remove_insert_during_growth() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 0, 100);
        put(&map, 1, 101);
        drive_to(&map, 2, true);
        let m1 = map.clone();
        let t1 = thread::spawn(move || del(&m1, 0));
        assert_eq!(put(&map, 2, 102), None);
        assert_eq!(t1.join().unwrap(), Some(100));
        assert_eq!(
            (get(&map, 0), get(&map, 1), get(&map, 2)),
            (None, Some(101), Some(102))
        );
        assert_eq!(map.len(), 2);
    });
}

/// A removal that starts a shrink (8 → 4 groups) races a read and an insert.
#[test]
fn shrink_races() {
    model(|| {
        let map = Arc::new(new_map());
        for k in 0..4 {
            put(&map, k, 100 + k);
        }
        drive_to(&map, 8, false);
        for k in 2..4 {
            del(&map, k);
        }
        drive_to(&map, 8, false);
        let m1 = map.clone();
        // len 2 → 1 starts the shrink (1 * 8 <= 8).
        let t1 = thread::spawn(move || del(&m1, 1));
        assert_eq!(get(&map, 0), Some(100));
        assert_eq!(put(&map, 5, 105), None);
        assert_eq!(t1.join().unwrap(), Some(101));
        assert_eq!(
            (get(&map, 0), get(&map, 1), get(&map, 5)),
            (Some(100), None, Some(105))
        );
        assert_eq!(map.len(), 2);
    });
}

/// Racing get-or-insert calls agree, and the losing value is freed.
#[test]
fn get_or_insert_agrees() {
    model(|| {
        let map: Arc<EpochMap<u32, Arc<Track<u32>>, Fixed>> = Arc::new(new_map());
        let m1 = map.clone();
        let t1 = thread::spawn(move || {
            *m1.get_or_insert_with(7, || Arc::new(Track::new(1)))
                .get_ref()
        });
        let v2 = *map
            .get_or_insert_with(7, || Arc::new(Track::new(2)))
            .get_ref();
        let v1 = t1.join().unwrap();
        assert_eq!(v1, v2);
        assert_eq!(map.len(), 1);
    });
}

/// Iteration during a concurrent removal and a growth yields each key at most
/// once and the untouched key exactly once.
#[test]
fn iterate_during_remove_and_growth() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 0, 100);
        put(&map, 1, 101);
        let m = map.clone();
        let t = thread::spawn(move || {
            del(&m, 1);
            put(&m, 2, 102);
        });
        let guard = map.guard();
        let mut keys: Vec<u32> = map.iter(&guard).map(|(k, _)| *k).collect();
        drop(guard);
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before, "a key was yielded twice");
        assert!(keys.contains(&0));
        t.join().unwrap();
    });
}

/// Several writes on each side while the table grows 2 → 4 (and perhaps
/// starts 4 → 8).
#[test]
fn writers_across_two_growths() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 0, 100);
        put(&map, 1, 101);
        let m = map.clone();
        let t = thread::spawn(move || {
            assert_eq!(put(&m, 2, 102), None);
            assert_eq!(del(&m, 0), Some(100));
            assert_eq!(get(&m, 1), Some(101));
        });
        assert_eq!(put(&map, 3, 103), None);
        assert_eq!(put(&map, 4, 104), None);
        assert_eq!(get(&map, 1), Some(101));
        t.join().unwrap();
        for (k, v) in [
            (0, None),
            (1, Some(101)),
            (2, Some(102)),
            (3, Some(103)),
            (4, Some(104)),
        ] {
            assert_eq!(get(&map, k), v, "key {k}");
        }
        assert_eq!(map.len(), 4);
        // The growth 2 → 4 began in the set-up; whether 4 → 8 starts depends
        // on how stale each thread's view of the length counter is.
        assert!(map.resizes() >= 1 || map.is_resizing());
    });
}

/// Bounded mode: concurrent inserts evict; the bound holds once both are
/// done, and every evicted value is freed.
#[test]
fn bounded_eviction_race() {
    model(|| {
        let map: Arc<EpochMap<u32, Track<u32>, Fixed>> =
            Arc::new(EpochMap::bounded_with_hasher(2, 1, Fixed::default()));
        put(&map, 0, 100);
        put(&map, 1, 101);
        let m = map.clone();
        let t = thread::spawn(move || {
            put(&m, 2, 102);
        });
        put(&map, 3, 103);
        t.join().unwrap();
        assert!(map.weight() <= 2, "weight {}", map.weight());
        assert_eq!(map.len() as u64, map.weight());
        for (k, v) in [(0, 100), (1, 101), (2, 102), (3, 103)] {
            if let Some(got) = get(&map, k) {
                assert_eq!(got, v);
            }
        }
    });
}

/// Two replacements of one key (the inline value moves out to a box, then a
/// box is swapped for a box) racing a reader that holds its reference across
/// them: the reader sees one of the three values, its reference stays readable
/// while its guard lives, and every replaced value is freed once.
#[test]
fn replacements_race_a_reader_holding_its_reference() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 1, 10);
        let m1 = map.clone();
        let writer = thread::spawn(move || (put(&m1, 1, 20), put(&m1, 1, 30)));
        let guard = map.guard();
        let seen = map.get_ref(&1, &guard).map(|v| *v.get_ref());
        assert!(matches!(seen, Some(10) | Some(20) | Some(30)), "{seen:?}");
        let (first, second) = writer.join().unwrap();
        assert_eq!((first, second), (Some(10), Some(20)));
        // Still readable: the guard keeps the value it was read under.
        assert_eq!(map.get_ref(&1, &guard).map(|v| *v.get_ref()), Some(30));
        drop(guard);
        assert_eq!(get(&map, 1), Some(30));
    });
}

/// A removed key's slot is released (its value dropped, the slot free for
/// another key) only once no guard that could read it remains: a reader that
/// raced the removal still reads the removed value after the remover has
/// inserted another key, and every value is freed once.
#[test]
fn a_removed_slot_is_not_reused_under_a_reader() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 1, 10);
        let m1 = map.clone();
        let writer = thread::spawn(move || {
            assert_eq!(del(&m1, 1), Some(10));
            // Pinning and flushing gives the collector the chance to run the
            // release, and the insert the chance to take the slot.
            cache::epoch_map::flush();
            put(&m1, 2, 20);
        });
        let guard = map.guard();
        let seen = map.get_ref(&1, &guard);
        // The writer is done, its release possibly run: not for a slot this
        // guard may still read, so the value read before is intact.
        writer.join().unwrap();
        assert!(matches!(seen.map(|v| *v.get_ref()), Some(10) | None));
        drop(guard);
        assert_eq!((get(&map, 1), get(&map, 2)), (None, Some(20)));
    });
}

/// `clear` racing an insert: afterwards the map holds at most the new key.
#[test]
fn clear_races_insert() {
    model(|| {
        let map = Arc::new(new_map());
        put(&map, 0, 100);
        put(&map, 1, 101);
        let m = map.clone();
        let t = thread::spawn(move || put(&m, 2, 102));
        map.clear();
        assert_eq!(t.join().unwrap(), None);
        assert_eq!((get(&map, 0), get(&map, 1)), (None, None));
        assert_eq!(map.len(), usize::from(get(&map, 2).is_some()));
    });
}

/// Iteration racing removals that shrink the table (8 → 4) after it grew:
/// the stable key is yielded exactly once, nothing twice.
#[test]
fn iterate_during_shrink() {
    model(|| {
        let map = Arc::new(new_map());
        for k in 0..4 {
            put(&map, k, 100 + k);
        }
        drive_to(&map, 8, false);
        del(&map, 3);
        let m = map.clone();
        let t = thread::spawn(move || {
            del(&m, 1);
            del(&m, 2);
            assert!(m.is_resizing() || m.groups() == 4);
        });
        let guard = map.guard();
        let mut keys: Vec<u32> = map.iter(&guard).map(|(k, _)| *k).collect();
        drop(guard);
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before, "a key was yielded twice");
        assert!(keys.contains(&0));
        t.join().unwrap();
        assert_eq!(map.len(), 1);
    });
}
