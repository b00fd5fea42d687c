//! The WAL writer: one thread appends records to the active segment and fsyncs them in groups.
//!
//! Appends queue on a channel. The thread takes everything queued, writes it with one `write`,
//! fsyncs once (per [`FsyncPolicy`]) and answers every append of the group: requests that arrive
//! while an fsync runs share the next one, so the fsync rate does not cap the request rate.
//! A dedicated thread, not a tokio task, because `fsync` blocks for milliseconds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::WalMetrics;
use super::segment::{self, Kind};
use super::tail::Tail;
use crate::config::{FsyncPolicy, WalConfig};
use crate::pipeline::Rows;

/// Why an append was not made durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The log is at `ingest.wal.max_bytes`; retry once ClickHouse has taken the backlog.
    #[error("write-ahead log is full ({bytes} of {limit} bytes, ingest.wal.max_bytes)")]
    Full {
        /// Bytes on disk.
        bytes: u64,
        /// The budget.
        limit: u64,
    },
    /// Writing or fsyncing failed; the log takes no more appends until restarted.
    #[error("write-ahead log failed: {0}")]
    Failed(String),
    /// The writer has stopped (shutdown).
    #[error("write-ahead log is closed")]
    Closed,
}

enum Op {
    Append(Append),
    /// Fsync and stop, whatever handles remain.
    Close,
}

struct Append {
    kind: Kind,
    payload: Vec<u8>,
    /// The rows of a `Rows` record, for the tail once durable.
    rows: Option<Rows>,
    done: oneshot::Sender<Result<u64, AppendError>>,
}

/// State shared by the writer thread and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    /// First sequence number → bytes, of every segment on disk; the last is the active one.
    pub(crate) segments: Mutex<BTreeMap<u64, u64>>,
    /// Bytes of every segment on disk.
    pub(crate) disk_bytes: AtomicU64,
    /// Set when a write or fsync failed.
    pub(crate) failed: Mutex<Option<String>>,
    /// Set when an append was refused for the disk budget, cleared when segments are deleted.
    pub(crate) full: std::sync::atomic::AtomicBool,
}

/// Appends records; cheap to clone. The writer thread stops when every handle is dropped,
/// after a last fsync.
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Op>,
    shared: Arc<Shared>,
    max_bytes: u64,
}

impl Writer {
    /// Starts the writer thread on `dir`, whose next record gets `next_seq`. Existing segments
    /// (listed in `segments` with their sizes) are never appended to: a new one is started.
    pub(crate) fn start(
        dir: &Path,
        config: &WalConfig,
        next_seq: u64,
        segments: BTreeMap<u64, u64>,
        metrics: Arc<WalMetrics>,
        tail: Arc<Tail>,
    ) -> io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let disk_bytes = segments.values().sum();
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segments: Mutex::new(segments),
            disk_bytes: AtomicU64::new(disk_bytes),
            failed: Mutex::new(None),
            full: Default::default(),
        });
        let active = Active::create(&shared, next_seq)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = Thread {
            rx,
            shared: shared.clone(),
            active,
            next_seq,
            policy: config.fsync,
            interval: Duration::from_millis(config.fsync_interval_ms),
            segment_bytes: config.segment_bytes,
            unsynced_since: None,
            metrics,
            tail,
        };
        let handle = std::thread::Builder::new()
            .name("sluice-wal".into())
            .spawn(move || thread.run())?;
        Ok((
            Writer {
                tx,
                shared,
                max_bytes: config.max_bytes,
            },
            handle,
        ))
    }

    /// Appends a request's rows (`payload` is their [`super::record`] encoding) and returns the
    /// record's sequence number once it is as durable as the fsync policy makes it; the rows
    /// then go to the tail.
    pub async fn append_rows(&self, payload: Vec<u8>, rows: Rows) -> Result<u64, AppendError> {
        self.append_inner(Kind::Rows, payload, Some(rows)).await
    }

    /// Appends a control record (`Batch`, `Committed`) and waits as [`Writer::append_rows`].
    pub async fn append(&self, kind: Kind, payload: Vec<u8>) -> Result<u64, AppendError> {
        self.append_inner(kind, payload, None).await
    }

    async fn append_inner(
        &self,
        kind: Kind,
        payload: Vec<u8>,
        rows: Option<Rows>,
    ) -> Result<u64, AppendError> {
        if let Some(e) = self.shared.failed.lock().expect("not poisoned").as_ref() {
            return Err(AppendError::Failed(e.clone()));
        }
        // Control records (batches, confirmations) must always get in: they are what frees space.
        let bytes = self.shared.disk_bytes.load(Ordering::Relaxed);
        if kind == Kind::Rows
            && bytes + (segment::HEADER_BYTES + payload.len()) as u64 > self.max_bytes
        {
            self.shared.full.store(true, Ordering::Relaxed);
            return Err(AppendError::Full {
                bytes,
                limit: self.max_bytes,
            });
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Op::Append(Append {
                kind,
                payload,
                rows,
                done,
            }))
            .map_err(|_| AppendError::Closed)?;
        wait.await.unwrap_or(Err(AppendError::Closed))
    }

    /// Appends without waiting; for records whose loss a restart repairs (confirmations).
    pub fn append_detached(&self, kind: Kind, payload: Vec<u8>) {
        let (done, _) = oneshot::channel();
        let _ = self.tx.send(Op::Append(Append {
            kind,
            payload,
            rows: None,
            done,
        }));
    }

    /// Waits until every record sent before this call is written, detached ones included: it
    /// appends a `Committed` record of no range, which readers skip.
    pub async fn barrier(&self) -> Result<(), AppendError> {
        #[allow(clippy::reversed_empty_ranges)]
        let nothing = super::encode_range(&(1..=0));
        self.append(Kind::Committed, nothing).await.map(drop)
    }

    /// Asks the thread to fsync and stop; later appends fail with [`AppendError::Closed`].
    pub(crate) fn close(&self) {
        let _ = self.tx.send(Op::Close);
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Bytes of the log on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.disk_bytes.load(Ordering::Relaxed)
    }

    /// Deletes every segment whose records all have sequence numbers below `seq`; never the
    /// active segment. Returns the number deleted.
    pub fn delete_below(&self, seq: u64) -> io::Result<usize> {
        let mut segments = self.shared.segments.lock().expect("not poisoned");
        let firsts: Vec<u64> = segments.keys().copied().collect();
        let mut deleted = 0;
        // A segment ends where the next begins.
        for pair in firsts.windows(2) {
            let (first, next) = (pair[0], pair[1]);
            if next > seq {
                break;
            }
            std::fs::remove_file(self.shared.dir.join(segment::file_name(first)))?;
            if let Some(bytes) = segments.remove(&first) {
                self.shared.disk_bytes.fetch_sub(bytes, Ordering::Relaxed);
            }
            deleted += 1;
        }
        if deleted > 0 {
            self.shared.full.store(false, Ordering::Relaxed);
        }
        Ok(deleted)
    }
}

