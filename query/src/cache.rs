//! The results cache: metric `query_range` results split into step-aligned buckets, log results
//! of time ranges that can no longer change, and label/series answers for a few seconds.
//!
//! A bucket (or log range) is cached only when it ends before the freshness horizon, `now`
//! minus the longest delay with which entries may still arrive; the live edge is always
//! queried. Keys are the tenant, the canonical query text, the step and the bucket, so two
//! spellings of one query share entries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{Backend, Cache, CacheStats};

use crate::engine::LogEntry;
use crate::eval::{Series, Steps};

/// What the cache holds.
#[derive(Clone, Debug)]
pub enum Cached {
    /// The series of one bucket of a metric range query.
    Matrix(Arc<Vec<Series>>),
    /// The entries of a log query over a closed time range.
    Logs(Arc<Vec<LogEntry>>),
    /// A labels, label-values or series answer, and when it was computed.
    Json(Instant, Arc<serde_json::Value>),
}

/// The results cache; `None` inside when disabled (`query.cache_max_bytes = 0`).
pub struct ResultsCache {
    inner: Option<Arc<dyn Cache<String, Cached>>>,
    labels_ttl: Duration,
}

/// Evaluation times per cached bucket: at least an hour of steps.
const BUCKET_SECS: i64 = 3600;

/// One piece of a split range query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The evaluation times of this piece.
    pub steps: Steps,
    /// The cache key suffix when the piece is a whole, immutable bucket.
    pub key: Option<String>,
}

impl ResultsCache {
    /// A cache of `backend` holding at most `max_bytes` (0 disables it).
    pub fn new(backend: Backend, max_bytes: u64, labels_ttl: Duration) -> ResultsCache {
        ResultsCache {
            inner: (max_bytes > 0).then(|| cache::build(backend, max_bytes)),
            labels_ttl,
        }
    }

    /// Looks `key` up; JSON answers older than the labels TTL are misses.
    pub fn get(&self, key: &str) -> Option<Cached> {
        let cached = self.inner.as_ref()?.get(&key.to_owned())?;
        match &cached {
            Cached::Json(at, _) if at.elapsed() > self.labels_ttl => None,
            _ => Some(cached),
        }
    }

    /// Stores `value` under `key`, weighed by its approximate size in bytes.
    pub fn insert(&self, key: String, value: Cached) {
        if let Some(inner) = &self.inner {
            let weight = key.len() as u64 + weight(&value);
            inner.insert(key, value, weight);
        }
    }

    /// Counters for `/metrics`; all zero when disabled.
    pub fn stats(&self) -> CacheStats {
        self.inner.as_ref().map(|c| c.stats()).unwrap_or_default()
    }

    /// The backend's name, or `disabled`.
    pub fn backend_name(&self) -> &'static str {
        self.inner
            .as_ref()
            .map_or("disabled", |c| c.backend().name())
    }

    /// Renders the counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use store::metrics::{render_header, render_sample};
        let s = self.stats();
        let labels = format!("cache=\"results\",backend=\"{}\"", self.backend_name());
        for (name, kind, help, value) in [
            (
                "sluice_cache_hits_total",
                "counter",
                "Results cache look-ups that found an entry.",
                s.hits,
            ),
            (
                "sluice_cache_misses_total",
                "counter",
                "Results cache look-ups that found none.",
                s.misses,
            ),
            (
                "sluice_cache_evictions_total",
                "counter",
                "Results cache entries evicted to stay within the byte bound.",
                s.evictions,
            ),
            (
                "sluice_cache_bytes",
                "gauge",
                "Approximate bytes held by the results cache.",
                s.weight,
            ),
            (
                "sluice_cache_entries",
                "gauge",
                "Entries in the results cache.",
                s.entries,
            ),
        ] {
            render_header(out, name, kind, help);
            render_sample(out, name, &labels, value);
        }
    }
}

/// Splits the evaluation times of a range query into step-aligned buckets of at least an hour.
/// Whole buckets whose last evaluation time is before `horizon` get a key; the partial buckets
/// at the edges and those past the horizon are always evaluated.
pub fn split(steps: &Steps, horizon: i64) -> Vec<Bucket> {
    let step = steps.step.max(1);
    let per_bucket = (BUCKET_SECS * 1_000_000_000 / step).max(1);
    let span = per_bucket * step;
    // Buckets are aligned on multiples of `span` shifted by the step phase, so queries whose
    // start differs by whole steps share buckets.
    let phase = steps.start.rem_euclid(step);
    let mut out = Vec::new();
    let mut t = steps.start;
    while t <= steps.end {
        let index = (t - phase).div_euclid(span);
        let bucket_first = index * span + phase;
        let bucket_last = bucket_first + span - step;
        let last = bucket_last.min(steps.end);
        let whole = t == bucket_first && last == bucket_last;
        out.push(Bucket {
            steps: Steps {
                start: t,
                end: last,
                step,
            },
            key: (whole && last < horizon).then(|| format!("{step}:{phase}:{index}")),
        });
        t = last + step;
    }
    out
}

fn weight(value: &Cached) -> u64 {
    let labels =
        |l: &[(String, String)]| -> usize { l.iter().map(|(k, v)| k.len() + v.len() + 48).sum() };
    let bytes: usize = match value {
        Cached::Matrix(series) => series
            .iter()
            .map(|s| labels(&s.labels) + s.points.len() * 16 + 64)
            .sum(),
        Cached::Logs(entries) => entries
            .iter()
            .map(|e| e.line.len() + labels(&e.metadata) + labels(&e.parsed) + 96)
            .sum(),
        Cached::Json(_, v) => v.to_string().len(),
    };
    bytes as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn split_keeps_every_step_once_and_caches_only_whole_old_buckets() {
        let steps = Steps {
            start: 1800 * S,
            end: 4 * 3600 * S + 60 * S,
            step: 60 * S,
        };
        let buckets = split(&steps, 3 * 3600 * S);
        let times: Vec<i64> = buckets.iter().flat_map(|b| b.steps.times()).collect();
        assert_eq!(times, steps.times().collect::<Vec<_>>());
        let keyed: Vec<bool> = buckets.iter().map(|b| b.key.is_some()).collect();
        // partial first bucket, two whole old buckets, one whole past the horizon, partial last.
        assert_eq!(keyed, vec![false, true, true, false, false]);
        // A query shifted by whole steps reuses the same keys.
        let shifted = split(&Steps { start: 0, ..steps }, 3 * 3600 * S);
        assert_eq!(shifted[1].key, buckets[1].key);
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let c = ResultsCache::new(Backend::Moka, 0, Duration::from_secs(1));
        c.insert("k".into(), Cached::Matrix(Arc::new(vec![])));
        assert!(c.get("k").is_none());
        assert_eq!(c.backend_name(), "disabled");
    }
}
