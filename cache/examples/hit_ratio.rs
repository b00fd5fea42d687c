//! Hit ratio of every [`Cache`] backend beside Bélády's optimum, on the same traces, one CSV
//! line per policy: `trace,capacity,policy,hit_ratio`.
//!
//! ```text
//! cargo run --release -p cache --example hit_ratio -- --header
//! ```
//!
//! Each trace is replayed single-threaded as a read-through cache would see it: a `get`, and on
//! a miss an `insert` of weight 1. Bélády's optimum (`optimal`) evicts, on a miss with a full
//! cache, the entry whose next request is furthest away (or never comes), and does not keep the
//! new key at all when it returns later than all of them (a cache may refuse to admit, as
//! moka's TinyLFU does); no policy can do better on the trace. Traces (seeded, 1 M requests each):
//!
//! * `zipf_0.8`, `zipf_0.99`, `zipf_1.2`: Zipf over 100,000 keys with those skews.
//! * `loop`: 15,000 keys requested in order, again and again: larger than every capacity, the
//!   case where recency-based policies keep nothing useful.
//! * `zipf_scan`: Zipf(0.99) over 100,000 keys, with a scan of 5,000 never-seen keys after every
//!   10,000 requests (a batch job reading through the cache).
//! * `shifting`: Zipf(0.99) over a hot set of 10,000 keys that moves to new keys every 100,000
//!   requests.
//!
//! Capacities: 100, 1,000 and 10,000 entries (`--capacities` to change them).

use std::collections::{BTreeSet, HashMap};

use cache::{Backend, build};
use common::{Rng, zipf};

mod common;

/// Requests per trace.
const REQUESTS: usize = 1_000_000;

/// The named traces.
fn traces() -> Vec<(&'static str, Vec<u64>)> {
    let mut rng = Rng(0x5eed_cafe);
    let mut out = Vec::new();
    for (name, theta) in [("zipf_0.8", 0.8), ("zipf_0.99", 0.99), ("zipf_1.2", 1.2)] {
        out.push((name, zipf(100_000, theta, REQUESTS, &mut rng)));
    }
    out.push(("loop", (0..REQUESTS as u64).map(|i| i % 15_000).collect()));
    let base = zipf(100_000, 0.99, REQUESTS, &mut rng);
    let mut scan = Vec::with_capacity(REQUESTS + REQUESTS / 2);
    let mut fresh = 1u64 << 40;
    for (i, k) in base.into_iter().enumerate() {
        scan.push(k);
        if i % 10_000 == 9_999 {
            for _ in 0..5_000 {
                scan.push(fresh);
                fresh += 1;
            }
        }
    }
    out.push(("zipf_scan", scan));
    let hot = zipf(10_000, 0.99, REQUESTS, &mut rng);
    let shifting = hot
        .into_iter()
        .enumerate()
        .map(|(i, k)| ((i / 100_000) as u64) << 32 | k)
        .collect();
    out.push(("shifting", shifting));
    out
}

/// Hit ratio of `backend` with room for `capacity` entries.
fn replay(backend: Backend, capacity: u64, trace: &[u64]) -> f64 {
    let cache = build::<u64, u64>(backend, capacity);
    let mut hits = 0u64;
    for &k in trace {
        if cache.get(&k).is_some() {
            hits += 1;
        } else {
            cache.insert(k, k, 1);
        }
    }
    hits as f64 / trace.len() as f64
}

