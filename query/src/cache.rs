//! The results cache: metric `query_range` results as extents within step-aligned buckets, log
//! results of time ranges that can no longer change, and label/series answers for a few seconds.
//!
//! A metric range query is split into pieces on hour-long buckets of evaluation times, and at
//! the freshness horizon (`now` minus the longest delay with which entries may still arrive).
//! Every piece before the horizon is immutable and cached as an *extent* of its bucket (any run
//! of its steps, as Loki's results cache keeps extents): a later piece of the same bucket takes
//! what a cached extent holds from its first step on and evaluates only the steps after, so the
//! partial buckets at the edges of a range are reused too, and a sliding dashboard evaluates
//! only the steps that crossed the horizon since its last refresh, and the live edge.
//! Evaluating one step never depends on another, so a slice of an extent equals the piece
//! evaluated alone. Keys are the tenant, the canonical query text, the step and the bucket, so
//! two spellings of one query share entries.
//!
//! Log queries are cached the same way, per hour bucket of their time range: a *log extent* is a
//! time range of one bucket and every entry the query selects in it (see [`LogExtent`]). A
//! query walks its pieces in its direction, takes from extents what they answer exactly, and
//! asks ClickHouse once for each run of pieces they do not, with the limit still wanted. When
//! that answer was cut by the limit, only the side of the cut it covered is kept, and the ties
//! at the cut's timestamp are marked as possibly incomplete: they serve a later query in the
//! same direction that needs no more than they hold, never one that needs more.
//!
//! A metric range that lies wholly before the horizon is also kept whole, as the rendered JSON
//! of its `result` array ([`RenderedMatrix`]): a repeated request (a dashboard reload, ten
//! people opening one dashboard) is then one look-up and one copy, with no evaluation and no
//! serialisation. Identical requests that miss at the same time share one computation
//! ([`Flights`]); the hit path takes no lock of ours, only the backend's own read path.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache::{Backend, Cache, CacheStats};

use crate::engine::LogEntry;
use crate::eval::{Series, Steps};
use crate::logql::sql::{Direction, TimeRange};

/// What the cache holds.
#[derive(Clone, Debug)]
pub enum Cached {
    /// Complete runs of entries of a log query within one bucket.
    LogExtents(Arc<Vec<LogExtent>>),
    /// A labels, label-values or series answer, and when it was computed.
    Json(Instant, Arc<serde_json::Value>),
    /// Evaluated runs of steps of one bucket of a metric range query.
    Extents(Arc<Vec<Extent>>),
    /// The whole answer of a metric range query over a closed range.
    Matrix(RenderedMatrix),
}

/// A metric range answer as sent: the JSON of Loki's `result` array, and the work it cost (for
/// `stats.summary`).
#[derive(Clone, Debug)]
pub struct RenderedMatrix {
    /// `[{"metric":{..},"values":[..]},..]`.
    pub result: Arc<str>,
    /// Lines ClickHouse read for it.
    pub lines: u64,
    /// Bytes of those lines.
    pub bytes: u64,
}

/// Single-flight: callers that ask for the same key while a computation of it runs wait for
/// that computation and share its output instead of starting their own.
///
/// If the running computation is cancelled (its request timed out), one of the waiters runs
/// its own in its place, so nobody waits on work that no longer happens. The map is only
/// touched on a cache miss.
pub struct Flights<T> {
    running: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<T>>>>,
}

