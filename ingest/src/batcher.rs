//! The batcher: cuts batches from the write-ahead log's tail and delivers them to the sink.
//!
//! Requests are acknowledged by the log, not here, so the linger delays only delivery. A batch
//! is cut when it reaches `batch_max_rows` or `batch_max_bytes`, or when its first rows have
//! waited `batch_linger_ms`. Before it is sent, its sequence range is written to the log (a
//! `Batch` record), so that after a crash the same batch is sent again under the same
//! deduplication token; once stored, a `Committed` record says so and segments wholly below
//! every unconfirmed batch are deleted.
//!
//! A batch is retried until stored (the data is acknowledged: it cannot be dropped) with
//! exponential backoff, or, when ClickHouse refuses it for good, written to the dead-letter
//! directory with the reason. Up to `flush_concurrency` batches are in flight; while every
//! flusher is busy the batcher stops cutting and the tail backs up, in memory and then on disk.
//! On shutdown the pending rows are cut into a last batch and in-flight batches get until the
//! deadline; what is not stored by then stays in the log for the next start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use bytes::Bytes;
use store::StreamRow;

use crate::pipeline::{Rows, merge_stream_rows};
use crate::sink::breaker::Breaker;
use crate::sink::clickhouse::CHUNK_BYTES;
use crate::sink::{Batch, BatchSink, SinkError};
use crate::wal::segment::Kind;
use crate::wal::{Recovery, SeqRange, Wal, encode_range};

/// Batching settings.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    /// Cut at this many rows.
    pub max_rows: usize,
    /// Cut at this many bytes.
    pub max_bytes: usize,
    /// Cut when the oldest pending rows have waited this long.
    pub linger: Duration,
    /// Batches written at the same time.
    pub flush_concurrency: usize,
    /// On shutdown, how long in-flight batches may still take.
    pub shutdown_timeout: Duration,
    /// Where batches ClickHouse refuses for good are written.
    pub dead_letter_dir: PathBuf,
    /// Fail point for tests: the batcher panics at this many cuts.
    #[cfg(test)]
    pub panic_at_cut: Option<usize>,
}

impl BatcherConfig {
    /// The settings of `c`, with dead letters under `data_dir`.
    pub fn new(c: &crate::IngestConfig, data_dir: &std::path::Path) -> Self {
        BatcherConfig {
            max_rows: c.batch_max_rows,
            max_bytes: c.batch_max_bytes,
            linger: Duration::from_millis(c.batch_linger_ms),
            flush_concurrency: c.flush_concurrency,
            shutdown_timeout: Duration::from_secs(c.shutdown_timeout_secs),
            dead_letter_dir: data_dir.join("dead-letter"),
            #[cfg(test)]
            panic_at_cut: None,
        }
    }
}

