//! The batcher: gathers the rows of many requests into batches and hands them to the sink.
//!
//! A batch is flushed when it reaches `batch_max_rows` or `batch_max_bytes`, or when its first
//! rows have waited `batch_linger_ms`. Up to `flush_concurrency` batches are written at once; each
//! request is acknowledged (its `submit` returns) when the batch holding its rows is committed.
//! On shutdown the queue is drained and everything pending is flushed before the task ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Rows, merge_stream_rows};
use crate::sink::{Batch, BatchSink, SinkError};
use crate::{Error, Result};

/// Batching settings.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    /// Flush at this many rows.
    pub max_rows: usize,
    /// Flush at this many bytes.
    pub max_bytes: usize,
    /// Flush when the oldest pending rows have waited this long.
    pub linger: Duration,
    /// Requests queued before `submit` refuses with [`Error::Overloaded`].
    pub queue_capacity: usize,
    /// Batches written at the same time.
    pub flush_concurrency: usize,
}

impl From<&crate::IngestConfig> for BatcherConfig {
    fn from(c: &crate::IngestConfig) -> Self {
        BatcherConfig {
            max_rows: c.batch_max_rows,
            max_bytes: c.batch_max_bytes,
            linger: Duration::from_millis(c.batch_linger_ms),
            queue_capacity: c.queue_capacity,
            flush_concurrency: c.flush_concurrency,
        }
    }
}

struct Submission {
    rows: Rows,
    ack: oneshot::Sender<Result<(), SinkError>>,
}

/// Handle for submitting rows; cheap to clone.
#[derive(Clone)]
pub struct BatcherHandle {
    tx: mpsc::Sender<Submission>,
}