struct Active {
    file: File,
    first_seq: u64,
    bytes: u64,
}

impl Active {
    /// Creates the segment file for `first_seq` and makes its name durable.
    fn create(shared: &Shared, first_seq: u64) -> io::Result<Active> {
        let path = shared.dir.join(segment::file_name(first_seq));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(segment::MAGIC)?;
        file.sync_all()?;
        // The directory entry too: otherwise a crash can lose the whole file.
        File::open(&shared.dir)?.sync_all()?;
        let bytes = segment::MAGIC.len() as u64;
        shared
            .segments
            .lock()
            .expect("not poisoned")
            .insert(first_seq, bytes);
        shared.disk_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(Active {
            file,
            first_seq,
            bytes,
        })
    }
}

struct Thread {
    rx: Receiver<Op>,
    shared: Arc<Shared>,
    active: Active,
    next_seq: u64,
    policy: FsyncPolicy,
    interval: Duration,
    segment_bytes: u64,
    /// With the interval policy: when the oldest write not yet fsynced was made.
    unsynced_since: Option<Instant>,
    metrics: Arc<WalMetrics>,
    tail: Arc<Tail>,
}

/// Writes every byte of `slices`, as `write_all` does for one buffer.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Most bytes written in one group, so one huge burst does not delay every answer in it.
const MAX_GROUP_BYTES: usize = 16 << 20;