/// Starts the batcher on `wal`'s tail, first sending again the batches `recovery` found
/// unconfirmed. The task ends after `shutdown` is cancelled, once the pending rows were cut
/// and in-flight batches stored or the shutdown deadline passed.
///
/// Should the batcher itself panic (a bug), it is counted in `sluice_batch_panics_total`,
/// logged, and started again from what the log's files say: unconfirmed batches are sent again
/// under their tokens, so nothing is lost or stored twice, and the process stays up.
pub fn spawn<S: BatchSink>(
    config: BatcherConfig,
    wal: &Wal,
    recovery: &Recovery,
    sink: Arc<S>,
    breaker: Arc<Breaker>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (writer, tail, metrics, wal_id) = (
        wal.writer.clone(),
        wal.tail.clone(),
        wal.metrics.clone(),
        wal.id,
    );
    let mut replay = recovery.unconfirmed_batches.clone();
    let mut cursor = recovery.next_unbatched;
    tokio::spawn(async move {
        loop {
            let batcher = Batcher {
                config: config.clone(),
                writer: writer.clone(),
                tail: tail.clone(),
                metrics: metrics.clone(),
                wal_id,
                sink: sink.clone(),
                in_flight: BTreeMap::new(),
                breaker: breaker.clone(),
                permits: Arc::new(Semaphore::new(config.flush_concurrency)),
                hard_stop: CancellationToken::new(),
                #[cfg(test)]
                panic_at_cut: config.panic_at_cut,
            };
            let run = tokio::spawn(batcher.run(replay, cursor, shutdown.clone()));
            match run.await {
                Err(e) if e.is_panic() && !shutdown.is_cancelled() => {
                    metrics.batch_panics.inc();
                    tracing::error!(error = %e, "the batcher panicked (a bug in sluice: please report it with the log); starting it again from the write-ahead log");
                }
                _ => return,
            }
            // Whatever the dead batcher had in flight is unconfirmed in the log: read the plan
            // again from the files, once its last confirmations (appended without waiting) are
            // written, or their batches would be sent and counted again.
            if let Err(e) = writer.barrier().await {
                tracing::error!(error = %e, "the write-ahead log refused a barrier record");
            }
            let plan = loop {
                match Recovery::read_in_place(tail.dir()) {
                    Ok(plan) => break plan,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the write-ahead log failed; trying again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            replay = plan.unconfirmed_batches;
            cursor = plan.next_unbatched;
            tail.rewind();
        }
    })
}

struct Batcher<S> {
    config: BatcherConfig,
    writer: crate::wal::Writer,
    tail: Arc<crate::wal::Tail>,
    metrics: Arc<crate::wal::WalMetrics>,
    wal_id: u64,
    sink: Arc<S>,
    /// First sequence numbers of the batches cut and not yet stored, with when their first
    /// rows reached the batcher.
    in_flight: BTreeMap<u64, Instant>,
    breaker: Arc<Breaker>,
    permits: Arc<Semaphore>,
    /// Cancelled when the shutdown deadline passes: in-flight deliveries give up.
    hard_stop: CancellationToken,
    /// Fail point: panic at this many cuts.
    #[cfg(test)]
    panic_at_cut: Option<usize>,
}

#[derive(Default)]
struct Pending {
    /// Log rows in RowBinary: requests' buffers as they came, small ones joined.
    logs: Vec<Vec<u8>>,
    log_rows: usize,
    streams: Vec<StreamRow>,
    bytes: usize,
    records: u64,
    first_seq: Option<u64>,
    last_seq: u64,
    since: Option<Instant>,
}

impl Pending {
    /// The rows records read back from the log, pending together.
    fn of(records: Vec<(u64, Rows)>) -> Pending {
        let mut pending = Pending::default();
        for (seq, rows) in records {
            pending.add(seq, rows);
        }
        pending
    }

    /// The batch of these rows, one row per stream, sent under `token`.
    fn into_batch(self, token: String) -> Batch {
        let mut streams = self.streams;
        merge_stream_rows(&mut streams);
        Batch {
            logs: self.logs.into_iter().map(Bytes::from).collect(),
            log_rows: self.log_rows,
            streams,
            token,
        }
    }

    fn add(&mut self, seq: u64, rows: Rows) {
        self.since.get_or_insert_with(Instant::now);
        self.first_seq.get_or_insert(seq);
        self.last_seq = seq;
        self.records += 1;
        self.bytes += rows.bytes;
        self.log_rows += rows.log_rows;
        // A big request's buffer is kept as it is; small ones are copied together so that
        // ClickHouse gets a few big compressed blocks rather than many tiny ones.
        match self.logs.last_mut() {
            Some(last) if last.len() + rows.logs.len() <= CHUNK_BYTES => {
                last.extend_from_slice(&rows.logs)
            }
            _ if rows.logs.is_empty() => {}
            _ => self.logs.push(rows.logs),
        }
        self.streams.extend(rows.streams);
    }
}

/// What became of a batch.
enum Outcome {
    Stored,
    DeadLettered,
    /// The shutdown deadline passed first: it stays in the log.
    Abandoned,
    /// Its flush task panicked: it is dead-lettered from the log, the process goes on.
    Panicked,
}

/// Reports a flush task's outcome, or, if the task unwinds from a panic before it could, that.
struct Report {
    done: mpsc::UnboundedSender<(SeqRange, u64, Outcome)>,
    batch: Option<(SeqRange, u64)>,
}

impl Report {
    fn send(mut self, outcome: Outcome) {
        if let Some((range, records)) = self.batch.take() {
            let _ = self.done.send((range, records, outcome));
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some((range, records)) = self.batch.take() {
            let outcome = if std::thread::panicking() {
                Outcome::Panicked
            } else {
                Outcome::Abandoned
            };
            let _ = self.done.send((range, records, outcome));
        }
    }
}

impl<S: BatchSink> Batcher<S> {
    async fn run(mut self, replay: Vec<SeqRange>, mut cursor: u64, shutdown: CancellationToken) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(SeqRange, u64, Outcome)>();
        // From shutdown on, in-flight batches (and a cut waiting for a flusher) have
        // `shutdown_timeout`; then they give up and stay in the log.
        let timer = tokio::spawn({
            let (shutdown, stop) = (shutdown.clone(), self.hard_stop.clone());
            let timeout = self.config.shutdown_timeout;
            async move {
                shutdown.cancelled().await;
                tokio::time::sleep(timeout).await;
                stop.cancel();
            }
        });
        let mut flushes = JoinSet::new();
        for range in replay {
            match self.tail.read_range(&range) {
                Ok(records) => {
                    let pending = Pending::of(records);
                    tracing::info!(
                        first = range.start(),
                        last = range.end(),
                        rows = pending.log_rows,
                        "replaying an unconfirmed batch"
                    );
                    self.dispatch(range, pending, &done_tx, &mut flushes).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, first = range.start(), last = range.end(), "cannot read an unconfirmed batch back from the write-ahead log");
                }
            }
        }
        let mut pending = Pending::default();
        let tail = self.tail.clone();
        loop {
            let deadline = pending.since.map(|t| t + self.config.linger);
            // Rows below `seen` are pending, in flight or stored (the cursor may move on
            // while a read is cancelled, never back).
            let seen = cursor;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some((range, records, outcome)) = done_rx.recv() => {
                    self.finished(range, records, outcome, &pending, seen);
                }
                _ = sleep_until(deadline) => {
                    self.cut(&mut pending, &done_tx, &mut flushes).await;
                }
                next = tail.next(&mut cursor) => match next {
                    Ok(records) => {
                        for (seq, rows) in records {
                            pending.add(seq, rows);
                            if pending.log_rows >= self.config.max_rows
                                || pending.bytes >= self.config.max_bytes
                            {
                                self.cut(&mut pending, &done_tx, &mut flushes).await;
                            }
                        }
                    }
                    Err(e) => {
                        // Nothing is skipped: the cursor did not move; try again shortly.
                        tracing::error!(error = %e, cursor = seen, "reading the write-ahead log failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
            while flushes.try_join_next().is_some() {}
            self.publish_backlog_age(&pending);
        }
        // Shutdown: what is pending goes out as a last batch; everything in flight gets until
        // the deadline (see the timer above), then gives up and stays in the log.
        self.cut(&mut pending, &done_tx, &mut flushes).await;
        drop(done_tx);
        while let Some((range, records, outcome)) = done_rx.recv().await {
            self.finished(range, records, outcome, &pending, cursor);
        }
        timer.abort();
        if !self.in_flight.is_empty() {
            tracing::warn!(
                batches = self.in_flight.len(),
                "shutdown deadline passed: unstored batches stay in the write-ahead log"
            );
        }
        while flushes.join_next().await.is_some() {}
    }

    /// Records the outcome of a delivery and deletes the segments nothing needs any more.
    fn finished(
        &mut self,
        range: SeqRange,
        records: u64,
        outcome: Outcome,
        pending: &Pending,
        cursor: u64,
    ) {
        self.in_flight.remove(range.start());
        match outcome {
            Outcome::Panicked => {
                self.metrics.batch_panics.inc();
                let reason = "the task writing this batch panicked (a bug in sluice: please report it with the log)";
                match self.tail.read_range(&range) {
                    Ok(records) => {
                        let batch = Pending::of(records).into_batch(self.token(&range));
                        dead_letter(
                            &self.config.dead_letter_dir,
                            &batch,
                            "a batch's flush task panicked",
                            reason,
                            &self.metrics,
                        );
                    }
                    Err(e) => {
                        self.metrics.dead_lettered_batches.inc();
                        tracing::error!(error = %e, %reason, "reading a batch back from the write-ahead log for the dead-letter directory failed");
                    }
                }
                self.confirm(&range, records);
            }
            Outcome::Stored | Outcome::DeadLettered => self.confirm(&range, records),
            Outcome::Abandoned => return,
        }
        let watermark = [
            self.in_flight.keys().next().copied(),
            pending.first_seq,
            Some(cursor),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(cursor);
        match self.writer.delete_below(watermark) {
            Ok(n) => self.metrics.segments_deleted.add(n as u64),
            Err(e) => {
                tracing::warn!(error = %e, "deleting confirmed write-ahead log segments failed")
            }
        }
    }

    /// Records that `range` needs no sending again.
    fn confirm(&self, range: &SeqRange, records: u64) {
        self.writer
            .append_detached(Kind::Committed, encode_range(range));
        self.metrics.confirmed_records.add(records);
    }

    /// Cuts the pending rows into a batch: its range goes into the log, then to a flusher.
    async fn cut(
        &mut self,
        pending: &mut Pending,
        done: &mpsc::UnboundedSender<(SeqRange, u64, Outcome)>,
        flushes: &mut JoinSet<()>,
    ) {
        let Some(first) = pending.first_seq else {
            return;
        };
        #[cfg(test)]
        if let Some(n) = self.panic_at_cut.as_mut() {
            if *n == 0 {
                panic!("fail point: the batcher panics");
            }
            *n -= 1;
        }
        let pending = std::mem::take(pending);
        let range = first..=pending.last_seq;
        // The range must be durable before the insert is sent: a crash after the insert and
        // before the record would cut the rows again differently, under another token.
        if let Err(e) = self.writer.append(Kind::Batch, encode_range(&range)).await {
            tracing::error!(error = %e, "could not record a batch in the write-ahead log; sending it anyway");
        }
        self.dispatch(range, pending, done, flushes).await;
    }

    async fn dispatch(
        &mut self,
        range: SeqRange,
        pending: Pending,
        done: &mpsc::UnboundedSender<(SeqRange, u64, Outcome)>,
        flushes: &mut JoinSet<()>,
    ) {
        let (records, since) = (pending.records, pending.since);
        let batch = pending.into_batch(self.token(&range));
        self.in_flight
            .insert(*range.start(), since.unwrap_or_else(Instant::now));
        // Waiting for a permit is the back-pressure: the tail backs up meanwhile.
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            // Shutting down and out of time: the batch's range is in the log, it is sent at
            // the next start.
            _ = self.hard_stop.cancelled() => return,
        };
        let sink = self.sink.clone();
        let stop = self.hard_stop.clone();
        let dead_letter_dir = self.config.dead_letter_dir.clone();
        let metrics = self.metrics.clone();
        let breaker = self.breaker.clone();
        let report = Report {
            done: done.clone(),
            batch: Some((range, records)),
        };
        flushes.spawn(async move {
            let outcome =
                deliver(&*sink, &batch, &breaker, &stop, &dead_letter_dir, &metrics).await;
            drop(permit);
            report.send(outcome);
        });
    }

    fn token(&self, range: &SeqRange) -> String {
        crate::wal::token(self.wal_id, range)
    }

    /// When the oldest rows not yet confirmed reached the batcher, for the backlog age gauge.
    fn publish_backlog_age(&self, pending: &Pending) {
        let oldest = self.in_flight.values().chain(&pending.since).min();
        let unix_ms = oldest.map_or(0, |t| {
            let age = t.elapsed();
            std::time::SystemTime::now()
                .checked_sub(age)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64)
        });
        self.metrics
            .oldest_unconfirmed_unix_ms
            .store(unix_ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sends `batch` until it is stored, refused for good (then dead-lettered) or `stop` fires.
async fn deliver<S: BatchSink>(
    sink: &S,
    batch: &Batch,
    breaker: &Breaker,
    stop: &CancellationToken,
    dead_letter_dir: &std::path::Path,
    metrics: &crate::wal::WalMetrics,
) -> Outcome {
    let mut failures = 0u32;
    loop {
        if !breaker.admit(stop).await {
            return Outcome::Abandoned;
        }
        let result = tokio::select! {
            r = sink.write(batch) => r,
            _ = stop.cancelled() => return Outcome::Abandoned,
        };
        match &result {
            Err(SinkError::Retryable(_)) => breaker.failure(),
            // ClickHouse answered, even if to refuse this batch.
            Ok(()) | Err(SinkError::Permanent(_)) => breaker.success(),
        }
        match result {
            Ok(()) => return Outcome::Stored,
            Err(SinkError::Permanent(reason)) => {
                dead_letter(
                    dead_letter_dir,
                    batch,
                    "ClickHouse refused a batch for good",
                    &reason,
                    metrics,
                );
                return Outcome::DeadLettered;
            }
            Err(SinkError::Retryable(e)) => {
                failures += 1;
                let delay = crate::sink::clickhouse::backoff(failures);
                tracing::warn!(error = %e, failures, ?delay, token = %batch.token, "batch not stored yet; it stays in the write-ahead log and is retried");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Outcome::Abandoned,
                }
            }
        }
    }
}

/// Writes `batch` to the dead-letter directory with `reason`, logs why (`what`) and where, and
/// counts it.
fn dead_letter(
    dir: &std::path::Path,
    batch: &Batch,
    what: &str,
    reason: &str,
    metrics: &crate::wal::WalMetrics,
) {
    match write_dead_letter(dir, batch, reason) {
        Ok(path) => tracing::error!(
            rows = batch.log_rows,
            %reason,
            file = %path.display(),
            "{what}: written to the dead-letter directory"
        ),
        Err(e) => tracing::error!(
            rows = batch.log_rows,
            %reason,
            error = %e,
            "{what}, and writing it to the dead-letter directory failed"
        ),
    }
    metrics.dead_lettered_batches.inc();
}

/// Writes a refused batch as `<token>.ndjson` (one row per line, the `logs` table's columns)
/// and `<token>.reason`. Rows that cannot be decoded (a bug) are kept as they would have been
/// sent, in `<token>.rowbinary`.
fn write_dead_letter(
    dir: &std::path::Path,
    batch: &Batch,
    reason: &str,
) -> std::io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let (path, reason) = match batch.decode_logs() {
        Ok(rows) => {
            let path = dir.join(format!("{}.ndjson", batch.token));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            for row in &rows {
                serde_json::to_writer(&mut out, row).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            (path, reason.to_string())
        }
        Err(e) => {
            let path = dir.join(format!("{}.rowbinary", batch.token));
            let mut out = std::fs::File::create(&path)?;
            for chunk in &batch.logs {
                out.write_all(chunk)?;
            }
            out.sync_all()?;
            (
                path,
                format!("{reason}\nthe rows could not be decoded ({e}): kept as RowBinary"),
            )
        }
    };
    std::fs::write(
        dir.join(format!("{}.reason", batch.token)),
        format!("{reason}\n"),
    )?;
    Ok(path)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::config::{FsyncPolicy, WalConfig};
    use crate::wal::record::tests::sample_logs;

    /// Records every batch it is given; fails the first `fail_first` attempts, with `permanent`
    /// errors if set.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<(String, Vec<String>)>>,
        attempts: AtomicUsize,
        fail_first: usize,
        permanent: bool,
        stuck: bool,
        panic_on: Option<&'static str>,
    }

    impl Recorder {
        /// Every line of every batch stored, in order.
        fn rows(&self) -> Vec<String> {
            self.batches
                .lock()
                .unwrap()
                .iter()
                .flat_map(|b| b.1.clone())
                .collect()
        }
    }

    impl BatchSink for Recorder {
        async fn write(&self, batch: &Batch) -> Result<(), SinkError> {
            if self.stuck {
                std::future::pending::<()>().await;
            }
            let logs = batch.decode_logs().expect("rows decode");
            assert_eq!(logs.len(), batch.log_rows);
            if let Some(line) = self.panic_on
                && logs.iter().any(|r| r.body == line)
            {
                panic!("injected panic on {line:?}");
            }
            let n = self.attempts.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                return Err(if self.permanent {
                    SinkError::Permanent("Code: 53. DB::Exception: Type mismatch".into())
                } else {
                    SinkError::Retryable("connection refused".into())
                });
            }
            let bodies = logs.into_iter().map(|r| r.body).collect();
            self.batches
                .lock()
                .unwrap()
                .push((batch.token.clone(), bodies));
            Ok(())
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sluice-batcher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn open(dir: &std::path::Path) -> (Wal, Recovery) {
        let cfg = WalConfig {
            fsync: FsyncPolicy::Off,
            segment_bytes: 1500,
            ..WalConfig::default()
        };
        Wal::open(&dir.join("wal"), &cfg).unwrap()
    }

    fn config(dir: &std::path::Path, max_rows: usize, linger_ms: u64) -> BatcherConfig {
        BatcherConfig {
            max_rows,
            max_bytes: usize::MAX,
            linger: Duration::from_millis(linger_ms),
            flush_concurrency: 2,
            shutdown_timeout: Duration::from_millis(300),
            dead_letter_dir: dir.join("dead-letter"),
            panic_at_cut: None,
        }
    }

    /// A batcher with a 10 ms linger that runs until the test ends.
    fn start(
        dir: &std::path::Path,
        max_rows: usize,
        wal: &Wal,
        recovery: &Recovery,
        sink: &Arc<Recorder>,
    ) -> tokio::task::JoinHandle<()> {
        spawn(
            config(dir, max_rows, 10),
            wal,
            recovery,
            sink.clone(),
            Arc::default(),
            CancellationToken::new(),
        )
    }

    async fn push(wal: &Wal, body: &str) {
        let (mut logs, streams) = sample_logs();
        logs.truncate(1);
        logs[0].body = body.into();
        wal.appender()
            .append(Rows::from_log_rows(&logs, streams))
            .await
            .unwrap();
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn batches_are_cut_by_rows_and_linger_and_confirmed() {
        let dir = temp_dir("cut");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder::default());
        let stop = CancellationToken::new();
        let task = spawn(
            config(&dir, 3, 50),
            &wal,
            &recovery,
            sink.clone(),
            Arc::default(),
            stop.clone(),
        );
        for i in 0..30 {
            push(&wal, &format!("l{i:02}")).await;
        }
        wait_for("30 rows stored", || {
            sink.batches
                .lock()
                .unwrap()
                .iter()
                .map(|b| b.1.len())
                .sum::<usize>()
                == 30
        })
        .await;
        let batches = sink.batches.lock().unwrap().clone();
        let all: Vec<String> = batches.iter().flat_map(|b| b.1.clone()).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..30).map(|i| format!("l{i:02}")).collect::<Vec<_>>()
        );
        assert!(batches.iter().all(|b| b.1.len() <= 3), "{batches:?}");
        let prefix = format!("sluice-{:016x}-", wal.id);
        assert!(
            batches.iter().all(|b| b.0.starts_with(&prefix)),
            "{batches:?}"
        );
        wait_for("every request confirmed", || {
            wal.status().backlog_records() == 0
        })
        .await;
        stop.cancel();
        task.await.unwrap();
        // Confirmed segments were deleted along the way; a restart replays nothing.
        assert!(wal.metrics.segments_deleted.get() > 0);
        wal.close();
        let (_, recovery) = open(&dir);
        assert_eq!(recovery.replay_records, 0, "{recovery:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_until_stored() {
        let dir = temp_dir("retry");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder {
            fail_first: 2,
            ..Recorder::default()
        });
        let _task = start(&dir, 100, &wal, &recovery, &sink);
        // Acknowledged at once, whatever the sink is doing.
        push(&wal, "kept").await;
        wait_for("stored after two failures", || {
            !sink.batches.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(sink.attempts.load(Ordering::SeqCst), 3);
        assert_eq!(sink.batches.lock().unwrap()[0].1, vec!["kept"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Rows that cannot be decoded (a bug) are still kept: as the RowBinary that was to be
    /// sent, with the decoding error in the reason.
    #[test]
    fn undecodable_rows_are_dead_lettered_as_rowbinary() {
        let dir = temp_dir("dead-raw");
        let (logs, _) = sample_logs();
        let good = Rows::from_log_rows(&logs, Vec::new()).logs;
        let cut = good[..good.len() - 3].to_vec();
        let batch = Batch {
            logs: vec![Bytes::from(good.clone()), Bytes::from(cut)],
            log_rows: logs.len() * 2,
            streams: Vec::new(),
            token: "sluice-raw".into(),
        };
        let path = write_dead_letter(&dir, &batch, "refused").unwrap();
        assert_eq!(path.extension().unwrap(), "rowbinary");
        let kept = std::fs::read(&path).unwrap();
        assert_eq!(&kept[..good.len()], &good[..]);
        assert_eq!(kept.len(), good.len() * 2 - 3);
        let reason = std::fs::read_to_string(dir.join("sluice-raw.reason")).unwrap();
        assert!(reason.starts_with("refused\n"), "{reason}");
        assert!(reason.contains("could not be decoded"), "{reason}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_permanently_refused_batch_is_dead_lettered_with_its_reason() {
        let dir = temp_dir("dead");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder {
            fail_first: 1,
            permanent: true,
            ..Recorder::default()
        });
        let _task = start(&dir, 100, &wal, &recovery, &sink);
        push(&wal, "refused line").await;
        wait_for("dead letter", || {
            wal.metrics.dead_lettered_batches.get() == 1
        })
        .await;
        wait_for("confirmed", || wal.status().backlog_records() == 0).await;
        let files: Vec<PathBuf> = std::fs::read_dir(dir.join("dead-letter"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let rows = files
            .iter()
            .find(|p| p.extension().unwrap() == "ndjson")
            .unwrap();
        let text = std::fs::read_to_string(rows).unwrap();
        let row: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(row["Body"], "refused line");
        let reason = std::fs::read_to_string(rows.with_extension("reason")).unwrap();
        assert!(reason.contains("Type mismatch"), "{reason}");
        assert!(sink.batches.lock().unwrap().is_empty(), "not retried");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unstored_batch_survives_shutdown_and_is_sent_again_under_the_same_token() {
        let dir = temp_dir("replay");
        let (wal, recovery) = open(&dir);
        let stuck = Arc::new(Recorder {
            stuck: true,
            ..Recorder::default()
        });
        let stop = CancellationToken::new();
        let task = spawn(
            config(&dir, 2, 10),
            &wal,
            &recovery,
            stuck,
            Arc::default(),
            stop.clone(),
        );
        for i in 0..5 {
            push(&wal, &format!("l{i}")).await;
        }
        // Two batches of two are in flight, the fifth row is pending.
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(wal.status().backlog_records(), 5);
        wal.close();

        let (wal, recovery) = open(&dir);
        assert_eq!(recovery.replay_records, 5);
        assert_eq!(recovery.unconfirmed_batches.len(), 3, "{recovery:?}");
        let tokens: Vec<String> = recovery
            .unconfirmed_batches
            .iter()
            .map(|r| wal.token(r))
            .collect();
        let sink = Arc::new(Recorder::default());
        let _task = start(&dir, 2, &wal, &recovery, &sink);
        wait_for("replayed", || sink.batches.lock().unwrap().len() == 3).await;
        let mut sent: Vec<String> = sink
            .batches
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.0.clone())
            .collect();
        sent.sort();
        let mut expected = tokens;
        expected.sort();
        assert_eq!(sent, expected, "the same batches under the same tokens");
        let mut rows = sink.rows();
        rows.sort();
        assert_eq!(rows, vec!["l0", "l1", "l2", "l3", "l4"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_exact_repeat_of_a_request_is_stored_once() {
        let dir = temp_dir("repeat");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder::default());
        let _task = start(&dir, 100, &wal, &recovery, &sink);
        for _ in 0..3 {
            push(&wal, "same").await;
        }
        push(&wal, "other").await;
        wait_for("stored", || wal.status().backlog_records() == 0).await;
        let rows = sink.rows();
        assert_eq!(rows, vec!["same", "other"]);
        assert_eq!(wal.metrics.duplicate_requests.get(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_panicking_flush_is_dead_lettered_and_the_batcher_goes_on() {
        let dir = temp_dir("panic");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder {
            panic_on: Some("boom"),
            ..Recorder::default()
        });
        let _task = start(&dir, 1, &wal, &recovery, &sink);
        push(&wal, "boom").await;
        wait_for("the panic counted", || wal.metrics.batch_panics.get() == 1).await;
        push(&wal, "after").await;
        wait_for("confirmed", || wal.status().backlog_records() == 0).await;
        let rows = sink.rows();
        assert_eq!(rows, vec!["after"]);
        let dead: Vec<PathBuf> = std::fs::read_dir(dir.join("dead-letter"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().unwrap() == "ndjson")
            .collect();
        assert_eq!(dead.len(), 1);
        assert!(
            std::fs::read_to_string(&dead[0])
                .unwrap()
                .contains("\"boom\"")
        );
        let reason = std::fs::read_to_string(dead[0].with_extension("reason")).unwrap();
        assert!(reason.contains("panicked"), "{reason}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_panicking_batcher_restarts_from_the_log_and_loses_nothing() {
        let dir = temp_dir("batcher-panic");
        let (wal, recovery) = open(&dir);
        let sink = Arc::new(Recorder::default());
        let cfg = BatcherConfig {
            panic_at_cut: Some(2),
            ..config(&dir, 2, 10)
        };
        let stop = CancellationToken::new();
        let task = spawn(
            cfg,
            &wal,
            &recovery,
            sink.clone(),
            Arc::default(),
            stop.clone(),
        );
        for i in 0..10 {
            push(&wal, &format!("l{i}")).await;
        }
        wait_for("the panic counted", || wal.metrics.batch_panics.get() >= 1).await;
        wait_for("everything confirmed", || {
            wal.status().backlog_records() == 0
        })
        .await;
        let mut rows = sink.rows();
        rows.sort();
        rows.dedup();
        assert_eq!(rows, (0..10).map(|i| format!("l{i}")).collect::<Vec<_>>());
        stop.cancel();
        task.await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
