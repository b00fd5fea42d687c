//! The tail of the log: acknowledged rows on their way to the batcher, in log order.
//!
//! The writer publishes each group's rows here after it is durable. While they fit in
//! `max_memory_bytes` they are handed over from memory; past that the tail notes where memory
//! stopped being complete ("spilled") and the batcher reads the records back from the segment
//! files until it has caught up, so a long ClickHouse outage costs disk, not memory. Start-up
//! replay uses the same read-back path.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::segment::{self, Kind};
use super::{SeqRange, WalMetrics, record};
use crate::pipeline::Rows;

#[derive(Debug)]
struct State {
    /// Rows records in log order.
    items: VecDeque<(u64, Rows)>,
    /// Bytes of `items`.
    bytes: usize,
    /// `items` holds every Rows record from here ...
    complete_from: u64,
    /// ... up to here (excluded) when memory ran out, else up to `written`.
    spilled_at: Option<u64>,
    /// One past the last record written.
    written: u64,
}

/// Acknowledged rows for the batcher. One consumer.
#[derive(Debug)]
pub struct Tail {
    dir: PathBuf,
    capacity: usize,
    state: Mutex<State>,
    notify: Notify,
    metrics: Arc<WalMetrics>,
}

impl Tail {
    /// A tail for the log in `dir` whose next record is `written`; earlier records are read
    /// from the files.
    pub(crate) fn new(
        dir: PathBuf,
        capacity: usize,
        written: u64,
        metrics: Arc<WalMetrics>,
    ) -> Tail {
        Tail {
            dir,
            capacity,
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                complete_from: written,
                spilled_at: None,
                written,
            }),
            notify: Notify::new(),
            metrics,
        }
    }

    /// Called by the writer after a group is durable: its rows records, and the new end.
    pub(crate) fn publish(&self, records: Vec<(u64, Rows)>, written: u64) {
        let mut s = self.state.lock().expect("not poisoned");
        for (seq, rows) in records {
            if s.spilled_at.is_none() && s.bytes + rows.bytes <= self.capacity {
                s.bytes += rows.bytes;
                s.items.push_back((seq, rows));
            } else if s.spilled_at.is_none() {
                s.spilled_at = Some(seq);
            }
        }
        s.written = written;
        drop(s);
        self.notify.notify_one();
    }

    /// Forgets what memory holds, so that a new consumer starting behind the old one reads
    /// everything written so far from the files (the batcher restarting after a panic).
    pub fn rewind(&self) {
        let mut s = self.state.lock().expect("not poisoned");
        s.items.clear();
        s.bytes = 0;
        s.spilled_at = None;
        s.complete_from = s.written;
    }

    /// The log's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Bytes of rows held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.state.lock().expect("not poisoned").bytes
    }

    /// One past the last record written.
    pub fn written(&self) -> u64 {
        self.state.lock().expect("not poisoned").written
    }

    /// Waits for rows records at or after `cursor` and returns some of them in log order (at
    /// most a segment's worth), moving `cursor` past them.
    pub async fn next(&self, cursor: &mut u64) -> io::Result<Vec<(u64, Rows)>> {
        loop {
            let notified = self.notify.notified();
            let disk_until = {
                let mut s = self.state.lock().expect("not poisoned");
                let limit = s.spilled_at.unwrap_or(s.written);
                if *cursor >= s.complete_from && *cursor < limit {
                    let mut out = Vec::new();
                    while let Some((seq, _)) = s.items.front() {
                        if *seq >= limit {
                            break;
                        }
                        let (seq, rows) = s.items.pop_front().expect("front exists");
                        s.bytes -= rows.bytes;
                        if seq >= *cursor {
                            out.push((seq, rows));
                        }
                    }
                    *cursor = limit;
                    if !out.is_empty() {
                        return Ok(out);
                    }
                    None
                } else if *cursor < s.written {
                    Some(s.written)
                } else {
                    Self::unspill(&mut s, *cursor);
                    None
                }
            };
            match disk_until {
                Some(until) => {
                    let (rows, next) = self.read_segment_from(*cursor, until)?;
                    *cursor = next;
                    self.metrics.records_read_back.add(rows.len() as u64);
                    self.unspill_if_caught_up(*cursor);
                    if !rows.is_empty() {
                        return Ok(rows);
                    }
                }
                None => notified.await,
            }
        }
    }

    fn unspill_if_caught_up(&self, cursor: u64) {
        let mut s = self.state.lock().expect("not poisoned");
        if cursor >= s.written {
            Self::unspill(&mut s, cursor);
        }
    }

    /// Caught up with the files: memory is complete again from `cursor` on.
    fn unspill(s: &mut State, cursor: u64) {
        if s.spilled_at.is_some() || cursor > s.complete_from {
            s.spilled_at = None;
            s.complete_from = cursor;
            s.bytes = 0;
            s.items.clear();
        }
    }

    /// The rows records of `range`, read from the files (replay of an unconfirmed batch).
    pub fn read_range(&self, range: &SeqRange) -> io::Result<Vec<(u64, Rows)>> {
        let mut out = Vec::new();
        let mut at = *range.start();
        let end = range.end() + 1;
        while at < end {
            // Always past `at`, so this ends.
            let (rows, next) = self.read_segment_from(at, end)?;
            out.extend(rows);
            at = next;
        }
        Ok(out)
    }

    /// Rows records in `[from, until)` from the segment holding `from`, and where the next
    /// read starts (the next segment's first record, or `until`).
    fn read_segment_from(&self, from: u64, until: u64) -> io::Result<(Vec<(u64, Rows)>, u64)> {
        let segments = segment::list(&self.dir)?;
        let i = segments
            .partition_point(|(first, _)| *first <= from)
            .saturating_sub(1);
        let Some((_, path)) = segments.get(i) else {
            return Ok((Vec::new(), until));
        };
        let next = segments
            .get(i + 1)
            .map_or(until, |(first, _)| (*first).min(until));
        let scan = segment::scan_file(path)?;
        let mut out = Vec::new();
        for r in &scan.records {
            if r.kind == Kind::Rows && r.seq >= from && r.seq < until {
                let rows = record::decode(scan.payload(r)).map_err(|e| {
                    io::Error::other(format!("{}: record {}: {e}", path.display(), r.seq))
                })?;
                out.push((r.seq, rows));
            }
        }
        Ok((out, next.max(from + 1)))
    }
}