impl Thread {
    fn run(mut self) {
        loop {
            let first = match self.unsynced_since {
                Some(since) => {
                    let wait = self.interval.saturating_sub(since.elapsed());
                    match self.rx.recv_timeout(wait) {
                        Ok(op) => op,
                        Err(RecvTimeoutError::Timeout) => {
                            self.sync_if_due();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match self.rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            let Op::Append(first) = first else { break };
            let mut group = vec![first];
            let mut bytes = group[0].payload.len();
            let mut closing = false;
            while bytes < MAX_GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(Op::Append(a)) => {
                        bytes += a.payload.len();
                        group.push(a);
                    }
                    Ok(Op::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.write_group(group);
            if closing {
                break;
            }
        }
        // Closing: make what was written durable whatever the policy.
        if self.failed().is_none()
            && let Err(e) = self.active.file.sync_data()
        {
            tracing::error!(error = %e, "final fsync of the write-ahead log failed");
        }
    }

    fn failed(&self) -> Option<String> {
        self.shared.failed.lock().expect("not poisoned").clone()
    }

    fn fail(&self, e: &io::Error) -> String {
        let msg = format!("{e} (in {})", self.shared.dir.display());
        tracing::error!(error = %msg, "write-ahead log failed: no more appends until restart");
        *self.shared.failed.lock().expect("not poisoned") = Some(msg.clone());
        msg
    }

    fn write_group(&mut self, group: Vec<Append>) {
        if let Some(e) = self.failed() {
            for a in group {
                let _ = a.done.send(Err(AppendError::Failed(e.clone())));
            }
            return;
        }
        if self.active.bytes >= self.segment_bytes
            && let Err(e) = self.rotate()
        {
            let e = self.fail(&e);
            for a in group {
                let _ = a.done.send(Err(AppendError::Failed(e.clone())));
            }
            return;
        }
        // Headers here, payloads where they are: one `writev`, no copy of the rows.
        let first_seq = self.next_seq;
        let headers: Vec<[u8; segment::HEADER_BYTES]> = group
            .iter()
            .enumerate()
            .map(|(i, a)| segment::record_header(a.kind, first_seq + i as u64, &a.payload))
            .collect();
        self.next_seq += group.len() as u64;
        let written: usize = group
            .iter()
            .map(|a| segment::HEADER_BYTES + a.payload.len())
            .sum();
        let mut slices: Vec<IoSlice<'_>> = headers
            .iter()
            .zip(&group)
            .flat_map(|(h, a)| [IoSlice::new(h), IoSlice::new(&a.payload)])
            .collect();
        let started = Instant::now();
        let result = write_all_vectored(&mut self.active.file, &mut slices).and_then(|()| {
            match self.policy {
                FsyncPolicy::Group => self.active.file.sync_data()?,
                FsyncPolicy::Interval => {
                    self.unsynced_since.get_or_insert(started);
                }
                FsyncPolicy::Off => {}
            }
            Ok(())
        });
        if self.policy == FsyncPolicy::Group {
            self.metrics.fsync_duration.observe(started.elapsed());
        }
        match result {
            Ok(()) => {
                let rows = group.iter().filter(|a| a.kind == Kind::Rows).count();
                self.metrics.rows_appended.add(rows as u64);
                self.active.bytes += written as u64;
                self.shared
                    .disk_bytes
                    .fetch_add(written as u64, Ordering::Relaxed);
                if let Some(b) = self
                    .shared
                    .segments
                    .lock()
                    .expect("not poisoned")
                    .get_mut(&self.active.first_seq)
                {
                    *b = self.active.bytes;
                }
                self.metrics.appends.add(group.len() as u64);
                self.metrics.groups.inc();
                self.metrics.bytes_written.add(written as u64);
                // The rows reach the tail before their requests are answered, so whoever
                // sees an acknowledgement finds the rows there.
                let mut rows = Vec::new();
                let mut answers = Vec::with_capacity(group.len());
                for (i, a) in group.into_iter().enumerate() {
                    let seq = first_seq + i as u64;
                    if let Some(r) = a.rows {
                        rows.push((seq, r));
                    }
                    answers.push((a.done, seq));
                }
                self.tail.publish(rows, self.next_seq);
                for (done, seq) in answers {
                    let _ = done.send(Ok(seq));
                }
            }
            Err(e) => {
                // The file's state after a failed write or fsync is unknown: stop appending
                // rather than acknowledge on top of it.
                let e = self.fail(&e);
                for a in group {
                    let _ = a.done.send(Err(AppendError::Failed(e.clone())));
                }
            }
        }
    }

    fn sync_if_due(&mut self) {
        if let Some(since) = self.unsynced_since
            && since.elapsed() >= self.interval
        {
            let started = Instant::now();
            match self.active.file.sync_data() {
                Ok(()) => {
                    self.metrics.fsync_duration.observe(started.elapsed());
                    self.unsynced_since = None;
                }
                Err(e) => {
                    self.fail(&e);
                }
            }
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.active.file.sync_data()?;
        self.unsynced_since = None;
        self.active = Active::create(&self.shared, self.next_seq)?;
        self.metrics.segments_created.inc();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::segment::scan_file;

    /// More slices than one `writev` takes (1,024 on Linux), of many sizes: every byte
    /// arrives, in order.
    #[test]
    fn vectored_writes_write_everything_in_order() {
        let dir = temp_dir("writev");
        let path = dir.join("f");
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 97) as usize])
            .collect();
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut file = File::create(&path).unwrap();
        write_all_vectored(&mut file, &mut slices).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), parts.concat());
        let _ = std::fs::remove_dir_all(&dir);
    }

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluice-wal-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn start(
        dir: &Path,
        config: &WalConfig,
        next_seq: u64,
        metrics: Arc<WalMetrics>,
    ) -> (Writer, std::thread::JoinHandle<()>, Arc<Tail>) {
        let tail = Arc::new(Tail::new(
            dir.to_path_buf(),
            1 << 20,
            next_seq,
            metrics.clone(),
        ));
        let (w, thread) = Writer::start(
            dir,
            config,
            next_seq,
            BTreeMap::new(),
            metrics,
            tail.clone(),
        )
        .unwrap();
        (w, thread, tail)
    }

    fn config(policy: FsyncPolicy, segment_bytes: u64) -> WalConfig {
        WalConfig {
            fsync: policy,
            fsync_interval_ms: 20,
            segment_bytes,
            max_bytes: 1 << 20,
            ..WalConfig::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_fsyncs_and_read_back_in_order() {
        let dir = temp_dir("group");
        let metrics = Arc::new(WalMetrics::default());
        let (w, thread, tail) = start(
            &dir,
            &config(FsyncPolicy::Group, 1 << 20),
            7,
            metrics.clone(),
        );
        let tasks: Vec<_> = (0..64u8)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.append(Kind::Rows, vec![i; 100]).await.unwrap() })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (7..71).collect::<Vec<_>>());
        assert_eq!(tail.written(), 71);
        assert_eq!(metrics.appends.get(), 64);
        assert!(metrics.groups.get() <= 64 && metrics.groups.get() >= 1);
        assert_eq!(metrics.fsync_duration.count(), metrics.groups.get());
        drop(w);
        thread.join().unwrap();
        let scan = scan_file(&dir.join(segment::file_name(7))).unwrap();
        assert!(scan.damage.is_empty());
        let read: Vec<u64> = scan.records.iter().map(|r| r.seq).collect();
        assert_eq!(read, (7..71).collect::<Vec<_>>());
        for r in &scan.records {
            let payload = scan.payload(r);
            assert_eq!(payload.len(), 100);
            assert!(payload.iter().all(|&b| b == payload[0]));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn segments_rotate_and_are_deleted_below_a_sequence_number() {
        let dir = temp_dir("rotate");
        let (w, _thread, _) = start(&dir, &config(FsyncPolicy::Off, 300), 0, Arc::default());
        for i in 0..10u8 {
            w.append(Kind::Rows, vec![i; 200]).await.unwrap();
        }
        let listed: Vec<u64> = segment::list(&dir).unwrap().iter().map(|s| s.0).collect();
        // A segment is closed once past 300 bytes: 8 + 232 is not, 8 + 2 × 232 is.
        assert_eq!(listed, vec![0, 2, 4, 6, 8]);
        let on_disk: u64 = segment::list(&dir)
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(w.disk_bytes(), on_disk);
        // Records 0..5 are confirmed: segments 0 and 2 go, 4 holds record 5.
        assert_eq!(w.delete_below(5).unwrap(), 2);
        let listed: Vec<u64> = segment::list(&dir).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(listed, vec![4, 6, 8]);
        // The active segment stays whatever the number.
        assert_eq!(w.delete_below(u64::MAX).unwrap(), 2);
        let listed: Vec<u64> = segment::list(&dir).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(listed, vec![8]);
        assert_eq!(w.disk_bytes(), 8 + 2 * 232);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_disk_budget_refuses_rows_but_not_control_records() {
        let dir = temp_dir("budget");
        let cfg = WalConfig {
            max_bytes: 1000,
            ..config(FsyncPolicy::Group, 1000)
        };
        let (w, _thread, _) = start(&dir, &cfg, 0, Arc::default());
        let mut taken = 0;
        let err = loop {
            match w.append(Kind::Rows, vec![1; 100]).await {
                Ok(_) => taken += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(taken, 7, "8 + 7 × 132 bytes fit in 1000");
        assert!(
            matches!(err, AppendError::Full { limit: 1000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("ingest.wal.max_bytes"));
        assert!(w.shared.full.load(Ordering::Relaxed), "reported full");
        w.append(Kind::Committed, vec![0; 16]).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn interval_policy_fsyncs_within_the_interval() {
        let dir = temp_dir("interval");
        let metrics = Arc::new(WalMetrics::default());
        let cfg = WalConfig {
            fsync_interval_ms: 300,
            ..config(FsyncPolicy::Interval, 1 << 20)
        };
        let (w, _thread, _) = start(&dir, &cfg, 0, metrics.clone());
        w.append(Kind::Rows, vec![1; 10]).await.unwrap();
        assert_eq!(
            metrics.fsync_duration.count(),
            0,
            "acknowledged before the fsync"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while metrics.fsync_duration.count() == 0 {
            assert!(Instant::now() < deadline, "no fsync within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
