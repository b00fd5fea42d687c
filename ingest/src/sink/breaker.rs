//! A circuit breaker in front of ClickHouse: after a few batches in a row fail, deliveries stop
//! for a cool-down instead of every flusher hammering a server that is down; then one probe
//! batch decides whether to close again or wait twice as long.
//!
//! Nothing is dropped while the breaker is open: the batches wait, acknowledged, in the
//! write-ahead log.

use std::sync::Mutex;
use std::time::Duration;

use store::metrics::Counter;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Batches failing in a row that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// First cool-down; each failed probe doubles it up to [`MAX_COOL_DOWN`].
pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(2);
/// Longest cool-down.
pub const MAX_COOL_DOWN: Duration = Duration::from_secs(60);

/// The breaker's state, as `/metrics` and `/ready` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Deliveries go ahead.
    Closed = 0,
    /// One probe delivery is trying.
    HalfOpen = 1,
    /// Deliveries wait for the cool-down to end.
    Open = 2,
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant, cool_down: Duration },
    HalfOpen { cool_down: Duration },
}

/// The breaker; shared by every flusher.
#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
    first_cool_down: Duration,
    max_cool_down: Duration,
    /// Times the breaker opened.
    pub opened: Counter,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new(FIRST_COOL_DOWN, MAX_COOL_DOWN)
    }
}

impl Breaker {
    /// A closed breaker with these cool-downs.
    pub fn new(first_cool_down: Duration, max_cool_down: Duration) -> Self {
        Breaker {
            inner: Mutex::new(Inner::Closed { failures: 0 }),
            first_cool_down,
            max_cool_down,
            opened: Counter::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match *self.inner.lock().expect("not poisoned") {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
        }
    }

    /// Waits until a delivery may be tried: at once while closed; after the cool-down while
    /// open, when the first caller becomes the probe and the others wait for its outcome.
    /// `false` when `stop` fired first.
    pub async fn admit(&self, stop: &CancellationToken) -> bool {
        loop {
            let wait = {
                let mut inner = self.inner.lock().expect("not poisoned");
                match *inner {
                    Inner::Closed { .. } => return true,
                    Inner::Open { until, cool_down } => {
                        if Instant::now() >= until {
                            *inner = Inner::HalfOpen { cool_down };
                            return true;
                        }
                        until - Instant::now()
                    }
                    // The probe is out: look again shortly.
                    Inner::HalfOpen { .. } => Duration::from_millis(50),
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return false,
            }
        }
    }

    /// ClickHouse answered (stored, or refused the data itself): close.
    pub fn success(&self) {
        *self.inner.lock().expect("not poisoned") = Inner::Closed { failures: 0 };
    }

    /// A delivery failed with a retryable error.
    pub fn failure(&self) {
        let mut inner = self.inner.lock().expect("not poisoned");
        let next = match *inner {
            Inner::Closed { failures } if failures + 1 < FAILURES_TO_OPEN => Inner::Closed {
                failures: failures + 1,
            },
            Inner::Closed { .. } => Inner::Open {
                until: Instant::now() + self.first_cool_down,
                cool_down: self.first_cool_down,
            },
            Inner::HalfOpen { cool_down } | Inner::Open { cool_down, .. } => {
                let cool_down = (cool_down * 2).min(self.max_cool_down);
                Inner::Open {
                    until: Instant::now() + cool_down,
                    cool_down,
                }
            }
        };
        if matches!(next, Inner::Open { .. }) && !matches!(*inner, Inner::Open { .. }) {
            self.opened.inc();
            tracing::warn!(
                "ClickHouse keeps failing: circuit breaker open, batches wait in the write-ahead log"
            );
        }
        *inner = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_millis(40);

    fn breaker() -> Breaker {
        Breaker::new(FIRST, FIRST * 3)
    }

    #[tokio::test]
    async fn opens_after_failures_probes_after_the_cool_down_and_backs_off() {
        let b = breaker();
        let stop = CancellationToken::new();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            b.failure();
            assert_eq!(b.state(), BreakerState::Closed);
        }
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened.get(), 1);
        let t = Instant::now();
        assert!(b.admit(&stop).await);
        assert!(t.elapsed() >= FIRST, "waited out the cool-down");
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen,
            "this caller is the probe"
        );
        // The probe fails: twice as long now.
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened.get(), 2);
        let t = Instant::now();
        assert!(b.admit(&stop).await);
        assert!(t.elapsed() >= FIRST * 2);
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit(&stop).await);
    }

    #[tokio::test]
    async fn others_wait_for_the_probe_and_stop_ends_the_wait() {
        let b = std::sync::Arc::new(breaker());
        let stop = CancellationToken::new();
        for _ in 0..FAILURES_TO_OPEN {
            b.failure();
        }
        assert!(b.admit(&stop).await, "the probe");
        let other = tokio::spawn({
            let (b, stop) = (b.clone(), stop.clone());
            async move { b.admit(&stop).await }
        });
        tokio::time::sleep(FIRST * 4).await;
        assert!(!other.is_finished(), "waits while the probe is out");
        b.success();
        assert!(other.await.unwrap());
        for _ in 0..FAILURES_TO_OPEN {
            b.failure();
        }
        let waiting = tokio::spawn({
            let (b, stop) = (b.clone(), stop.clone());
            async move { b.admit(&stop).await }
        });
        stop.cancel();
        assert!(!waiting.await.unwrap());
    }

    #[test]
    fn cool_down_is_capped() {
        let b = breaker();
        for _ in 0..40 {
            b.failure();
        }
        let Inner::Open { cool_down, .. } = *b.inner.lock().unwrap() else {
            panic!("open");
        };
        assert_eq!(cool_down, FIRST * 3);
    }
}
