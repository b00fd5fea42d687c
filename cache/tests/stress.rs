//! Multi-threaded stress tests of `EpochMap` with invariant checks and
//! allocation accounting: every key and value counts its live instances and
//! carries a canary (a second drop or a read after free trips it), and a
//! counting global allocator checks that everything allocated during a test is
//! freed once the map is dropped and the epoch collector has run.
//!
//! Scale: `CACHE_STRESS_SCALE` (default 1) multiplies the operations per
//! thread; `CACHE_STRESS_THREADS` (default 4) sets the thread count. Long run:
//! `CACHE_STRESS_SCALE=50 cargo test -p cache --release --test stress -j2 --
//! --nocapture` (prints the figures of each test).
#![cfg(not(crossbeam_loom))]

use std::alloc::System;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cache::EpochMap;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

// ------------------------------------------------------------ allocations

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations not yet freed, process-wide.
fn outstanding() -> i64 {
    let s = GLOBAL.stats();
    s.allocations as i64 - s.deallocations as i64
}

// -------------------------------------------------------- tracked objects

const ALIVE: u64 = 0x5AFE_A11C_E000_0001;
const DEAD: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// Live-instance counter of one test.
#[derive(Default)]
struct Live(AtomicI64);

/// A key or value that counts its instances and detects a second drop.
struct Tracked {
    id: u64,
    canary: AtomicU64,
    live: Arc<Live>,
}

impl Tracked {
    fn new(id: u64, live: &Arc<Live>) -> Self {
        live.0.fetch_add(1, Relaxed);
        Self {
            id,
            canary: AtomicU64::new(ALIVE),
            live: Arc::clone(live),
        }
    }

    fn check(&self) -> u64 {
        let c = self.canary.load(Relaxed);
        if c != ALIVE {
            eprintln!("read of a dropped object: canary {c:#x}");
            std::process::abort();
        }
        self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.check(), &self.live)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let c = self.canary.swap(DEAD, Relaxed);
        if c != ALIVE {
            // A panic here could unwind through the epoch collector; abort.
            eprintln!("double drop: canary {c:#x}");
            std::process::abort();
        }
        self.live.0.fetch_sub(1, Relaxed);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, o: &Self) -> bool {
        self.check() == o.check()
    }
}
impl Eq for Tracked {}
impl Hash for Tracked {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.check().hash(h)
    }
}
impl Borrow<u64> for Tracked {
    fn borrow(&self) -> &u64 {
        &self.id
    }
}

/// Value for key `k`, version `ver`: `id = k << 32 | ver`.
fn value(k: u64, ver: u64, live: &Arc<Live>) -> Tracked {
    Tracked::new(k << 32 | (ver & 0xFFFF_FFFF), live)
}

fn key_of(v: &Tracked) -> u64 {
    v.check() >> 32
}

// -------------------------------------------------------------- harness