impl BatcherHandle {
    /// Queues `rows` and waits until they are committed.
    pub async fn submit(&self, rows: Rows) -> Result<()> {
        if rows.logs.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .try_send(Submission { rows, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::Overloaded,
                mpsc::error::TrySendError::Closed(_) => Error::ShuttingDown,
            })?;
        match done.await {
            Ok(result) => result.map_err(Error::Sink),
            // The batcher dropped the ack without answering: it is gone.
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}

/// Starts the batcher task. It ends after `shutdown` is cancelled and everything queued before
/// has been flushed.
pub fn spawn<S: BatchSink>(
    config: BatcherConfig,
    sink: Arc<S>,
    shutdown: CancellationToken,
) -> (BatcherHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue_capacity);
    let task = tokio::spawn(run(config, sink, rx, shutdown));
    (BatcherHandle { tx }, task)
}

#[derive(Default)]
struct Pending {
    batch: Batch,
    bytes: usize,
    acks: Vec<oneshot::Sender<Result<(), SinkError>>>,
    since: Option<Instant>,
}

impl Pending {
    fn add(&mut self, s: Submission) {
        self.since.get_or_insert_with(Instant::now);
        self.bytes += s.rows.bytes;
        self.batch.logs.extend(s.rows.logs);
        self.batch.streams.extend(s.rows.streams);
        self.acks.push(s.ack);
    }
}

async fn run<S: BatchSink>(
    config: BatcherConfig,
    sink: Arc<S>,
    mut rx: mpsc::Receiver<Submission>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(config.flush_concurrency));
    let mut flushes = JoinSet::new();
    let mut pending = Pending::default();
    loop {
        let deadline = pending.since.map(|t| t + config.linger);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(s) => {
                    pending.add(s);
                    if pending.batch.logs.len() >= config.max_rows || pending.bytes >= config.max_bytes {
                        flush(&mut pending, &sink, &permits, &mut flushes).await;
                    }
                }
                None => break,
            },
            _ = sleep_until(deadline) => flush(&mut pending, &sink, &permits, &mut flushes).await,
            _ = shutdown.cancelled() => {
                // Take what was queued before the shutdown, refuse what comes after.
                rx.close();
                while let Some(s) = rx.recv().await {
                    pending.add(s);
                }
                break;
            }
        }
        // Reap finished flushes so the set does not grow.
        while flushes.try_join_next().is_some() {}
    }
    flush(&mut pending, &sink, &permits, &mut flushes).await;
    while flushes.join_next().await.is_some() {}
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn flush<S: BatchSink>(
    pending: &mut Pending,
    sink: &Arc<S>,
    permits: &Arc<Semaphore>,
    flushes: &mut JoinSet<()>,
) {
    if pending.acks.is_empty() {
        return;
    }
    let Pending {
        mut batch, acks, ..
    } = std::mem::take(pending);
    merge_stream_rows(&mut batch.streams);
    // Waiting for a permit here is the back-pressure: while every writer is busy the queue fills
    // and `submit` starts refusing.
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .expect("semaphore never closed");
    let sink = sink.clone();
    flushes.spawn(async move {
        let result = sink.write(&batch).await;
        drop(permit);
        for ack in acks {
            // A client that went away does not care.
            let _ = ack.send(result.clone());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use store::{LogRow, StreamRow};

    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<(usize, usize)>>,
        fail: bool,
    }

    impl BatchSink for Recorder {
        async fn write(&self, batch: &Batch) -> Result<(), SinkError> {
            self.batches
                .lock()
                .unwrap()
                .push((batch.logs.len(), batch.streams.len()));
            if self.fail {
                Err(SinkError::Permanent("nope".into()))
            } else {
                Ok(())
            }
        }
    }

    fn rows(n: usize, stream: u64) -> Rows {
        Rows {
            logs: (0..n)
                .map(|i| LogRow {
                    stream_id: stream,
                    timestamp: i as i64,
                    ..LogRow::default()
                })
                .collect(),
            streams: vec![StreamRow {
                stream_id: stream,
                first_seen: 0,
                last_seen: n as i64,
                ..StreamRow::default()
            }],
            bytes: n * 10,
        }
    }

    fn config(max_rows: usize, linger_ms: u64) -> BatcherConfig {
        BatcherConfig {
            max_rows,
            max_bytes: usize::MAX,
            linger: Duration::from_millis(linger_ms),
            queue_capacity: 16,
            flush_concurrency: 2,
        }
    }

    #[tokio::test]
    async fn flushes_on_rows_and_merges_streams() {
        let sink = Arc::new(Recorder::default());
        let (h, task) = spawn(config(10, 60_000), sink.clone(), CancellationToken::new());
        let (a, b) = tokio::join!(h.submit(rows(5, 1)), h.submit(rows(5, 1)));
        a.unwrap();
        b.unwrap();
        assert_eq!(*sink.batches.lock().unwrap(), vec![(10, 1)]);
        drop(h);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn flushes_on_linger() {
        let sink = Arc::new(Recorder::default());
        let (h, _task) = spawn(config(1_000, 20), sink.clone(), CancellationToken::new());
        h.submit(rows(3, 1)).await.unwrap();
        assert_eq!(*sink.batches.lock().unwrap(), vec![(3, 1)]);
    }

    #[tokio::test]
    async fn failure_reaches_every_request_of_the_batch() {
        let sink = Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        });
        let (h, _task) = spawn(config(4, 60_000), sink, CancellationToken::new());
        let (a, b) = tokio::join!(h.submit(rows(2, 1)), h.submit(rows(2, 2)));
        assert!(matches!(a, Err(Error::Sink(_))));
        assert!(matches!(b, Err(Error::Sink(_))));
    }

    #[tokio::test]
    async fn shutdown_flushes_pending_then_refuses() {
        let sink = Arc::new(Recorder::default());
        let token = CancellationToken::new();
        let (h, task) = spawn(config(1_000, 60_000), sink.clone(), token.clone());
        let pending = tokio::spawn({
            let h = h.clone();
            async move { h.submit(rows(7, 1)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        token.cancel();
        pending.await.unwrap().unwrap();
        task.await.unwrap();
        assert_eq!(*sink.batches.lock().unwrap(), vec![(7, 1)]);
        assert!(matches!(
            h.submit(rows(1, 1)).await,
            Err(Error::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn full_queue_is_refused() {
        // A sink that never finishes keeps the single permit; the queue then fills.
        struct Stuck;
        impl BatchSink for Stuck {
            async fn write(&self, _: &Batch) -> Result<(), SinkError> {
                std::future::pending().await
            }
        }
        let cfg = BatcherConfig {
            queue_capacity: 1,
            flush_concurrency: 1,
            ..config(1, 60_000)
        };
        let (h, _task) = spawn(cfg, Arc::new(Stuck), CancellationToken::new());
        let mut waiting = Vec::new();
        let mut refused = false;
        for _ in 0..10 {
            let h2 = h.clone();
            waiting.push(tokio::spawn(async move { h2.submit(rows(1, 1)).await }));
            tokio::time::sleep(Duration::from_millis(5)).await;
            if waiting.iter().any(|w| w.is_finished()) {
                refused = true;
                break;
            }
        }
        assert!(refused, "a full queue must refuse");
        let done = waiting.into_iter().find(|w| w.is_finished()).unwrap();
        assert!(matches!(done.await.unwrap(), Err(Error::Overloaded)));
    }
}
