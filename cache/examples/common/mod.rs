//! What the cache examples share: a seeded generator and the key streams.

// Each example uses part of it.
#![allow(dead_code)]

/// A seeded xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// YCSB's scrambled Zipfian generator over `n` items with constant `theta`: Zipf ranks, then
/// an FNV-1a hash spreads the popular items over the key space.
pub fn scrambled_zipf(n: u64, theta: f64, count: usize, rng: &mut Rng) -> Vec<u64> {
    let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
    let zetan = zeta(n);
    let zeta2 = zeta(2);
    let alpha = 1.0 / (1.0 - theta);
    let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
    (0..count)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let uz = u * zetan;
            let rank = if uz < 1.0 {
                0
            } else if uz < 1.0 + 0.5f64.powf(theta) {
                1
            } else {
                ((n as f64) * (eta * u - eta + 1.0).powf(alpha)) as u64
            };
            fnv1a(rank) % n
        })
        .collect()
}

/// FNV-1a of `x`'s bytes.
pub fn fnv1a(x: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `count` draws of Zipf(`theta`) ranks over `n` items (any `theta` > 0), by inverting the exact
/// distribution function; the ranks are spread over `0..n` by FNV-1a, so popular keys are not
/// neighbours.
pub fn zipf(n: u64, theta: f64, count: usize, rng: &mut Rng) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut total = 0.0;
    for i in 1..=n {
        total += 1.0 / (i as f64).powf(theta);
        cdf.push(total);
    }
    (0..count)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = cdf.partition_point(|&c| c < u) as u64;
            fnv1a(rank.min(n - 1)) % n
        })
        .collect()
}
