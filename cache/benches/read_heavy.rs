//! Quick read-heavy comparison: `EpochMap` against `DashMap`, and the four
//! `Cache` backends, under conc-map-bench's ReadHeavy mix (98% get, 1% insert,
//! 1% remove) with 1, 2 and 4 threads. Fixed data (2^17 keys prefilled out of
//! a 2^18 key space, scrambled), a seeded xorshift per thread, std's
//! `RandomState` hasher for both maps. Prints millions of operations per
//! second (best of three runs), then each backend's hit ratio on a seeded
//! Zipf(0.99) trace at three capacities.
//!
//! `cargo bench -p cache --bench read_heavy -j2` (`-- --quick` for a short run).
//! The full contention suite (Exchange, RapidGrow, Zipfian get/put mixes,
//! papaya and scc) is `examples/contention.rs`.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use cache::{Backend, Cache, EpochMap, build};
use dashmap::DashMap;

const PREFILL: u64 = 1 << 17;
const SPACE: u64 = 1 << 18;

/// A concurrent map under test.
trait Map: Send + Sync + 'static {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64);
    fn remove(&self, k: u64);
}

impl Map for EpochMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.get(&k).is_some()
    }
    fn insert(&self, k: u64) {
        self.insert(k, k);
    }
    fn remove(&self, k: u64) {
        self.remove(&k);
    }
}

impl Map for DashMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        DashMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64) {
        DashMap::insert(self, k, k);
    }
    fn remove(&self, k: u64) {
        DashMap::remove(self, &k);
    }
}

struct Backed(Arc<dyn Cache<u64, u64>>);

impl Map for Backed {
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    fn insert(&self, k: u64) {
        self.0.insert(k, k, 1);
    }
    fn remove(&self, k: u64) {
        self.0.remove(&k);
    }
}

/// Key number `i`, scrambled so that neighbours do not share hash patterns.
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

fn run<M: Map>(map: &Arc<M>, threads: usize, ops: u64, writes: bool) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (map, barrier) = (Arc::clone(map), Arc::clone(&barrier));
            thread::spawn(move || {
                let mut x = (t as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
                let mut found = 0u64;
                barrier.wait();
                for _ in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = key(x % SPACE);
                    match (x >> 40) % 100 {
                        0 if writes => map.insert(k),
                        1 if writes => map.remove(k),
                        _ => found += u64::from(map.get(k)),
                    }
                }
                std::hint::black_box(found);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn bench<M: Map>(name: &str, make: impl Fn() -> M, ops: u64, writes: bool) {
    let mut line = format!("{name:<22}");
    for threads in [1, 2, 4] {
        let best = (0..3)
            .map(|_| {
                let map = Arc::new(make());
                for i in 0..PREFILL {
                    map.insert(key(i * 2));
                }
                run(&map, threads, ops / threads as u64, writes)
            })
            .min()
            .unwrap();
        let mops = ops as f64 / best.as_secs_f64() / 1e6;
        line += &format!("  {threads}t {mops:7.1} Mops/s");
    }
    println!("{line}");
}

fn cache_of(b: Backend) -> impl Fn() -> Backed {
    move || Backed(build(b, 2 * SPACE))
}

/// Hit ratio of a single-threaded get-or-insert loop over a Zipf(0.99) trace
/// of 100 000 keys (1 000 000 requests, seeded), for a capacity of `cap`.
fn hit_ratio(b: Backend, cap: u64, trace: &[u64]) -> f64 {
    let c = build::<u64, u64>(b, cap);
    let mut hits = 0u64;
    for &k in trace {
        if c.get(&k).is_some() {
            hits += 1;
        } else {
            c.insert(k, k, 1);
        }
    }
    hits as f64 / trace.len() as f64
}

fn zipf_trace(keys: usize, theta: f64, len: usize) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(keys);
    let mut sum = 0.0;
    for i in 1..=keys {
        sum += 1.0 / (i as f64).powf(theta);
        cdf.push(sum);
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * sum;
            key(cdf.partition_point(|c| *c < u) as u64)
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore the harness flags.
    let quick = std::env::args().any(|a| a == "--quick");
    let ops: u64 = if quick { 1_000_000 } else { 8_000_000 };
    println!("ReadHeavy 98/1/1, {PREFILL} of {SPACE} keys, {ops} ops per run, best of 3");
    bench("EpochMap", EpochMap::<u64, u64>::new, ops, true);
    bench("DashMap", DashMap::<u64, u64>::new, ops, true);
    for b in Backend::ALL {
        bench(&format!("Cache<{b}>"), cache_of(b), ops, true);
    }
    println!("ReadOnly 100/0/0");
    bench("EpochMap", EpochMap::<u64, u64>::new, ops, false);
    bench("DashMap", DashMap::<u64, u64>::new, ops, false);
    let trace = zipf_trace(100_000, 0.99, if quick { 200_000 } else { 1_000_000 });
    println!(
        "Hit ratio, Zipf 0.99 over 100 000 keys, {} requests",
        trace.len()
    );
    for b in Backend::ALL {
        let ratios: Vec<String> = [100, 1_000, 10_000]
            .into_iter()
            .map(|cap| format!("cap {cap:>6}: {:.3}", hit_ratio(b, cap, &trace)))
            .collect();
        println!("{:<22}  {}", format!("Cache<{b}>"), ratios.join("  "));
    }
}
