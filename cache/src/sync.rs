//! Atomics used by the epoch map: `std`'s normally, loom's under `--cfg crossbeam_loom`.
//!
//! crossbeam-epoch switches its own atomics to loom's under the same cfg, so a loom
//! build checks the map's atomics and the epoch machinery in one model.

#[cfg(crossbeam_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(crossbeam_loom))]
pub(crate) use std::sync::atomic::{
    AtomicIsize, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// Number of stripes in a [`StripedCounter`]. One under loom, to keep the state
/// space small.
#[cfg(crossbeam_loom)]
const STRIPES: usize = 1;
#[cfg(not(crossbeam_loom))]
const STRIPES: usize = 16;

/// A value on its own cache line, so neighbouring stripes do not share one.
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Padded<T>(pub(crate) T);

/// A signed counter split over cache-line-padded stripes: writers touching
/// different stripes do not contend, readers sum the stripes.
///
/// All operations are `Relaxed`: the counters are statistics (entry count and
/// total weight) that order nothing else. A sum taken while writers run is not a
/// snapshot; it is exact once they stop.
#[derive(Debug)]
pub(crate) struct StripedCounter {
    stripes: Box<[Padded<AtomicIsize>]>,
}

impl StripedCounter {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Padded(AtomicIsize::new(0))).collect(),
        }
    }

    /// Adds `delta` to the stripe chosen by `hint` (any well-mixed bits).
    #[inline]
    pub(crate) fn add(&self, hint: u64, delta: isize) {
        let i = (hint >> 58) as usize & (STRIPES - 1);
        self.stripes[i].0.fetch_add(delta, Ordering::Relaxed);
    }

    /// Sum of the stripes, clamped at zero.
    #[inline]
    pub(crate) fn sum(&self) -> u64 {
        let s: isize = self
            .stripes
            .iter()
            .map(|p| p.0.load(Ordering::Relaxed))
            .fold(0isize, |a, b| a.wrapping_add(b));
        s.max(0) as u64
    }
}

/// One round of waiting in a spin loop: a CPU hint for the first rounds, then
/// yielding the thread. Under loom, always a yield, which loom needs to see to
/// schedule the thread being waited for.
#[inline]
pub(crate) fn spin(rounds: &mut u32) {
    #[cfg(crossbeam_loom)]
    {
        let _ = rounds;
        loom::thread::yield_now();
    }
    #[cfg(not(crossbeam_loom))]
    {
        *rounds += 1;
        if *rounds < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Whether this write should check the map's load: one write in 16 per thread,
/// so that writes do not sum the length's stripes (16 cache lines) each time.
/// Under loom, every write, so that its small models resize when they expect to.
#[inline]
pub(crate) fn sampled() -> bool {
    #[cfg(crossbeam_loom)]
    {
        true
    }
    #[cfg(not(crossbeam_loom))]
    {
        use std::cell::Cell;
        thread_local!(static WRITES: Cell<u32> = const { Cell::new(0) });
        WRITES.with(|w| {
            let n = w.get().wrapping_add(1);
            w.set(n);
            n % 16 == 0
        })
    }
}