impl<T> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Flights<T> {
    /// The output of `compute` for `key`: run here, or shared with a concurrent caller of the
    /// same key.
    pub async fn run<F: Future<Output = T>>(&self, key: &str, compute: F) -> T {
        let cell = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        let out = cell.get_or_init(|| compute).await.clone();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            running.remove(key);
        }
        out
    }

    /// Keys being computed now.
    pub fn len(&self) -> usize {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is being computed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The series of a metric query over the steps `start..=end` of one bucket.
#[derive(Clone, Debug)]
pub struct Extent {
    /// First evaluation time held.
    pub start: i64,
    /// Last evaluation time held (inclusive).
    pub end: i64,
    /// The series over those steps (a series without a point in them is absent).
    pub series: Arc<Vec<Series>>,
}

/// Extents kept per bucket; the oldest goes first.
const MAX_EXTENTS: usize = 8;

/// Entries a log query selects in `start..end` (end exclusive), within one bucket, in forward
/// order (timestamp, then stream and line, as ClickHouse orders ties).
///
/// All of them, except when the answer that made the extent was cut by its limit (`cut`): then
/// the entries at the timestamp of the cut, at the edge the query reached last, are only the
/// first of those ties in that query's order. That is still exact for a later query in the
/// same direction that needs no more entries than the extent holds.
#[derive(Clone, Debug)]
pub struct LogExtent {
    /// Inclusive start, ns.
    pub start: i64,
    /// Exclusive end, ns.
    pub end: i64,
    /// `Some(Backward)`: the entries at `start` may be only some of them (the first in backward
    /// order); `Some(Forward)`: likewise at `end - 1`, in forward order.
    pub cut: Option<Direction>,
    /// The entries, oldest first.
    pub entries: Arc<Vec<LogEntry>>,
}

impl LogExtent {
    /// The range whose entries are all held.
    fn clean(&self) -> (i64, i64) {
        match self.cut {
            None => (self.start, self.end),
            Some(Direction::Backward) => (self.start + 1, self.end),
            Some(Direction::Forward) => (self.start, self.end - 1),
        }
    }

    /// Whether every entry of `range` is held.
    pub fn holds(&self, range: TimeRange) -> bool {
        let (cs, ce) = self.clean();
        cs <= range.start && range.end <= ce
    }

    /// Entries in `from..to`, at most `n`, in `direction` order.
    fn take(&self, from: i64, to: i64, direction: Direction, n: usize) -> Vec<LogEntry> {
        let slice = &self.entries[self.entries.partition_point(|e| e.timestamp < from)
            ..self.entries.partition_point(|e| e.timestamp < to)];
        match direction {
            Direction::Forward => slice.iter().take(n).cloned().collect(),
            Direction::Backward => slice.iter().rev().take(n).cloned().collect(),
        }
    }

    /// How many entries lie in `from..to`.
    fn count(&self, from: i64, to: i64) -> usize {
        self.entries.partition_point(|e| e.timestamp < to)
            - self.entries.partition_point(|e| e.timestamp < from)
    }
}

/// A time span held by an extent, for [`with_extent`]; the end may be inclusive or exclusive,
/// as long as one kind of extent is compared with its own kind.
pub trait Span {
    /// `(start, end)`.
    fn span(&self) -> (i64, i64);
}

impl Span for Extent {
    fn span(&self) -> (i64, i64) {
        (self.start, self.end)
    }
}

impl Span for LogExtent {
    /// The part held completely, so that a cut extent never displaces a complete one.
    fn span(&self) -> (i64, i64) {
        self.clean()
    }
}

/// One piece of a log query's range: the part of the range in one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPiece {
    /// The part of the range.
    pub range: TimeRange,
    /// The cache key suffix of its bucket when the piece ended before the horizon.
    pub key: Option<String>,
}

/// Splits `range` on hour buckets and at `horizon`, in `direction` order. Pieces that end at or
/// before `horizon` get their bucket's key.
pub fn log_pieces(range: TimeRange, direction: Direction, horizon: i64) -> Vec<LogPiece> {
    let span = BUCKET_SECS * 1_000_000_000;
    let mut out = Vec::new();
    let mut t = range.start;
    while t < range.end {
        let index = t.div_euclid(span);
        let mut end = ((index + 1) * span).min(range.end);
        if t < horizon && end > horizon {
            end = horizon;
        }
        out.push(LogPiece {
            range: TimeRange { start: t, end },
            key: (end <= horizon).then(|| format!("{index}")),
        });
        t = end;
    }
    if direction == Direction::Backward {
        out.reverse();
    }
    out
}

