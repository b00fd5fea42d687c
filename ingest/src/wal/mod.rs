//! The write-ahead log: where an ingest request's rows are made durable before it is
//! acknowledged, and from where they are sent to ClickHouse, again after a crash if need be.
//!
//! The log is a directory of append-only segment files ([`segment`]) of checksummed records,
//! written by one thread in fsync groups ([`writer`]). A request's normalised rows are one
//! record ([`record`]). The batches cut from them, and ClickHouse's confirmation of each, are
//! records too: a restart re-sends exactly the unconfirmed batches, cut the same way, under the
//! same deduplication tokens, then goes on from the first record no batch holds ([`Recovery`]).
//! Acknowledged rows reach the batcher through [`Tail`]: from memory while they fit in
//! `max_memory_bytes`, read back from the files when they do not.

pub mod record;
pub mod segment;
pub mod tail;
pub mod writer;

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store::metrics::{Counter, Histogram, LATENCY_BUCKETS};

use crate::config::WalConfig;
use segment::{Damage, Kind};
pub use tail::Tail;
pub use writer::{AppendError, Writer};

/// Sequence numbers of the first and last record a batch covers (both included); the rows of
/// the batch are the `Rows` records in that range.
pub type SeqRange = RangeInclusive<u64>;

/// Payload of a `Batch` or `Committed` record.
pub fn encode_range(range: &SeqRange) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&range.start().to_le_bytes());
    out.extend_from_slice(&range.end().to_le_bytes());
    out
}

/// Reads what [`encode_range`] wrote.
pub fn decode_range(payload: &[u8]) -> Option<SeqRange> {
    let a = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let b = u64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
    (payload.len() == 16 && a <= b).then_some(a..=b)
}

/// What opening the log found, for replay and for the start-up log line.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Batches cut before the restart that ClickHouse did not confirm, oldest first: sent
    /// again, whole, before anything new.
    pub unconfirmed_batches: Vec<SeqRange>,
    /// The first sequence number no batch holds: the batcher goes on from here.
    pub next_unbatched: u64,
    /// `Rows` records found that no confirmed batch holds (what replay will send).
    pub replay_records: u64,
    /// Segment files read.
    pub segments: usize,
    /// Torn tails dropped (crash mid-write; never acknowledged).
    pub torn_tails: usize,
    /// Damaged segments moved to `corrupt/`, with the bytes that could not be read.
    pub corrupt_segments: Vec<(PathBuf, usize)>,
}

/// What the records of a log say about its batches, gathered segment by segment.
#[derive(Debug, Default)]
struct LogIndex {
    /// `Batch` ranges, in log order.
    intents: Vec<SeqRange>,
    /// `Committed` ranges.
    confirmed: HashSet<SeqRange>,
    /// Sequence numbers of `Rows` records, in order.
    rows_seqs: Vec<u64>,
    /// The next sequence number to give out: past every record and every segment's name.
    next_seq: u64,
}

impl LogIndex {
    /// Adds the records of the segment named `first`.
    fn add(&mut self, first: u64, scan: &segment::Scan) {
        // A segment's name is the sequence number it started at: never reuse one.
        self.next_seq = self.next_seq.max(first);
        for r in &scan.records {
            self.next_seq = self.next_seq.max(r.seq + 1);
            match r.kind {
                Kind::Rows => self.rows_seqs.push(r.seq),
                Kind::Batch => self.intents.extend(decode_range(scan.payload(r))),
                Kind::Committed => self.confirmed.extend(decode_range(scan.payload(r))),
            }
        }
    }
}

impl Recovery {
    /// What to send again and where to go on, from what the log's records say.
    fn plan(&mut self, index: &LogIndex) {
        // Batches are cut in order, so those confirmed and those not cover a prefix of the log.
        self.unconfirmed_batches = index
            .intents
            .iter()
            .filter(|r| !index.confirmed.contains(*r))
            .cloned()
            .collect();
        self.next_unbatched = index
            .intents
            .iter()
            .map(|r| r.end() + 1)
            .max()
            .or(index.rows_seqs.first().copied())
            .unwrap_or(index.next_seq);
        self.replay_records = index
            .rows_seqs
            .iter()
            .filter(|&&s| {
                s >= self.next_unbatched || self.unconfirmed_batches.iter().any(|r| r.contains(&s))
            })
            .count() as u64;
    }

