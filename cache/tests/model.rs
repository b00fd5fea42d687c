//! Model-based tests: random operation sequences on an `EpochMap` checked step
//! by step against `std::collections::HashMap`.
#![cfg(not(crossbeam_loom))]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use cache::EpochMap;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    GetOrInsert(u16, u32),
    Len,
    Iter,
    Clear,
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        20 => (0..keys).prop_map(Op::Remove),
        20 => (0..keys).prop_map(Op::Get),
        10 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        3 => Just(Op::Len),
        5 => Just(Op::Iter),
        1 => Just(Op::Clear),
    ]
}

/// A deliberately poor hasher: few distinct hashes, so chains hold several
/// keys and equal hashes for different keys are common.
#[derive(Clone, Default)]
struct Collide;
struct CollideHasher(u64);
impl Hasher for CollideHasher {
    fn finish(&self) -> u64 {
        // Spread a little over low bits (bucket index) and the top bits.
        (self.0 % 7).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.0 % 3)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
    }
}
impl BuildHasher for Collide {
    type Hasher = CollideHasher;
    fn build_hasher(&self) -> CollideHasher {
        CollideHasher(0)
    }
}

fn run<S: BuildHasher>(map: EpochMap<u16, u32, S>, ops: &[Op]) {
    let mut model: HashMap<u16, u32> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert(k, v) => assert_eq!(map.insert(k, v), model.insert(k, v), "op {i}: {op:?}"),
            Op::Remove(k) => assert_eq!(map.remove(&k), model.remove(&k), "op {i}: {op:?}"),
            Op::Get(k) => assert_eq!(map.get(&k), model.get(&k).copied(), "op {i}: {op:?}"),
            Op::GetOrInsert(k, v) => assert_eq!(
                map.get_or_insert_with(k, || v),
                *model.entry(k).or_insert(v),
                "op {i}: {op:?}"
            ),
            Op::Len => assert_eq!(map.len(), model.len(), "op {i}"),
            Op::Iter => {
                let guard = map.guard();
                let mut seen: Vec<(u16, u32)> = map.iter(&guard).map(|(k, v)| (*k, *v)).collect();
                seen.sort_unstable();
                let mut want: Vec<(u16, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                want.sort_unstable();
                assert_eq!(seen, want, "op {i}: iter");
            }
            Op::Clear => {
                map.clear();
                model.clear();
            }
        }
        assert_eq!(map.len(), model.len(), "op {i}: len after {op:?}");
        assert_eq!(map.weight(), model.len() as u64, "op {i}: weight");
    }
    // The table shrank back when emptied, but never below its initial size.
    assert!(map.groups() >= 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Few keys, tiny initial table: constant growing and shrinking.
    #[test]
    fn matches_hashmap_small(ops in prop::collection::vec(op(48), 1..400)) {
        run(EpochMap::with_capacity(1), &ops);
    }

    /// More keys than the default capacity.
    #[test]
    fn matches_hashmap_default(ops in prop::collection::vec(op(1_000), 1..600)) {
        run(EpochMap::new(), &ops);
    }

    /// Heavy collisions, including equal hashes for different keys.
    #[test]
    fn matches_hashmap_colliding(ops in prop::collection::vec(op(64), 1..400)) {
        run(EpochMap::with_capacity_and_hasher(1, Collide), &ops);
    }

    /// Bounded mode: never over the bound, and whatever is present holds the
    /// latest value inserted for its key.
    #[test]
    fn bounded_respects_model(
        max in 1u64..40,
        ops in prop::collection::vec((0u16..100, any::<u32>(), 1u64..5, any::<bool>()), 1..400),
    ) {
        let map = EpochMap::bounded(max);
        let mut latest: HashMap<u16, u32> = HashMap::new();
        for (k, v, w, read) in ops {
            if read {
                if let Some(got) = map.get(&k) {
                    prop_assert_eq!(Some(&got), latest.get(&k));
                }
            } else {
                map.insert_weighted(k, v, w);
                if w <= max {
                    latest.insert(k, v);
                } else {
                    latest.remove(&k);
                }
            }
            prop_assert!(map.weight() <= max, "weight {} > {}", map.weight(), max);
            let guard = map.guard();
            let (mut n, mut w_sum) = (0usize, 0u64);
            for (k, v) in map.iter(&guard) {
                prop_assert_eq!(Some(v), latest.get(k));
                n += 1;
                w_sum += 1;
            }
            prop_assert_eq!(n, map.len());
            prop_assert!(w_sum <= map.weight());
        }
    }
}