/// The entries of `piece`, at most `wanted` of them in `direction` order, when `extents`
/// answer that exactly: an extent holds every entry of the piece, or holds the first `wanted`
/// of them in `direction` order (the part of the piece the query reaches first, with enough
/// entries in it).
pub fn log_from_extents(
    extents: &[LogExtent],
    piece: TimeRange,
    direction: Direction,
    wanted: usize,
) -> Option<Vec<LogEntry>> {
    let (s, e) = (piece.start, piece.end);
    if let Some(x) = extents.iter().find(|x| x.holds(piece)) {
        return Some(x.take(s, e, direction, wanted));
    }
    extents.iter().find_map(|x| {
        let (cs, ce) = x.clean();
        match direction {
            // Read downwards from `e`: nothing above it may be missing, and what lies between
            // it and the extent's start (ties there included: a backward cut keeps the first
            // of them in this order) must be enough.
            Direction::Backward if x.start < e && e <= ce => {
                let from = s.max(x.start);
                (x.count(from, e) >= wanted).then(|| x.take(from, e, direction, wanted))
            }
            Direction::Forward if cs <= s && s < x.end => {
                let to = e.min(x.end);
                (x.count(s, to) >= wanted).then(|| x.take(s, to, direction, wanted))
            }
            _ => None,
        }
    })
}

/// The extents that `entries` (one answer, in `direction` order, for the run of `pieces`)
/// establish, with their keys. `cut` says the answer stopped at its limit: then what lies
/// beyond its last entry's timestamp is unknown and not kept, and the ties at that timestamp
/// are kept as a cut edge.
pub fn log_extents_from(
    pieces: &[LogPiece],
    entries: &[LogEntry],
    direction: Direction,
    cut: bool,
) -> Vec<(String, LogExtent)> {
    let last = if cut {
        match entries.last() {
            Some(e) => Some(e.timestamp),
            None => return Vec::new(),
        }
    } else {
        None
    };
    let mut out = Vec::new();
    for piece in pieces {
        let Some(key) = &piece.key else { continue };
        let (start, end, edge) = match (last, direction) {
            (None, _) => (piece.range.start, piece.range.end, None),
            (Some(t), Direction::Backward) => (
                piece.range.start.max(t),
                piece.range.end,
                (t >= piece.range.start).then_some(Direction::Backward),
            ),
            (Some(t), Direction::Forward) => (
                piece.range.start,
                piece.range.end.min(t + 1),
                (t < piece.range.end).then_some(Direction::Forward),
            ),
        };
        if start >= end {
            continue;
        }
        let mut held: Vec<LogEntry> = entries
            .iter()
            .filter(|e| e.timestamp >= start && e.timestamp < end)
            .cloned()
            .collect();
        if direction == Direction::Backward {
            held.reverse();
        }
        out.push((
            key.clone(),
            LogExtent {
                start,
                end,
                cut: edge,
                entries: Arc::new(held),
            },
        ));
    }
    out
}

/// The longest run of `steps` from its start that one extent holds: the last evaluation time
/// it covers, and the series over `steps.start..=that`. `None` when no extent holds the first
/// step.
pub fn covered_prefix(extents: &[Extent], steps: &Steps) -> Option<(i64, Vec<Series>)> {
    let e = extents
        .iter()
        .filter(|e| e.start <= steps.start && e.end >= steps.start)
        .max_by_key(|e| e.end)?;
    let end = e.end.min(steps.end);
    let series = e
        .series
        .iter()
        .filter_map(|s| {
            let points: Vec<_> = s
                .points
                .iter()
                .filter(|p| p.t >= steps.start && p.t <= end)
                .cloned()
                .collect();
            (!points.is_empty()).then(|| Series {
                labels: s.labels.clone(),
                points,
            })
        })
        .collect();
    Some((end, series))
}

/// `a` followed by `b` (later steps), series by series.
pub fn concat(a: Vec<Series>, b: Vec<Series>) -> Vec<Series> {
    let mut merged: std::collections::BTreeMap<crate::eval::Labels, Vec<crate::eval::Point>> =
        std::collections::BTreeMap::new();
    for s in a.into_iter().chain(b) {
        merged.entry(s.labels).or_default().extend(s.points);
    }
    merged
        .into_iter()
        .map(|(labels, points)| Series { labels, points })
        .collect()
}

/// `extents` with `new` added: extents it contains are dropped, and at most [`MAX_EXTENTS`]
/// are kept.
pub fn with_extent<E: Span + Clone>(extents: &[E], new: E) -> Vec<E> {
    let (start, end) = new.span();
    let mut out: Vec<E> = extents
        .iter()
        .filter(|e| {
            let (s, t) = e.span();
            !(s >= start && t <= end)
        })
        .cloned()
        .collect();
    out.push(new);
    if out.len() > MAX_EXTENTS {
        out.drain(..out.len() - MAX_EXTENTS);
    }
    out
}