    /// The same plan for a log that is open and being written: read from its files without
    /// changing them, for a batcher that restarts after a panic.
    pub fn read_in_place(dir: &Path) -> io::Result<Recovery> {
        let mut recovery = Recovery::default();
        let mut index = LogIndex::default();
        for (first, path) in segment::list(dir)? {
            recovery.segments += 1;
            index.add(first, &segment::scan_file(&path)?);
        }
        recovery.plan(&index);
        Ok(recovery)
    }
}

/// The open log: its writer, its tail, and what it identifies itself by.
pub struct Wal {
    /// Appends records.
    pub writer: Writer,
    /// Delivers acknowledged rows to the batcher.
    pub tail: Arc<Tail>,
    /// A random id made when the log was created, so that two replicas (or a wiped log) never
    /// produce the same deduplication token.
    pub id: u64,
    /// Metrics.
    pub metrics: Arc<WalMetrics>,
    /// Digests of the `Rows` payloads still in the log, so that a client's retry of an
    /// acknowledged request is acknowledged again without being stored twice.
    pub recent: Arc<RecentRequests>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`: reads every segment, truncates a torn tail, moves
    /// damaged segments aside (keeping their verified records), and starts the writer on a new
    /// segment.
    pub fn open(dir: &Path, config: &WalConfig) -> io::Result<(Wal, Recovery)> {
        std::fs::create_dir_all(dir)?;
        let id = log_id(dir)?;
        let metrics = Arc::new(WalMetrics::default());
        let recent = Arc::new(RecentRequests::new(RECENT_REQUESTS));
        let mut recovery = Recovery::default();
        let mut sizes = BTreeMap::new();
        let mut index = LogIndex::default();
        for (first, path) in segment::list(dir)? {
            recovery.segments += 1;
            let scan = segment::scan_file(&path)?;
            index.add(first, &scan);
            for r in scan.records.iter().filter(|r| r.kind == Kind::Rows) {
                recent.insert(digest(scan.payload(r)));
            }
            if scan.records.is_empty() {
                // Nothing was ever acknowledged from it (a crash right after it was created).
                std::fs::remove_file(&path)?;
                if scan.is_corrupt() {
                    recovery.corrupt_segments.push((path, scan.data.len()));
                }
                continue;
            }
            if scan.is_corrupt() {
                let lost = scan
                    .damage
                    .iter()
                    .map(|d| match d {
                        Damage::Corrupt { bytes, .. } | Damage::TornTail { bytes, .. } => *bytes,
                        Damage::BadMagic => 0,
                    })
                    .sum();
                let moved = segment::quarantine(&path)?;
                tracing::error!(
                    segment = %moved.display(),
                    bytes_lost = lost,
                    records_kept = scan.records.len(),
                    "write-ahead log segment is damaged: moved aside, its verified records kept"
                );
                recovery.corrupt_segments.push((moved, lost));
                let mut clean = segment::MAGIC.to_vec();
                for r in &scan.records {
                    segment::encode_record(r.kind, r.seq, scan.payload(r), &mut clean);
                }
                write_durably(&path, &clean)?;
                sizes.insert(first, clean.len() as u64);
            } else {
                if !scan.damage.is_empty() {
                    recovery.torn_tails += 1;
                    let keep = scan.valid_end();
                    tracing::warn!(
                        segment = %path.display(),
                        bytes_dropped = scan.data.len() - keep,
                        "write-ahead log ends in a torn record (a crash mid-write): dropped, it was never acknowledged"
                    );
                    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                    file.set_len(keep as u64)?;
                    file.sync_all()?;
                }
                sizes.insert(first, scan.valid_end() as u64);
            }
        }
        recovery.plan(&index);
        let next_seq = index.next_seq;
        metrics
            .corrupt_segments
            .add(recovery.corrupt_segments.len() as u64);
        metrics.torn_tails.add(recovery.torn_tails as u64);
        let tail = Arc::new(Tail::new(
            dir.to_path_buf(),
            config.max_memory_bytes as usize,
            next_seq,
            metrics.clone(),
        ));
        let (writer, thread) =
            Writer::start(dir, config, next_seq, sizes, metrics.clone(), tail.clone())?;
        metrics.replayed_records.add(recovery.replay_records);
        Ok((
            Wal {
                writer,
                tail,
                id,
                metrics,
                recent,
                thread: Some(thread),
            },
            recovery,
        ))
    }

    /// A handle for the receivers.
    pub fn appender(&self) -> Appender {
        Appender {
            writer: self.writer.clone(),
            recent: self.recent.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The deduplication token of a batch: the log's id and the batch's sequence range, so a
    /// batch sent again after a timeout or a crash is stored once.
    pub fn token(&self, range: &SeqRange) -> String {
        token(self.id, range)
    }

    /// Stops the writer after a last fsync. Appends through remaining handles fail.
    pub fn close(mut self) {
        self.writer.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// What `/metrics` needs; holds no writer, so it does not keep the log open.
    pub fn status(&self) -> WalStatus {
        WalStatus {
            shared: self.writer.shared().clone(),
            tail: self.tail.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// What the receivers hold to make requests durable; cheap to clone.
#[derive(Clone)]
pub struct Appender {
    writer: Writer,
    recent: Arc<RecentRequests>,
    metrics: Arc<WalMetrics>,
}

impl Appender {
    /// Makes a request's rows durable. An exact repeat of a request still in the log (a client
    /// retrying after a lost answer) is acknowledged without being appended again.
    pub async fn append(&self, rows: crate::pipeline::Rows) -> Result<(), AppendError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(rows.bytes + 64);
        record::encode(&rows, &mut payload);
        let digest = digest(&payload);
        if !self.recent.insert(digest) {
            self.metrics.duplicate_requests.inc();
            return Ok(());
        }
        let result = self.writer.append_rows(payload, rows).await;
        if result.is_err() {
            // Not stored: the client's retry must be.
            self.recent.remove(digest);
        }
        result.map(|_| ())
    }
}

/// The `insert_deduplication_token` of the batch `range` of the log with id `log_id`.
pub fn token(log_id: u64, range: &SeqRange) -> String {
    format!("sluice-{log_id:016x}-{}-{}", range.start(), range.end())
}

/// Digest of a `Rows` payload, for [`RecentRequests`].
pub fn digest(payload: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(payload)
}

/// Requests remembered for duplicate detection.
const RECENT_REQUESTS: usize = 1 << 16;

/// A bounded set of recent request digests (oldest forgotten first).
#[derive(Debug)]
pub struct RecentRequests {
    inner: std::sync::Mutex<(HashSet<u128>, std::collections::VecDeque<u128>)>,
    capacity: usize,
}

impl RecentRequests {
    /// An empty set remembering up to `capacity` digests.
    pub fn new(capacity: usize) -> Self {
        RecentRequests {
            inner: Default::default(),
            capacity,
        }
    }

    /// Remembers `digest`; `false` when it was already there.
    pub fn insert(&self, digest: u128) -> bool {
        let mut guard = self.inner.lock().expect("not poisoned");
        let (set, order) = &mut *guard;
        if !set.insert(digest) {
            return false;
        }
        order.push_back(digest);
        if order.len() > self.capacity
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }

    /// Forgets `digest` (its append failed, so a retry must be stored).
    pub fn remove(&self, digest: u128) {
        let mut guard = self.inner.lock().expect("not poisoned");
        let (set, order) = &mut *guard;
        if set.remove(&digest) {
            order.retain(|d| *d != digest);
        }
    }
}

/// Writes `data` to `path` through a temporary file, fsynced, so the file is whole or absent.
fn write_durably(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The log's id, from `dir/id`, made on first use.
fn log_id(dir: &Path) -> io::Result<u64> {
    let path = dir.join("id");
    match std::fs::read_to_string(&path) {
        Ok(text) => u64::from_str_radix(text.trim(), 16).map_err(|_| {
            io::Error::other(format!(
                "{} does not hold a write-ahead log id (16 hex digits)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let mut seed = Vec::new();
            seed.extend_from_slice(&now.as_nanos().to_le_bytes());
            seed.extend_from_slice(&std::process::id().to_le_bytes());
            seed.extend_from_slice(dir.as_os_str().as_encoded_bytes());
            let id = xxhash_rust::xxh3::xxh3_64(&seed);
            write_durably(&path, format!("{id:016x}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Metrics of the write-ahead log, rendered on `/metrics`.
#[derive(Debug)]
pub struct WalMetrics {
    /// Records appended.
    pub appends: Counter,
    /// `Rows` records appended (acknowledged requests).
    pub rows_appended: Counter,
    /// Groups written (one write and at most one fsync each).
    pub groups: Counter,
    /// Bytes appended, framing included.
    pub bytes_written: Counter,
    /// Segment files started.
    pub segments_created: Counter,
    /// Segment files deleted once every batch cut from them was confirmed.
    pub segments_deleted: Counter,
    /// Time of one fsync.
    pub fsync_duration: Histogram,
    /// Records replayed at start-up.
    pub replayed_records: Counter,
    /// Torn tails dropped at start-up.
    pub torn_tails: Counter,
    /// Damaged segments moved aside at start-up.
    pub corrupt_segments: Counter,
    /// Requests acknowledged as exact repeats of one already in the log.
    pub duplicate_requests: Counter,
    /// Rows records read back from the files because they did not fit in memory.
    pub records_read_back: Counter,
    /// Rows records whose batch ClickHouse stored (or refused for good).
    pub confirmed_records: Counter,
    /// Batches ClickHouse refused for good, written to the dead-letter directory.
    pub dead_lettered_batches: Counter,
    /// Panics caught in the batcher (restarted from the log) or a flush task (its batch is
    /// dead-lettered).
    pub batch_panics: Counter,
    /// When the oldest rows not yet confirmed reached the batcher (Unix ms; 0 for none).
    pub oldest_unconfirmed_unix_ms: std::sync::atomic::AtomicU64,
}

impl Default for WalMetrics {
    fn default() -> Self {
        WalMetrics {
            appends: Counter::new(),
            rows_appended: Counter::new(),
            groups: Counter::new(),
            bytes_written: Counter::new(),
            segments_created: Counter::new(),
            segments_deleted: Counter::new(),
            fsync_duration: Histogram::new(LATENCY_BUCKETS),
            replayed_records: Counter::new(),
            torn_tails: Counter::new(),
            corrupt_segments: Counter::new(),
            duplicate_requests: Counter::new(),
            records_read_back: Counter::new(),
            confirmed_records: Counter::new(),
            dead_lettered_batches: Counter::new(),
            batch_panics: Counter::new(),
            oldest_unconfirmed_unix_ms: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FsyncPolicy;
    use crate::wal::record::tests::sample_logs;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sluice-walopen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn config() -> WalConfig {
        WalConfig {
            fsync: FsyncPolicy::Group,
            segment_bytes: 2000,
            ..WalConfig::default()
        }
    }

    /// Rows whose only log line is `body`.
    fn rows(body: &str) -> crate::pipeline::Rows {
        let (mut logs, streams) = sample_logs();
        logs.truncate(1);
        logs[0].body = body.into();
        crate::pipeline::Rows::from_log_rows(&logs, streams)
    }

    async fn append(wal: &Wal, body: &str) -> u64 {
        let rows = rows(body);
        let mut payload = Vec::new();
        record::encode(&rows, &mut payload);
        wal.writer.append_rows(payload, rows).await.unwrap()
    }

    fn bodies(rows: &[(u64, crate::pipeline::Rows)]) -> Vec<String> {
        rows.iter()
            .map(|(_, r)| r.decode_logs().unwrap()[0].body.clone())
            .collect()
    }

    fn reopen(dir: &Path, wal: Wal) -> (Wal, Recovery) {
        wal.close();
        Wal::open(dir, &config()).unwrap()
    }

    #[tokio::test]
    async fn rows_reach_the_tail_in_order_and_are_replayed_after_a_restart() {
        let dir = temp_dir("replay");
        let (wal, recovery) = Wal::open(&dir, &config()).unwrap();
        assert_eq!(recovery.next_unbatched, 0);
        assert_eq!(recovery.replay_records, 0);
        let id = wal.id;
        for i in 0..20 {
            append(&wal, &format!("line {i}")).await;
        }
        let mut cursor = 0;
        let got = wal.tail.next(&mut cursor).await.unwrap();
        assert_eq!(got.len(), 20, "all in memory, one hand-over");
        assert_eq!(got[3].1.decode_logs().unwrap()[0].body, "line 3");
        assert_eq!(cursor, 20);
        // Batch [0..=9] confirmed, [10..=19] cut but not confirmed: a crash now.
        wal.writer
            .append(Kind::Batch, encode_range(&(0..=9)))
            .await
            .unwrap();
        wal.writer
            .append(Kind::Batch, encode_range(&(10..=19)))
            .await
            .unwrap();
        wal.writer
            .append(Kind::Committed, encode_range(&(0..=9)))
            .await
            .unwrap();
        let (wal, recovery) = reopen(&dir, wal);
        assert_eq!(wal.id, id, "the id survives a restart");
        assert_eq!(recovery.unconfirmed_batches, vec![10..=19]);
        assert_eq!(recovery.next_unbatched, 20);
        assert_eq!(recovery.replay_records, 10);
        assert!(recovery.segments > 1, "small segments rotated");
        let again = wal.tail.read_range(&(10..=19)).unwrap();
        assert_eq!(
            bodies(&again),
            (10..20).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
        assert_eq!(wal.token(&(10..=19)), format!("sluice-{id:016x}-10-19"));
        // New rows go on after the old; the batcher starts at `next_unbatched`.
        let seq = append(&wal, "after restart").await;
        assert!(seq > 22, "sequence numbers are never reused: {seq}");
        let mut cursor = recovery.next_unbatched;
        let got = wal.tail.next(&mut cursor).await.unwrap();
        assert_eq!(bodies(&got), vec!["after restart"]);
        wal.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn rows_that_do_not_fit_in_memory_are_read_back_from_the_files() {
        let dir = temp_dir("spill");
        let cfg = WalConfig {
            max_memory_bytes: 1500,
            ..config()
        };
        let (wal, _) = Wal::open(&dir, &cfg).unwrap();
        for i in 0..30 {
            append(&wal, &format!("line {i}")).await;
        }
        assert!(wal.tail.memory_bytes() <= 1500);
        let mut cursor = 0;
        let mut got = Vec::new();
        while got.len() < 30 {
            got.extend(wal.tail.next(&mut cursor).await.unwrap());
        }
        assert_eq!(
            bodies(&got),
            (0..30).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
        assert!(wal.metrics.records_read_back.get() > 0);
        // Caught up: memory takes over again.
        append(&wal, "fresh").await;
        let read_back = wal.metrics.records_read_back.get();
        assert_eq!(
            bodies(&wal.tail.next(&mut cursor).await.unwrap()),
            vec!["fresh"]
        );
        assert_eq!(wal.metrics.records_read_back.get(), read_back);
        wal.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_torn_tail_is_dropped_and_the_records_before_it_kept() {
        let dir = temp_dir("torn");
        let (wal, _) = Wal::open(&dir, &config()).unwrap();
        for i in 0..3 {
            append(&wal, &format!("line {i}")).await;
        }
        wal.close();
        let (_, last) = segment::list(&dir).unwrap().pop().unwrap();
        let len = std::fs::metadata(&last).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&last)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let (wal, recovery) = Wal::open(&dir, &config()).unwrap();
        assert_eq!(recovery.torn_tails, 1);
        assert!(recovery.corrupt_segments.is_empty());
        assert_eq!(recovery.replay_records, 2);
        assert_eq!(wal.metrics.torn_tails.get(), 1);
        let mut cursor = recovery.next_unbatched;
        assert_eq!(
            bodies(&wal.tail.next(&mut cursor).await.unwrap()),
            vec!["line 0", "line 1"]
        );
        // The file was cut back to its last whole record: the next start finds it clean.
        let (_, recovery) = reopen(&dir, wal);
        assert_eq!(recovery.torn_tails, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_damaged_segment_is_moved_aside_and_its_good_records_kept() {
        let dir = temp_dir("corrupt");
        let (wal, _) = Wal::open(&dir, &config()).unwrap();
        for i in 0..4 {
            append(&wal, &format!("line {i}")).await;
        }
        wal.close();
        let (first, path) = segment::list(&dir).unwrap().remove(0);
        let mut data = std::fs::read(&path).unwrap();
        let scan = segment::scan(data.clone());
        let hit = scan.records[1].payload.start + 5;
        data[hit] ^= 0x20;
        std::fs::write(&path, &data).unwrap();
        let (wal, recovery) = Wal::open(&dir, &config()).unwrap();
        assert_eq!(recovery.corrupt_segments.len(), 1);
        let (moved, lost) = &recovery.corrupt_segments[0];
        assert_eq!(moved, &dir.join("corrupt").join(segment::file_name(first)));
        assert_eq!(std::fs::read(moved).unwrap(), data, "kept as found");
        assert!(*lost > 0);
        assert_eq!(wal.metrics.corrupt_segments.get(), 1);
        let mut cursor = recovery.next_unbatched;
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(wal.tail.next(&mut cursor).await.unwrap());
        }
        assert_eq!(bodies(&got), vec!["line 0", "line 2", "line 3"]);
        let (_, recovery) = reopen(&dir, wal);
        assert!(recovery.corrupt_segments.is_empty(), "rewritten clean");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recent_requests_forget_the_oldest() {
        let recent = RecentRequests::new(2);
        assert!(recent.insert(1));
        assert!(!recent.insert(1));
        assert!(recent.insert(2));
        assert!(recent.insert(3));
        assert!(recent.insert(1), "1 was forgotten");
        recent.remove(1);
        assert!(recent.insert(1));
    }

    #[test]
    fn ranges_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode_range(&encode_range(&(3..=9))), Some(3..=9));
        assert_eq!(decode_range(&encode_range(&(9..=9))), Some(9..=9));
        let mut backwards = 9u64.to_le_bytes().to_vec();
        backwards.extend_from_slice(&3u64.to_le_bytes());
        assert_eq!(decode_range(&backwards), None);
        assert_eq!(decode_range(&[0; 15]), None);
        assert_eq!(decode_range(&[0; 17]), None);
    }
}

/// The log's gauges and counters for `/metrics`.
#[derive(Clone)]
pub struct WalStatus {
    shared: Arc<writer::Shared>,
    tail: Arc<Tail>,
    metrics: Arc<WalMetrics>,
}

impl WalStatus {
    /// Acknowledged requests (`Rows` records) not yet confirmed by ClickHouse.
    pub fn backlog_records(&self) -> u64 {
        let m = &self.metrics;
        (m.replayed_records.get() + m.rows_appended.get()).saturating_sub(m.confirmed_records.get())
    }

    /// How long the oldest acknowledged rows not yet confirmed have waited.
    pub fn backlog_age(&self) -> std::time::Duration {
        let since = self
            .metrics
            .oldest_unconfirmed_unix_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if since == 0 || self.backlog_records() == 0 {
            return std::time::Duration::ZERO;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        std::time::Duration::from_millis(now.saturating_sub(since))
    }

    /// Whether the log refused a push for its disk budget and has freed no space since.
    pub fn is_full(&self) -> bool {
        self.shared.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Why the log takes no appends, if it does not.
    pub fn failure(&self) -> Option<String> {
        self.shared.failed.lock().expect("not poisoned").clone()
    }

    /// Appends the Prometheus text of the log's metrics.
    pub fn render(&self, out: &mut String) {
        use store::metrics::{render_header, render_sample};
        let m = &self.metrics;
        let segments = self.shared.segments.lock().expect("not poisoned").len() as u64;
        let gauges: [(&str, &str, u64); 5] = [
            (
                "sluice_wal_disk_bytes",
                "Bytes of write-ahead log segments on disk.",
                self.shared
                    .disk_bytes
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "sluice_wal_segments",
                "Write-ahead log segment files on disk.",
                segments,
            ),
            (
                "sluice_wal_memory_bytes",
                "Acknowledged rows held in memory for the batcher.",
                self.tail.memory_bytes() as u64,
            ),
            (
                "sluice_wal_backlog_records",
                "Acknowledged requests not yet confirmed by ClickHouse.",
                self.backlog_records(),
            ),
            (
                "sluice_wal_failed",
                "1 when the write-ahead log takes no appends (a write or fsync failed).",
                u64::from(self.failure().is_some()),
            ),
        ];
        for (name, help, value) in gauges {
            render_header(out, name, "gauge", help);
            render_sample(out, name, "", value);
        }
        let counters: [(&str, &str, &Counter); 13] = [
            (
                "sluice_wal_appends_total",
                "Records appended to the write-ahead log.",
                &m.appends,
            ),
            (
                "sluice_wal_groups_total",
                "Append groups written (one write, at most one fsync each).",
                &m.groups,
            ),
            (
                "sluice_wal_bytes_written_total",
                "Bytes appended to the write-ahead log.",
                &m.bytes_written,
            ),
            (
                "sluice_wal_segments_created_total",
                "Write-ahead log segments started.",
                &m.segments_created,
            ),
            (
                "sluice_wal_segments_deleted_total",
                "Write-ahead log segments deleted once confirmed.",
                &m.segments_deleted,
            ),
            (
                "sluice_wal_replayed_records_total",
                "Requests replayed from the write-ahead log at start-up.",
                &m.replayed_records,
            ),
            (
                "sluice_wal_torn_tails_total",
                "Torn tail records dropped at start-up (never acknowledged).",
                &m.torn_tails,
            ),
            (
                "sluice_wal_corrupt_segments_total",
                "Damaged write-ahead log segments moved aside at start-up.",
                &m.corrupt_segments,
            ),
            (
                "sluice_wal_duplicate_requests_total",
                "Requests acknowledged as exact repeats of one still in the log.",
                &m.duplicate_requests,
            ),
            (
                "sluice_wal_records_read_back_total",
                "Requests read back from disk because they did not fit in memory.",
                &m.records_read_back,
            ),
            (
                "sluice_wal_confirmed_records_total",
                "Requests whose batch ClickHouse stored or refused for good.",
                &m.confirmed_records,
            ),
            (
                "sluice_dead_letter_batches_total",
                "Batches ClickHouse refused for good, written to the dead-letter directory.",
                &m.dead_lettered_batches,
            ),
            (
                "sluice_batch_panics_total",
                "Panics caught in the batcher (restarted from the log) or its flush tasks (the batch is dead-lettered).",
                &m.batch_panics,
            ),
        ];
        for (name, help, counter) in counters {
            render_header(out, name, "counter", help);
            render_sample(out, name, "", counter.get());
        }
        render_header(
            out,
            "sluice_wal_backlog_age_seconds",
            "gauge",
            "How long the oldest acknowledged rows not yet in ClickHouse have waited (0 when none wait).",
        );
        out.push_str(&format!(
            "sluice_wal_backlog_age_seconds {:.3}\n",
            self.backlog_age().as_secs_f64()
        ));
        m.fsync_duration.render(
            out,
            "sluice_wal_fsync_duration_seconds",
            "Time of one write-ahead log fsync.",
        );
    }
}
