//! One behavioural suite, run against every backend through `cache::build`.
#![cfg(not(crossbeam_loom))]

use std::sync::Arc;
use std::thread;

use cache::{Backend, Cache, build};

type C = Arc<dyn Cache<u64, Arc<str>>>;

fn val(k: u64) -> Arc<str> {
    format!("v{k}").into()
}

fn basic(b: Backend) {
    let c: C = build(b, 10_000);
    assert_eq!(c.backend(), b);
    assert!(c.is_empty());
    assert_eq!(c.get(&1), None);
    for k in 0..100 {
        c.insert(k, val(k), 1);
    }
    for k in 0..100 {
        assert_eq!(c.get(&k).as_deref(), Some(&*val(k)), "{b}: key {k}");
    }
    assert_eq!(c.len(), 100, "{b}");
    for k in (0..100).step_by(2) {
        assert_eq!(c.remove(&k).as_deref(), Some(&*val(k)), "{b}: remove {k}");
    }
    assert_eq!(c.remove(&0), None, "{b}: second remove");
    for k in 0..100 {
        assert_eq!(
            c.get(&k).is_some(),
            k % 2 == 1,
            "{b}: key {k} after removals"
        );
    }
    assert_eq!(c.len(), 50, "{b}");
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.inserts), (150, 51, 100), "{b}: {s:?}");
    assert_eq!((s.entries, s.weight), (50, 50), "{b}: {s:?}");
}

fn replace(b: Backend) {
    let c: C = build(b, 1_000);
    c.insert(7, val(1), 10);
    c.insert(7, val(2), 20);
    assert_eq!(c.get(&7).as_deref(), Some("v2"), "{b}");
    assert_eq!(c.len(), 1, "{b}");
    assert_eq!(c.stats().weight, 20, "{b}");
    // Weight 0 counts as 1.
    c.insert(8, val(8), 0);
    assert_eq!(c.stats().weight, 21, "{b}");
}

fn bounded_by_weight(b: Backend) {
    let c: C = build(b, 100);
    for k in 0..1_000 {
        c.insert(k, val(k), 1);
        // Re-read a hot set so the policies have something to keep.
        for h in 0..10 {
            c.get(&h);
        }
    }
    let s = c.stats();
    assert!(s.weight <= 100, "{b}: {s:?}");
    assert!(s.entries <= 100 && c.len() <= 100, "{b}: {s:?}");
    assert!(s.evictions > 0, "{b}: {s:?}");
    assert_eq!(s.inserts, 1_000, "{b}");
    let hot = (0..10).filter(|h| c.get(h).is_some()).count();
    assert!(hot >= 5, "{b}: only {hot} of 10 hot keys kept");
}

fn heavy_entries(b: Backend) {
    let c: C = build(b, 1_000);
    for k in 0..100 {
        c.insert(k, val(k), 50);
    }
    let s = c.stats();
    assert!(s.weight <= 1_000 && s.entries <= 20, "{b}: {s:?}");
    assert!(s.entries >= 1, "{b}: {s:?}");
    // An entry heavier than the bound is not kept, nor is the value it replaces.
    c.insert(5_000, val(1), 10);
    c.insert(5_000, val(2), 5_000);
    assert_eq!(c.len(), c.stats().entries as usize, "{b}");
    assert_eq!(c.get(&5_000), None, "{b}");
}

fn clear(b: Backend) {
    let c: C = build(b, 1_000);
    for k in 0..200 {
        c.insert(k, val(k), 1);
    }
    c.clear();
    assert_eq!(c.len(), 0, "{b}");
    assert!(c.is_empty(), "{b}");
    assert_eq!(c.get(&3), None, "{b}");
    let s = c.stats();
    assert_eq!((s.entries, s.weight), (0, 0), "{b}: {s:?}");
    c.insert(3, val(3), 1);
    assert_eq!(c.get(&3).as_deref(), Some("v3"), "{b}");
}

fn concurrent(b: Backend) {
    let c: C = build(b, 500);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                let mut gets = 0u64;
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..5_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 2_000;
                    match x % 10 {
                        0..=5 => {
                            gets += 1;
                            if let Some(v) = c.get(&k) {
                                assert_eq!(&*v, &*val(k));
                            }
                        }
                        6..=8 => c.insert(k, val(k), 1 + k % 3),
                        _ => {
                            if let Some(v) = c.remove(&k) {
                                assert_eq!(&*v, &*val(k));
                            }
                        }
                    }
                }
                gets
            })
        })
        .collect();
    let gets: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let s = c.stats();
    assert!(s.weight <= 500, "{b}: {s:?}");
    assert_eq!(s.entries as usize, c.len(), "{b}");
    assert_eq!(s.hits + s.misses, gets, "{b}: {s:?}");
}

macro_rules! suite {
    ($($backend:ident => $module:ident),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[test] fn basic() { super::basic(Backend::$backend) }
            #[test] fn replace() { super::replace(Backend::$backend) }
            #[test] fn bounded_by_weight() { super::bounded_by_weight(Backend::$backend) }
            #[test] fn heavy_entries() { super::heavy_entries(Backend::$backend) }
            #[test] fn clear() { super::clear(Backend::$backend) }
            #[test] fn concurrent() { super::concurrent(Backend::$backend) }
        }
    )*};
}

suite!(Moka => moka, QuickCache => quick_cache, DashMap => dashmap, Epoch => epoch);

#[test]
fn backends_parse_and_build() {
    for b in Backend::ALL {
        let parsed: Backend = b.name().parse().unwrap();
        let c: Arc<dyn Cache<String, u32>> = build(parsed, 10);
        assert_eq!(c.backend(), b);
    }
}