/// The results cache; `None` inside when disabled (`query.cache_max_bytes = 0`).
pub struct ResultsCache {
    inner: Option<Arc<dyn Cache<String, Cached>>>,
    labels_ttl: Duration,
    /// Metric range answers being computed, shared by identical concurrent requests.
    pub matrix_flights: Flights<crate::Result<RenderedMatrix>>,
    /// Log query answers being computed, shared by identical concurrent requests.
    pub log_flights: Flights<crate::Result<FoundLogs>>,
}

/// The entries of a log query and the work it cost, as shared by a [`Flights`] run.
#[derive(Clone, Debug)]
pub struct FoundLogs {
    /// The entries, in the query's direction.
    pub entries: Arc<Vec<LogEntry>>,
    /// Lines ClickHouse read for them.
    pub lines: u64,
    /// Bytes of those lines.
    pub bytes: u64,
}

/// Evaluation times per cached bucket: at least an hour of steps.
const BUCKET_SECS: i64 = 3600;

/// One piece of a split range query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The evaluation times of this piece.
    pub steps: Steps,
    /// The cache key suffix of its bucket when the piece is immutable (before the horizon).
    pub key: Option<String>,
}

impl ResultsCache {
    /// A cache of `backend` holding at most `max_bytes` (0 disables it).
    pub fn new(backend: Backend, max_bytes: u64, labels_ttl: Duration) -> ResultsCache {
        ResultsCache {
            inner: (max_bytes > 0).then(|| cache::build(backend, max_bytes)),
            labels_ttl,
            matrix_flights: Flights::default(),
            log_flights: Flights::default(),
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

/// Splits the evaluation times of a range query on step-aligned buckets of at least an hour,
/// and at `horizon`. Pieces whose last evaluation time is before `horizon` get their bucket's
/// key (whole or not); pieces at or after it are always evaluated.
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
        let mut last = bucket_last.min(steps.end);
        let closed = t < horizon;
        if closed && last >= horizon {
            // Cut at the horizon: the older part is immutable.
            last = t + (horizon - 1 - t).div_euclid(step) * step;
        }
        out.push(Bucket {
            steps: Steps {
                start: t,
                end: last,
                step,
            },
            key: (last < horizon).then(|| format!("{step}:{phase}:{index}")),
        });
        t = last + step;
    }
    out
}

fn weight(value: &Cached) -> u64 {
    let labels =
        |l: &[(String, String)]| -> usize { l.iter().map(|(k, v)| k.len() + v.len() + 48).sum() };
    let bytes: usize = match value {
        Cached::LogExtents(extents) => extents
            .iter()
            .flat_map(|x| x.entries.iter())
            .map(|e| e.line.len() + labels(&e.metadata) + labels(&e.parsed) + 96)
            .sum(),
        Cached::Json(_, v) => v.to_string().len(),
        Cached::Extents(extents) => extents
            .iter()
            .flat_map(|e| e.series.iter())
            .map(|s| labels(&s.labels) + s.points.len() * 16 + 64)
            .sum(),
        Cached::Matrix(m) => m.result.len() + 64,
    };
    bytes as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn split_keeps_every_step_once_and_keys_every_piece_before_the_horizon() {
        let steps = Steps {
            start: 1800 * S,
            end: 4 * 3600 * S + 60 * S,
            step: 60 * S,
        };
        let horizon = 3 * 3600 * S + 600 * S;
        let buckets = split(&steps, horizon);
        let times: Vec<i64> = buckets.iter().flat_map(|b| b.steps.times()).collect();
        assert_eq!(times, steps.times().collect::<Vec<_>>());
        let pieces: Vec<(i64, i64, bool)> = buckets
            .iter()
            .map(|b| (b.steps.start / S, b.steps.end / S, b.key.is_some()))
            .collect();
        assert_eq!(
            pieces,
            vec![
                (1800, 3540, true), // partial first bucket: an extent
                (3600, 7140, true), // whole buckets
                (7200, 10740, true),
                (10800, 11340, true), // cut at the horizon: the older part is cached ...
                (11400, 14340, false), // ... the newer is not
                (14400, 14460, false),
            ]
        );
        // A query shifted by whole steps reuses the same keys.
        let shifted = split(&Steps { start: 0, ..steps }, horizon);
        assert_eq!(shifted[1].key, buckets[1].key);
        assert_eq!(
            shifted[0].key, buckets[0].key,
            "same bucket, another extent"
        );
    }

    fn series(labels: &str, times: &[i64]) -> Series {
        Series {
            labels: vec![("l".into(), labels.into())],
            points: times
                .iter()
                .map(|&t| crate::eval::Point { t, v: t as f64 })
                .collect(),
        }
    }

    #[test]
    fn a_covering_extent_answers_a_slice_and_contained_ones_are_replaced() {
        let wide = Extent {
            start: 10,
            end: 50,
            series: Arc::new(vec![series("a", &[10, 20, 30, 40, 50]), series("b", &[50])]),
        };
        let steps = |start, end| Steps {
            start,
            end,
            step: 10,
        };
        let (end, got) = covered_prefix(std::slice::from_ref(&wide), &steps(20, 40)).unwrap();
        assert_eq!(end, 40);
        assert_eq!(
            got,
            vec![series("a", &[20, 30, 40])],
            "b has no point there"
        );
        assert!(covered_prefix(std::slice::from_ref(&wide), &steps(0, 20)).is_none());
        // Only a prefix is held: the rest is to be evaluated and appended.
        let (end, got) = covered_prefix(std::slice::from_ref(&wide), &steps(40, 70)).unwrap();
        assert_eq!(end, 50);
        assert_eq!(got, vec![series("a", &[40, 50]), series("b", &[50])]);
        let joined = concat(got, vec![series("b", &[60]), series("c", &[70])]);
        assert_eq!(
            joined,
            vec![
                series("a", &[40, 50]),
                series("b", &[50, 60]),
                series("c", &[70])
            ]
        );
        let narrow = Extent {
            start: 20,
            end: 30,
            series: Arc::new(vec![]),
        };
        let other = Extent {
            start: 60,
            end: 70,
            series: Arc::new(vec![]),
        };
        let list = with_extent(&[narrow, other], wide);
        let spans: Vec<(i64, i64)> = list.iter().map(|e| (e.start, e.end)).collect();
        assert_eq!(spans, vec![(60, 70), (10, 50)]);
        let mut many = Vec::new();
        for i in 0..20 {
            many = with_extent(
                &many,
                Extent {
                    start: i * 100,
                    end: i * 100 + 10,
                    series: Arc::new(vec![]),
                },
            );
        }
        assert_eq!(many.len(), MAX_EXTENTS);
        assert_eq!(many.last().unwrap().start, 1900);
    }

    fn entry(t: i64) -> LogEntry {
        LogEntry {
            timestamp: t,
            line: format!("l{t}"),
            stream: Arc::new(Vec::new()),
            metadata: Vec::new(),
            parsed: Vec::new(),
        }
    }

    fn times(entries: &[LogEntry]) -> Vec<i64> {
        entries.iter().map(|e| e.timestamp).collect()
    }

    #[test]
    fn log_pieces_follow_the_direction_and_stop_keys_at_the_horizon() {
        let h = 3600 * S;
        let r = TimeRange {
            start: h / 2,
            end: 3 * h + 10,
        };
        let pieces = log_pieces(r, Direction::Forward, 2 * h + 5);
        let spans: Vec<(i64, i64, bool)> = pieces
            .iter()
            .map(|p| (p.range.start, p.range.end, p.key.is_some()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (h / 2, h, true),
                (h, 2 * h, true),
                (2 * h, 2 * h + 5, true),
                (2 * h + 5, 3 * h, false),
                (3 * h, 3 * h + 10, false)
            ]
        );
        let back = log_pieces(r, Direction::Backward, 2 * h + 5);
        assert_eq!(back.first(), pieces.last());
        assert_eq!(back.len(), pieces.len());
    }

    #[test]
    fn a_cut_answer_keeps_only_what_is_exact() {
        let piece = |start, end| LogPiece {
            range: TimeRange { start, end },
            key: Some(format!("{start}")),
        };
        let run = [piece(100, 200), piece(0, 100)];
        // Backward, limit 4, cut at 90: older entries are unknown, and 90 may have more ties.
        let got: Vec<LogEntry> = [150, 120, 95, 90].into_iter().map(entry).collect();
        let kept = log_extents_from(&run, &got, Direction::Backward, true);
        let spans: Vec<(i64, i64, Option<Direction>, Vec<i64>)> = kept
            .iter()
            .map(|(_, x)| (x.start, x.end, x.cut, times(&x.entries)))
            .collect();
        assert_eq!(
            spans,
            vec![
                (100, 200, None, vec![120, 150]),
                (90, 100, Some(Direction::Backward), vec![90, 95])
            ]
        );
        let extents: Vec<LogExtent> = kept.into_iter().map(|(_, x)| x).collect();
        let r = |start, end| TimeRange { start, end };
        // A piece held whole: any limit, either direction.
        assert_eq!(
            log_from_extents(&extents, r(110, 200), Direction::Backward, 1).map(|e| times(&e)),
            Some(vec![150])
        );
        assert_eq!(
            log_from_extents(&extents, r(91, 100), Direction::Forward, 5).map(|e| times(&e)),
            Some(vec![95])
        );
        // The same query again: the first entries backward, down to the cut tie, are exact.
        assert_eq!(
            log_from_extents(&extents, r(0, 100), Direction::Backward, 2).map(|e| times(&e)),
            Some(vec![95, 90])
        );
        // More than the extent holds there, or forward from the cut tie: not exact.
        assert!(log_from_extents(&extents, r(0, 100), Direction::Backward, 3).is_none());
        assert!(log_from_extents(&extents, r(90, 100), Direction::Forward, 1).is_none());
        assert!(log_from_extents(&extents, r(90, 100), Direction::Backward, 3).is_none());
        // Forward cut at 120 over one piece: the ties at 120 are a forward prefix.
        let fwd: Vec<LogEntry> = [101, 120].into_iter().map(entry).collect();
        let kept = log_extents_from(&run[..1], &fwd, Direction::Forward, true);
        let x: Vec<LogExtent> = kept.into_iter().map(|(_, x)| x).collect();
        assert_eq!(
            (x[0].start, x[0].end, x[0].cut),
            (100, 121, Some(Direction::Forward))
        );
        assert_eq!(
            log_from_extents(&x, r(100, 200), Direction::Forward, 2).map(|e| times(&e)),
            Some(vec![101, 120])
        );
        assert!(log_from_extents(&x, r(100, 200), Direction::Forward, 3).is_none());
        assert!(log_from_extents(&x, r(100, 121), Direction::Backward, 1).is_none());
        // Uncut: every piece is complete, empty ones included.
        let none = log_extents_from(&run, &[], Direction::Forward, false);
        assert_eq!(none.len(), 2);
        assert!(
            none.iter()
                .all(|(_, x)| x.entries.is_empty() && x.cut.is_none())
        );
        assert!(log_extents_from(&run, &[], Direction::Forward, true).is_empty());
    }

    #[tokio::test]
    async fn concurrent_callers_of_one_key_share_one_computation() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (flights, runs, gate) = (flights.clone(), runs.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("k", async {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        gate.notified().await;
                        7
                    })
                    .await
            }));
        }
        // Let every task reach the flight, then release the one computation.
        while runs.load(std::sync::atomic::Ordering::SeqCst) == 0 || flights.len() != 1 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(flights.is_empty(), "a finished flight is forgotten");
        // The next caller computes afresh.
        assert_eq!(flights.run("k", async { 8 }).await, 8);
    }

    #[tokio::test]
    async fn a_cancelled_computation_is_taken_over_by_a_waiter() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("k", std::future::pending()).await })
        };
        while flights.is_empty() {
            tokio::task::yield_now().await;
        }
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("k", async { 5 }).await })
        };
        tokio::task::yield_now().await;
        leader.abort();
        assert_eq!(follower.await.unwrap(), 5);
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let c = ResultsCache::new(Backend::Moka, 0, Duration::from_secs(1));
        c.insert("k".into(), Cached::Extents(Arc::new(vec![])));
        assert!(c.get("k").is_none());
        assert_eq!(c.backend_name(), "disabled");
    }
}