/// Bélády's optimum: the hit ratio of a cache of `capacity` entries that, on a miss when full,
/// evicts the entry requested again furthest in the future (or never).
fn optimal(capacity: usize, trace: &[u64]) -> f64 {
    // next[i]: where trace[i] is requested next (usize::MAX: never).
    let mut next = vec![usize::MAX; trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &k) in trace.iter().enumerate().rev() {
        if let Some(&j) = seen.get(&k) {
            next[i] = j;
        }
        seen.insert(k, i);
    }
    // The cache, ordered by next request; each key's entry in it.
    let mut by_next: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut cached: HashMap<u64, usize> = HashMap::new();
    let mut hits = 0u64;
    for (i, &k) in trace.iter().enumerate() {
        if let Some(at) = cached.get_mut(&k) {
            hits += 1;
            by_next.remove(&(*at, k));
            *at = next[i];
            by_next.insert((next[i], k));
            continue;
        }
        if capacity == 0 {
            continue;
        }
        if cached.len() == capacity {
            let &(furthest, victim) = by_next.last().expect("a full cache has entries");
            if furthest < next[i] {
                // The new key comes back later than anything cached: better not to keep it.
                continue;
            }
            by_next.remove(&(furthest, victim));
            cached.remove(&victim);
        }
        cached.insert(k, next[i]);
        by_next.insert((next[i], k));
    }
    hits as f64 / trace.len() as f64
}

fn main() {
    let mut capacities = vec![100u64, 1_000, 10_000];
    let mut header = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--header" => header = true,
            "--capacities" => {
                capacities = args
                    .next()
                    .expect("--capacities needs a value")
                    .split(',')
                    .map(|c| c.trim().parse().expect("--capacities takes numbers"))
                    .collect()
            }
            other => {
                eprintln!("unknown argument {other} (see the top of examples/hit_ratio.rs)");
                std::process::exit(2);
            }
        }
    }
    if header {
        println!("trace,capacity,policy,hit_ratio");
    }
    for (name, trace) in traces() {
        for &capacity in &capacities {
            for backend in Backend::ALL {
                let ratio = replay(backend, capacity, &trace);
                println!("{name},{capacity},{backend},{ratio:.4}");
            }
            let ratio = optimal(capacity as usize, &trace);
            println!("{name},{capacity},optimal,{ratio:.4}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook case, 7 0 1 2 0 3 0 4 2 3 0 3 2 with room for 3: demand paging's optimum
    /// has 6 hits (it must take 4 in, evicting 0, which then misses); a cache may also decline
    /// to keep a key that returns later than everything it holds, so the optimum here keeps 0
    /// and has 7 hits. Only the 6 first requests of a key must miss.
    #[test]
    fn the_optimum_of_a_textbook_trace() {
        let trace = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2];
        let hits = (optimal(3, &trace) * trace.len() as f64).round() as u64;
        assert_eq!(hits, 7);
        assert_eq!(optimal(0, &trace), 0.0);
        // Room for everything: only first requests miss.
        assert_eq!(optimal(10, &trace), (13.0 - 6.0) / 13.0);
    }

    /// No policy beats the optimum on the same trace, and on a loop larger than the cache the
    /// optimum still keeps what fits.
    #[test]
    fn no_backend_beats_the_optimum() {
        let mut rng = Rng(3);
        let trace = zipf(2_000, 0.99, 30_000, &mut rng);
        for capacity in [10, 100] {
            let best = optimal(capacity, &trace);
            for backend in Backend::ALL {
                let r = replay(backend, capacity as u64, &trace);
                assert!(r <= best + 1e-9, "{backend} {r} > optimal {best}");
            }
        }
        let looped: Vec<u64> = (0..10_000).map(|i| i % 150).collect();
        let best = optimal(100, &looped);
        assert!(best > 0.5, "{best}");
    }

    /// The exact Zipf sampler follows its skew: with theta 1.2 over 1,000 keys, the most
    /// popular key takes 1 / (sum of i^-1.2 for i up to 1,000) of the draws, 23%.
    #[test]
    fn the_zipf_sampler_follows_its_skew() {
        let draws = zipf(1_000, 1.2, 100_000, &mut Rng(9));
        let mut counts = HashMap::new();
        for k in &draws {
            *counts.entry(*k).or_insert(0u64) += 1;
        }
        let top = *counts.values().max().unwrap() as f64 / draws.len() as f64;
        assert!((0.21..0.25).contains(&top), "{top}");
    }
}