fn scale() -> u64 {
    std::env::var("CACHE_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn threads() -> u64 {
    std::env::var("CACHE_STRESS_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// Stress tests run one at a time so allocation counts are attributable.
static SERIAL: Mutex<()> = Mutex::new(());

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs `body` with a fresh live counter, then checks that the map's drop
/// and the epoch collector gave every object and allocation back.
fn accounted(name: &str, body: impl FnOnce(&Arc<Live>) -> String) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    settle();
    let live = Arc::new(Live::default());
    let before = outstanding();
    let start = Instant::now();
    let report = body(&live);
    let elapsed = start.elapsed();
    let waited = settle_until(|| live.0.load(SeqCst) == 0);
    assert_eq!(live.0.load(SeqCst), 0, "{name}: objects leaked");
    settle();
    let leaked = outstanding() - before;
    println!(
        "{name}: {report}; {elapsed:.2?}, reclaimed in {waited:.2?}, allocations outstanding {leaked:+}"
    );
    // The epoch collector keeps a bag or two around; a leaked entry, bucket
    // or table would show as many more (there are thousands of each).
    assert!(
        leaked.abs() <= 16,
        "{name}: {leaked} allocations outstanding"
    );
}

/// Drives the global epoch collector until `done` or 10 s pass.
fn settle_until(mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() && start.elapsed() < Duration::from_secs(10) {
        for _ in 0..64 {
            cache::epoch_map::flush();
        }
        thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// Drives the collector until the allocation count holds still for a few
/// rounds (flushing itself allocates and frees a bag, so it may not hold
/// still for long; give up after 50 rounds).
fn settle() {
    let (mut last, mut still, mut rounds) = (outstanding(), 0, 0);
    settle_until(|| {
        let now = outstanding();
        still = if now == last { still + 1 } else { 0 };
        last = now;
        rounds += 1;
        still >= 5 || rounds >= 50
    });
}

// ----------------------------------------------------------------- tests

/// Each thread owns the keys `k ≡ tid (mod threads)` and keeps a model of
/// them; phases of mostly inserts and mostly removals make the table grow and
/// shrink over and over. Other threads read everything concurrently.
#[test]
fn partitioned_writers_match_their_models() {
    accounted("partitioned", |live| {
        let map: Arc<EpochMap<Tracked, Tracked>> = Arc::new(EpochMap::with_capacity(4));
        let t_n = threads();
        let ops = 20_000 * scale();
        let barrier = Arc::new(Barrier::new(t_n as usize + 1));
        let phase = Arc::new(Barrier::new(t_n as usize));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..t_n)
            .map(|tid| {
                let (map, live, barrier) =
                    (Arc::clone(&map), Arc::clone(live), Arc::clone(&barrier));
                let phase = Arc::clone(&phase);
                thread::spawn(move || {
                    let mut rng = Rng::new(tid + 1);
                    let mut model: HashMap<u64, u64> = HashMap::new();
                    barrier.wait();
                    for i in 0..ops {
                        // Phases of 4 096 ops sweep this thread's 4 096 keys:
                        // mostly inserting (the table grows), then removing
                        // all (it shrinks back).
                        if i % 4_096 == 0 {
                            phase.wait(); // all writers change phase together
                        }
                        let k = (i % 4_096) * t_n + tid;
                        let growing = (i / 4_096) % 2 == 0;
                        let roll = rng.below(10);
                        match roll {
                            _ if !growing || roll == 0 => {
                                let got = map.remove(&k).map(|v| v.check());
                                assert_eq!(got, model.remove(&k), "thread {tid} remove {k}");
                            }
                            1 => {
                                let want = *model.entry(k).or_insert(k << 32 | i);
                                let got = map.get_or_insert_with(Tracked::new(k, &live), || {
                                    value(k, i, &live)
                                });
                                assert_eq!(got.check(), want, "thread {tid} get_or_insert {k}");
                            }
                            _ => {
                                let got = map.insert(Tracked::new(k, &live), value(k, i, &live));
                                assert_eq!(got.map(|v| v.check()), model.insert(k, k << 32 | i));
                            }
                        }
                        if i % 16 == 0 {
                            let probe = rng.below(4_096) * t_n + tid;
                            assert_eq!(
                                map.get(&probe).map(|v| v.check()),
                                model.get(&probe).copied()
                            );
                        }
                    }
                    model
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (map, barrier, stop) =
                    (Arc::clone(&map), Arc::clone(&barrier), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut rng = Rng::new(100 + r);
                    let (mut reads, mut hits) = (0u64, 0u64);
                    if r == 0 {
                        barrier.wait();
                    }
                    while !stop.load(Relaxed) {
                        let k = rng.below(4_096 * t_n);
                        let guard = map.guard();
                        if let Some(v) = map.get_ref(&k, &guard) {
                            assert_eq!(key_of(v), k, "reader saw a value under the wrong key");
                            hits += 1;
                        }
                        reads += 1;
                    }
                    (reads, hits)
                })
            })
            .collect();
        let mut all: HashMap<u64, u64> = HashMap::new();
        for w in writers {
            all.extend(w.join().unwrap());
        }
        stop.store(true, Relaxed);
        let (reads, hits) = readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        // Quiescent: the map is exactly the union of the models.
        assert_eq!(map.len(), all.len());
        let guard = map.guard();
        let mut seen = 0;
        for (k, v) in map.iter(&guard) {
            assert_eq!(all.get(&k.check()), Some(&v.check()));
            seen += 1;
        }
        assert_eq!(seen, all.len());
        drop(guard);
        let resizes = map.resizes();
        assert!(resizes >= 8, "only {resizes} resizes");
        format!(
            "{t_n} writers x {ops} ops, {reads} concurrent reads ({hits} hits), {resizes} resizes, {} final entries",
            all.len()
        )
    });
}

/// All threads hammer the same 256 keys with every operation.
#[test]
fn shared_keys_contention() {
    accounted("shared", |live| {
        let map: Arc<EpochMap<Tracked, Tracked>> = Arc::new(EpochMap::with_capacity(1));
        let t_n = threads() + 2;
        let ops = 20_000 * scale();
        let handles: Vec<_> = (0..t_n)
            .map(|tid| {
                let (map, live) = (Arc::clone(&map), Arc::clone(live));
                thread::spawn(move || {
                    let mut rng = Rng::new(tid + 7);
                    for i in 0..ops {
                        let k = rng.below(256);
                        match rng.below(8) {
                            0..=2 => {
                                if let Some(v) = map.get(&k) {
                                    assert_eq!(key_of(&v), k);
                                }
                            }
                            3 | 4 => {
                                if let Some(v) =
                                    map.insert(Tracked::new(k, &live), value(k, i, &live))
                                {
                                    assert_eq!(key_of(&v), k);
                                }
                            }
                            5 | 6 => {
                                if let Some(v) = map.remove(&k) {
                                    assert_eq!(key_of(&v), k);
                                }
                            }
                            _ => {
                                let v = map.get_or_insert_with(Tracked::new(k, &live), || {
                                    value(k, i, &live)
                                });
                                assert_eq!(key_of(&v), k);
                            }
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let guard = map.guard();
        let mut keys = HashSet::new();
        for (k, v) in map.iter(&guard) {
            assert_eq!(key_of(v), k.check());
            assert!(keys.insert(k.check()), "key {} yielded twice", k.check());
        }
        assert_eq!(keys.len(), map.len());
        format!(
            "{t_n} threads x {ops} ops on 256 keys, {} resizes",
            map.resizes()
        )
    });
}

/// Writers churn volatile keys (growing and shrinking the table) while
/// iterating threads, which also remove volatile keys they meet, check that
/// every stable key is seen exactly once per pass and no key twice.
#[test]
fn iteration_during_removals_and_resizes() {
    accounted("iteration", |live| {
        const STABLE: u64 = 1_000;
        let map: Arc<EpochMap<Tracked, Tracked>> = Arc::new(EpochMap::with_capacity(1));
        for k in 0..STABLE {
            map.insert(Tracked::new(k, live), value(k, 0, live));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ops = 20_000 * scale();
        let writers: Vec<_> = (0..threads().max(2) - 1)
            .map(|tid| {
                let (map, live) = (Arc::clone(&map), Arc::clone(live));
                thread::spawn(move || {
                    let mut rng = Rng::new(tid + 31);
                    for i in 0..ops {
                        // Bursts of random inserts, then a removal sweep
                        // over the 8 192 volatile keys (grow, then shrink).
                        if (i / 8_192) % 2 == 0 {
                            let k = STABLE + rng.below(8_192);
                            map.insert(Tracked::new(k, &live), value(k, i, &live));
                        } else {
                            map.remove(&(STABLE + i % 8_192));
                        }
                    }
                })
            })
            .collect();
        let iterators: Vec<_> = (0..2)
            .map(|_| {
                let (map, stop) = (Arc::clone(&map), Arc::clone(&stop));
                thread::spawn(move || {
                    let (mut passes, mut removed) = (0u64, 0u64);
                    let mut seen = HashSet::new();
                    while !stop.load(Relaxed) || passes == 0 {
                        seen.clear();
                        let guard = map.guard();
                        for (k, v) in map.iter(&guard) {
                            let k = k.check();
                            assert_eq!(key_of(v), k);
                            assert!(seen.insert(k), "key {k} yielded twice in one pass");
                            if k >= STABLE && k % 3 == 0 && map.remove(&k).is_some() {
                                removed += 1;
                            }
                        }
                        drop(guard);
                        let stable = seen.iter().filter(|k| **k < STABLE).count() as u64;
                        assert_eq!(stable, STABLE, "a stable key was missed");
                        passes += 1;
                    }
                    (passes, removed)
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Relaxed);
        let (passes, removed) = iterators
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        for k in 0..STABLE {
            assert_eq!(map.get(&k).map(|v| v.check()), Some(k << 32));
        }
        format!(
            "{passes} iteration passes, {removed} removals during iteration, {} resizes",
            map.resizes()
        )
    });
}

/// Bounded mode under concurrent weighted inserts and reads.
#[test]
fn bounded_eviction_under_contention() {
    accounted("bounded", |live| {
        const MAX: u64 = 2_000;
        let map: Arc<EpochMap<Tracked, Tracked>> = Arc::new(EpochMap::bounded(MAX));
        let ops = 20_000 * scale();
        let t_n = threads();
        let handles: Vec<_> = (0..t_n)
            .map(|tid| {
                let (map, live) = (Arc::clone(&map), Arc::clone(live));
                thread::spawn(move || {
                    let mut rng = Rng::new(tid + 77);
                    let mut hits = 0u64;
                    for i in 0..ops {
                        // Skewed keys: a small hot set and a long tail.
                        let k = if rng.below(2) == 0 {
                            rng.below(100)
                        } else {
                            rng.below(20_000)
                        };
                        if rng.below(4) == 0 {
                            let w = 1 + k % 8;
                            map.insert_weighted(Tracked::new(k, &live), value(k, i, &live), w);
                        } else if let Some(v) = map.get(&k) {
                            assert_eq!(key_of(&v), k);
                            hits += 1;
                        }
                    }
                    hits
                })
            })
            .collect();
        let hits: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let guard = map.guard();
        let (mut n, mut w) = (0usize, 0u64);
        for (k, v) in map.iter(&guard) {
            assert_eq!(key_of(v), k.check());
            n += 1;
            w += 1 + k.check() % 8;
        }
        assert_eq!(n, map.len());
        assert_eq!(w, map.weight());
        assert!(w <= MAX, "weight {w} over {MAX}");
        assert!(map.evictions() > 0);
        let reads = ops * t_n * 3 / 4;
        format!(
            "{t_n} threads x {ops} ops, weight {w}/{MAX}, {n} entries, {} evictions, hit ratio ~{:.2}",
            map.evictions(),
            hits as f64 / reads as f64
        )
    });
}

/// Racing `get_or_insert_with` calls agree on one value per key.
#[test]
fn get_or_insert_agrees() {
    accounted("get_or_insert", |live| {
        let map: Arc<EpochMap<Tracked, Tracked>> = Arc::new(EpochMap::with_capacity(1));
        let keys = 2_000 * scale();
        let t_n = threads();
        let barrier = Arc::new(Barrier::new(t_n as usize));
        let handles: Vec<_> = (0..t_n)
            .map(|tid| {
                let (map, live, barrier) =
                    (Arc::clone(&map), Arc::clone(live), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    // Threads walk the keys in different orders.
                    let order: Vec<u64> = if tid % 2 == 0 {
                        (0..keys).collect()
                    } else {
                        (0..keys).rev().collect()
                    };
                    order
                        .into_iter()
                        .map(|k| {
                            map.get_or_insert_with(Tracked::new(k, &live), || value(k, tid, &live))
                                .check()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (tid, r) in results.iter().enumerate() {
            for (i, id) in r.iter().enumerate() {
                let k = if tid % 2 == 0 {
                    i as u64
                } else {
                    keys - 1 - i as u64
                };
                assert_eq!(
                    map.get(&k).map(|v| v.check()),
                    Some(*id),
                    "thread {tid} key {k}"
                );
            }
        }
        assert_eq!(map.len() as u64, keys);
        format!("{t_n} threads x {keys} keys, {} resizes", map.resizes())
    });
}
