//! Side-by-side map throughput under contention, one CSV line per map:
//! `workload,threads,map,mops`.
//!
//! ```text
//! cargo run --release -p cache --example contention -- --workload read_heavy,exchange \
//!     --threads 1,2,4 --seconds 2 --maps epoch,dashmap,papaya,scc,moka,quick_cache
//! ```
//!
//! Workloads (`--workload all` runs every one):
//!
//! * conc-map-bench's mixes, as read/insert/remove/update percentages: `read_heavy`
//!   98/1/1/0, `exchange` 10/40/40/10, `rapid_grow` 5/80/5/10. Each thread owns a sliding
//!   window of live keys: an insert adds a fresh key at the top, a remove takes the oldest,
//!   reads and updates pick a live key at random (so reads hit, as in conc-map-bench). The
//!   maps start with 2^19 keys (2^16 for `rapid_grow`, which then grows until it has inserted
//!   2^22 more or the time is up).
//! * Caffeine's get/put mixes over 2^20 keys, all present at the start: `zipf_100_0`,
//!   `zipf_75_25`, `zipf_0_100` draw keys from a scrambled Zipfian stream (θ = 0.99, as YCSB's
//!   generator), `uniform_100_0`, `uniform_75_25`, `uniform_0_100` uniformly. A put replaces
//!   the value of a present key.
//!
//! Maps: `epoch` ([`EpochMap`], unbounded), `dashmap`, `papaya`, `scc` (`scc::HashMap`), and the
//! `moka` and `quick_cache` backends through the [`Cache`] trait with a bound no run reaches.
//! Keys and values are `u64`; hashers are each map's default. Every epoch-based map pins per
//! operation. Each run is time-bounded (`--seconds`, default 2); Mops is operations over wall
//! time from the start barrier to the last thread's end. `--header` prints the CSV header first.
//!
//! `--memory` measures instead each map's resident bytes per entry at 2^20 entries, each map in
//! a fresh process of this example (the growth of `VmRSS` while inserting, allocator overhead
//! included), one CSV line per map: `memory,map,entries,bytes_per_entry`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use cache::{Backend, Cache, EpochMap, build};
use common::{Rng, scrambled_zipf};

mod common;

/// A concurrent `u64 -> u64` map under test.
trait Map: Send + Sync + 'static {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64, v: u64);
    fn remove(&self, k: u64);
}

impl Map for EpochMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.contains_key(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        EpochMap::insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        EpochMap::remove(self, &k);
    }
}

impl Map for dashmap::DashMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        dashmap::DashMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        dashmap::DashMap::insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        dashmap::DashMap::remove(self, &k);
    }
}

impl Map for papaya::HashMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        self.pin().insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.pin().remove(&k);
    }
}

impl Map for scc::HashMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.read(&k, |_, v| *v).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        self.upsert(k, v);
    }
    fn remove(&self, k: u64) {
        scc::HashMap::remove(self, &k);
    }
}

/// A [`Cache`] backend.
struct Backed(Arc<dyn Cache<u64, u64>>);

impl Map for Backed {
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v, 1);
    }
    fn remove(&self, k: u64) {
        self.0.remove(&k);
    }
}

fn make(name: &str) -> Option<Arc<dyn Map>> {
    // Far above what any run holds: the caches never evict here.
    let unbounded = 1 << 30;
    Some(match name {
        "epoch" => Arc::new(EpochMap::<u64, u64>::new()),
        "dashmap" => Arc::new(dashmap::DashMap::<u64, u64>::new()),
        "papaya" => Arc::new(papaya::HashMap::<u64, u64>::new()),
        "scc" => Arc::new(scc::HashMap::<u64, u64>::default()),
        "moka" => Arc::new(Backed(build(Backend::Moka, unbounded))),
        "quick_cache" => Arc::new(Backed(build(Backend::QuickCache, unbounded))),
        _ => return None,
    })
}

/// A workload: a conc-map-bench mix over per-thread key windows, or a get/put mix over a
/// shared key stream.
#[derive(Clone, Copy, Debug)]
enum Workload {
    Mix {
        name: &'static str,
        read: u32,
        insert: u32,
        remove: u32,
        prefill: u64,
    },
    GetPut {
        name: &'static str,
        get: u32,
        zipf: bool,
    },
}