#[test]
fn grows_and_shrinks_back() {
    let map: EpochMap<u32, u32> = EpochMap::with_capacity(1);
    assert_eq!(map.groups(), 2);
    for k in 0..10_000 {
        map.insert(k, k);
    }
    // At most five entries per group of seven slots on average.
    let grown = map.groups();
    assert!(grown >= 10_000 / 5, "{grown} groups for 10k entries");
    for k in 0..10_000 {
        assert_eq!(map.get(&k), Some(k));
    }
    for k in 0..9_990 {
        assert_eq!(map.remove(&k), Some(k));
    }
    // Writes finish a pending migration a chunk at a time.
    for _ in 0..1_000 {
        map.insert(1_000_000, 0);
        map.remove(&1_000_000);
    }
    // At least one entry per two groups on average.
    let shrunk = map.groups();
    assert!(shrunk <= 32, "{shrunk} groups for 10 entries");
    assert_eq!(map.len(), 10);
    let guard = map.guard();
    let mut keys: Vec<u32> = map.iter(&guard).map(|(k, _)| *k).collect();
    keys.sort_unstable();
    assert_eq!(keys, (9_990..10_000).collect::<Vec<_>>());
}

/// An iterator whose root snapshot goes stale while the table grows and
/// shrinks (and grows again) under it still yields every untouched key
/// exactly once: paths through a grow and a shrink reconverge on one slot.
#[test]
fn iteration_across_grow_and_shrink_chains() {
    for round in 0..4u32 {
        let map: EpochMap<u32, u32> = EpochMap::with_capacity(1);
        let stable: Vec<u32> = (0..64).collect();
        for &k in &stable {
            map.insert(k, k);
        }
        let guard = map.guard();
        let mut it = map.iter(&guard);
        let mut seen: Vec<u32> = it.by_ref().take(1).map(|(k, _)| *k).collect();
        // Grow a lot, then shrink back, several times, mid-iteration.
        for cycle in 0..=round {
            let base = 1_000 * (cycle + 1);
            for k in base..base + 500 {
                map.insert(k, k);
            }
            for k in base..base + 500 {
                map.remove(&k);
            }
            seen.extend(it.by_ref().take(3).map(|(k, _)| *k));
        }
        seen.extend(it.map(|(k, _)| *k));
        let mut stable_seen: Vec<u32> = seen.into_iter().filter(|k| *k < 64).collect();
        stable_seen.sort_unstable();
        assert_eq!(stable_seen, stable, "round {round}");
    }
}

/// The pinned view agrees with the map's own methods and with a model, and the
/// references it hands out outlive a removal of their key.
#[test]
fn pinned_view_matches_a_model() {
    let map: EpochMap<u32, u32> = EpochMap::with_capacity(1);
    let mut model = HashMap::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _round in 0..200 {
        let p = map.pin();
        for _ in 0..50 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (k, v) = ((x % 300) as u32, (x >> 32) as u32);
            match x >> 61 {
                0..=2 => assert_eq!(p.insert(k, v).copied(), model.insert(k, v), "insert {k}"),
                3 => assert_eq!(p.remove(&k).copied(), model.remove(&k), "remove {k}"),
                4 => {
                    let got = *p.get_or_insert_with(k, || v).expect("unbounded map");
                    assert_eq!(got, *model.entry(k).or_insert(v), "get_or_insert {k}");
                }
                _ => {
                    assert_eq!(p.get(&k).copied(), model.get(&k).copied(), "get {k}");
                    assert_eq!(p.contains_key(&k), model.contains_key(&k));
                }
            }
        }
        assert_eq!(p.iter().count(), model.len());
    }
    assert_eq!(map.len(), model.len());

    let p = map.pin();
    p.insert(1_000_000, 7);
    let kept = p.get(&1_000_000).expect("just inserted");
    assert_eq!(map.remove(&1_000_000), Some(7));
    assert_eq!(*kept, 7, "a reference lives as long as its view");
    assert!(p.get(&1_000_000).is_none());
    drop(p);

    let nothing: EpochMap<u32, u32> = EpochMap::bounded(0);
    assert_eq!(nothing.pin().get_or_insert_with(1, || 5), Err(5));
    assert_eq!(nothing.get_or_insert_with(1, || 6), 6);
    assert!(nothing.is_empty());
}