const WORKLOADS: [Workload; 9] = [
    Workload::Mix {
        name: "read_heavy",
        read: 98,
        insert: 1,
        remove: 1,
        prefill: 1 << 19,
    },
    Workload::Mix {
        name: "exchange",
        read: 10,
        insert: 40,
        remove: 40,
        prefill: 1 << 19,
    },
    Workload::Mix {
        name: "rapid_grow",
        read: 5,
        insert: 80,
        remove: 5,
        prefill: 1 << 16,
    },
    Workload::GetPut {
        name: "zipf_100_0",
        get: 100,
        zipf: true,
    },
    Workload::GetPut {
        name: "zipf_75_25",
        get: 75,
        zipf: true,
    },
    Workload::GetPut {
        name: "zipf_0_100",
        get: 0,
        zipf: true,
    },
    Workload::GetPut {
        name: "uniform_100_0",
        get: 100,
        zipf: false,
    },
    Workload::GetPut {
        name: "uniform_75_25",
        get: 75,
        zipf: false,
    },
    Workload::GetPut {
        name: "uniform_0_100",
        get: 0,
        zipf: false,
    },
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Mix { name, .. } | Workload::GetPut { name, .. } => name,
        }
    }
}

/// Fresh inserts a `rapid_grow` run may make in all, so that a fast map cannot fill memory.
const GROW_LIMIT: u64 = 1 << 22;
/// Keys of the get/put mixes.
const GETPUT_KEYS: u64 = 1 << 20;

/// Key `i` of thread `t`, scrambled so that neighbours share no hash pattern.
fn key(t: usize, i: u64) -> u64 {
    ((t as u64) << 40 | i)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// Runs `workload` on a fresh map with `threads` threads for at most `secs`; millions of
/// operations per second.
fn run(workload: Workload, map: Arc<dyn Map>, threads: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let stream: Arc<Vec<u64>> = Arc::new(match workload {
        Workload::GetPut { zipf, .. } => {
            for k in 0..GETPUT_KEYS {
                map.insert(key(0, k), k);
            }
            let mut rng = Rng(0x5eed);
            if zipf {
                scrambled_zipf(GETPUT_KEYS, 0.99, 1 << 20, &mut rng)
            } else {
                (0..1 << 20).map(|_| rng.next() % GETPUT_KEYS).collect()
            }
        }
        Workload::Mix { prefill, .. } => {
            let per = prefill / threads as u64;
            for t in 0..threads {
                for i in 0..per {
                    map.insert(key(t, i), i);
                }
            }
            Vec::new()
        }
    });
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (map, stop, barrier, stream) = (
                Arc::clone(&map),
                Arc::clone(&stop),
                Arc::clone(&barrier),
                Arc::clone(&stream),
            );
            thread::spawn(move || {
                let mut rng = Rng((t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                let mut ops = 0u64;
                barrier.wait();
                match workload {
                    Workload::Mix {
                        read,
                        insert,
                        remove,
                        prefill,
                        ..
                    } => {
                        let (mut lo, mut hi) = (0u64, prefill / threads as u64);
                        let grow_limit = hi + GROW_LIMIT / threads as u64;
                        'run: while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1024 {
                                let x = rng.next();
                                let live = (hi - lo).max(1);
                                let some = key(t, lo + (x >> 8) % live);
                                match (x % 100) as u32 {
                                    p if p < read => {
                                        map.get(some);
                                    }
                                    p if p < read + insert => {
                                        if hi >= grow_limit {
                                            break 'run;
                                        }
                                        map.insert(key(t, hi), hi);
                                        hi += 1;
                                    }
                                    p if p < read + insert + remove => {
                                        if lo < hi {
                                            map.remove(key(t, lo));
                                            lo += 1;
                                        }
                                    }
                                    _ => map.insert(some, x),
                                }
                                ops += 1;
                            }
                        }
                    }
                    Workload::GetPut { get, .. } => {
                        let mut at = (rng.next() as usize) % stream.len();
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1024 {
                                let k = key(0, stream[at]);
                                at = (at + 1) % stream.len();
                                if ((rng.next() % 100) as u32) < get {
                                    map.get(k);
                                } else {
                                    map.insert(k, at as u64);
                                }
                                ops += 1;
                            }
                        }
                    }
                }
                ops
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline && !handles.iter().all(|h| h.is_finished()) {
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mops = ops as f64 / start.elapsed().as_secs_f64() / 1e6;
    drop(map);
    cache::epoch_map::flush();
    mops
}

/// Entries of a `--memory` measurement.
const MEMORY_ENTRIES: u64 = 1 << 20;

/// This process's resident set, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// In this process: resident bytes per entry of `map` holding [`MEMORY_ENTRIES`] entries.
fn memory_one(name: &str) -> f64 {
    let map = make(name).expect("known map");
    let before = rss_bytes();
    for i in 0..MEMORY_ENTRIES {
        map.insert(key(0, i), i);
    }
    // Let the epoch collector free what the growth left behind (old tables), so
    // that this measures the map at rest, not its last resize's garbage.
    for _ in 0..64 {
        cache::epoch_map::flush();
    }
    let after = rss_bytes();
    let per = after.saturating_sub(before) as f64 / MEMORY_ENTRIES as f64;
    drop(map);
    per
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().to_string()).collect()
}

fn main() {
    let mut workloads = vec!["read_heavy".to_string()];
    let mut threads = vec![1usize, 2, 4];
    let mut maps = list("epoch,dashmap,papaya,scc,moka,quick_cache");
    let mut secs = 2.0;
    let mut header = false;
    let mut memory = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--workload" => workloads = list(&value()),
            "--threads" => {
                threads = list(&value())
                    .iter()
                    .map(|t| t.parse().expect("--threads takes numbers"))
                    .collect()
            }
            "--maps" => maps = list(&value()),
            "--seconds" => secs = value().parse().expect("--seconds takes a number"),
            "--header" => header = true,
            "--memory" => memory = true,
            "--memory-one" => {
                println!("{}", memory_one(&value()));
                return;
            }
            other => {
                eprintln!("unknown argument {other} (see the top of examples/contention.rs)");
                std::process::exit(2);
            }
        }
    }
    if workloads.iter().any(|w| w == "all") {
        workloads = WORKLOADS.iter().map(|w| w.name().to_string()).collect();
    }
    let chosen: Vec<Workload> = workloads
        .iter()
        .map(|name| {
            *WORKLOADS
                .iter()
                .find(|w| w.name() == name)
                .unwrap_or_else(|| {
                    eprintln!("unknown workload {name}");
                    std::process::exit(2)
                })
        })
        .collect();
    for m in &maps {
        if make(m).is_none() {
            eprintln!("unknown map {m} (epoch, dashmap, papaya, scc, moka, quick_cache)");
            std::process::exit(2);
        }
    }
    if memory {
        if header {
            println!("memory,map,entries,bytes_per_entry");
        }
        let exe = std::env::current_exe().expect("own path");
        for m in &maps {
            let out = std::process::Command::new(&exe)
                .args(["--memory-one", m])
                .output()
                .expect("run a measurement");
            let per: f64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a number");
            println!("memory,{m},{MEMORY_ENTRIES},{per:.1}");
        }
        return;
    }
    if header {
        println!("workload,threads,map,mops");
    }
    for workload in chosen {
        for &t in &threads {
            for m in &maps {
                let map = make(m).expect("checked");
                let mops = run(workload, map, t, secs);
                println!("{},{t},{m},{mops:.2}", workload.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream is Zipfian: the most popular key takes about 1 / zeta(n) of the draws
    /// (6.5% for n = 2^20, theta = 0.99), and every key is in range.
    #[test]
    fn the_scrambled_zipf_stream_is_skewed_and_in_range() {
        let n = 1 << 20;
        let draws = scrambled_zipf(n, 0.99, 200_000, &mut Rng(7));
        assert!(draws.iter().all(|&k| k < n));
        let mut counts = std::collections::HashMap::new();
        for k in &draws {
            *counts.entry(*k).or_insert(0u64) += 1;
        }
        let top = *counts.values().max().unwrap() as f64 / draws.len() as f64;
        assert!((0.05..0.08).contains(&top), "top key share {top}");
        // Uniform draws over the same space would give about 1 / n per key.
        assert!(counts.len() < draws.len() / 2, "{} distinct", counts.len());
    }

    /// Every map counts the same: what is inserted is found, what is removed is gone.
    #[test]
    fn every_map_behaves_as_a_map() {
        for name in ["epoch", "dashmap", "papaya", "scc", "moka", "quick_cache"] {
            let map = make(name).unwrap();
            for i in 0..1000 {
                map.insert(key(1, i), i);
            }
            for i in 0..500 {
                map.remove(key(1, i));
            }
            let found = (0..1000).filter(|&i| map.get(key(1, i))).count();
            assert_eq!(found, 500, "{name}");
        }
    }

    /// A short run of each workload completes and counts operations.
    #[test]
    fn each_workload_runs() {
        for w in WORKLOADS {
            let mops = run(w, make("dashmap").unwrap(), 2, 0.05);
            assert!(mops > 0.0, "{}", w.name());
        }
    }
}
