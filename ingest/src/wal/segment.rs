//! WAL segment files: the record framing, and the scan that reads a segment back and tells a torn
//! tail (a crash mid-write: dropped, it was never acknowledged) from damage in the middle (kept
//! as far as it can be verified, and reported).
//!
//! ```text
//! segment = magic:8 record*
//! record  = len:u32 kind:u8 0:u8[3] seq:u64 payload_hash:u64 header_hash:u64 payload:len
//! ```
//! `payload_hash` is xxh3-64 of the payload and `header_hash` xxh3-64 of the 24 header bytes
//! before it, so a damaged length is caught before it is trusted. Integers are little-endian.
//! Sequence numbers increase by one from record to record, across segments; a segment's file
//! name is the sequence number of its first record, so names sort in log order.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

/// First bytes of every segment file: name and format version.
pub const MAGIC: &[u8; 8] = b"SLWAL\0\0\x01";
/// Bytes of a record header.
pub const HEADER_BYTES: usize = 32;
/// Largest payload a record may hold; larger lengths are treated as damage.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;
/// File name suffix of segments.
pub const SUFFIX: &str = ".wal";

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// One acknowledged request's rows ([`super::record`]).
    Rows = 1,
    /// A batch about to be sent: the sequence range it covers, so that after a crash the same
    /// batch is cut again and carries the same deduplication token.
    Batch = 2,
    /// A batch ClickHouse confirmed: its records need not be sent again.
    Committed = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Rows),
            2 => Some(Kind::Batch),
            3 => Some(Kind::Committed),
            _ => None,
        }
    }
}

/// Appends one framed record to `out`.
pub fn encode_record(kind: Kind, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&record_header(kind, seq, payload));
    out.extend_from_slice(payload);
}

/// The header of the record framing `payload`; the payload follows it.
pub fn record_header(kind: Kind, seq: u64, payload: &[u8]) -> [u8; HEADER_BYTES] {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "WAL payload of {} bytes is over the limit",
        payload.len()
    );
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4] = kind as u8;
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16..24].copy_from_slice(&xxh3_64(payload).to_le_bytes());
    let header_hash = xxh3_64(&h[..24]);
    h[24..32].copy_from_slice(&header_hash.to_le_bytes());
    h
}

/// File name of the segment whose first record is `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// The first sequence number of a segment, from its file name; `None` for other files.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The segments in `dir`, oldest first, as (first sequence number, path).
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// A record found by [`scan`]; its payload is `scan.data[payload]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRef {
    /// What it holds.
    pub kind: Kind,
    /// Its sequence number.
    pub seq: u64,
    /// Where its payload lies in the segment.
    pub payload: Range<usize>,
}

/// Something wrong found in a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The segment ends inside a record: a write cut short by a crash. Such a record was never
    /// fsynced, so never acknowledged; the bytes are dropped.
    TornTail {
        /// Offset of the incomplete record.
        offset: usize,
        /// Bytes dropped.
        bytes: usize,
    },
    /// Bytes in the middle of the segment fail their checksum. Reading resumed at the next
    /// record that verifies; the bytes in between are lost and must be reported.
    Corrupt {
        /// Offset of the first bad byte.
        offset: usize,
        /// Bytes skipped.
        bytes: usize,
    },
    /// The segment does not start with [`MAGIC`].
    BadMagic,
}

/// A segment read back.
#[derive(Debug)]
pub struct Scan {
    /// The whole file.
    pub data: Vec<u8>,
    /// Records that verified, in order.
    pub records: Vec<RecordRef>,
    /// What was wrong, in order of offset; empty for a clean segment.
    pub damage: Vec<Damage>,
}

impl Scan {
    /// The payload of `record`.
    pub fn payload(&self, record: &RecordRef) -> &[u8] {
        &self.data[record.payload.clone()]
    }

    /// Whether the segment needs to be reported and moved aside: anything but a torn tail.
    pub fn is_corrupt(&self) -> bool {
        self.damage
            .iter()
            .any(|d| !matches!(d, Damage::TornTail { .. }))
    }

    /// Offset just past the last record that verified: where appending may resume.
    pub fn valid_end(&self) -> usize {
        self.records
            .last()
            .map_or(MAGIC.len(), |r| r.payload.end)
            .min(self.data.len())
    }
}

/// Reads a segment file and verifies every record.
pub fn scan_file(path: &Path) -> io::Result<Scan> {
    Ok(scan(std::fs::read(path)?))
}

/// Verifies every record of a segment's bytes.
pub fn scan(data: Vec<u8>) -> Scan {
    let mut records = Vec::new();
    let mut damage = Vec::new();
    if data.len() < MAGIC.len() {
        // A crash right after the file was created: nothing in it was ever acknowledged.
        if !data.is_empty() {
            damage.push(Damage::TornTail {
                offset: 0,
                bytes: data.len(),
            });
        }
        return Scan {
            data,
            records,
            damage,
        };
    }
    if &data[..MAGIC.len()] != MAGIC {
        damage.push(Damage::BadMagic);
        return Scan {
            data,
            records,
            damage,
        };
    }
    let mut at = MAGIC.len();
    let mut last_seq = None;
    while at < data.len() {
        match check(&data, at, last_seq) {
            Check::Valid(record) => {
                at = record.payload.end;
                last_seq = Some(record.seq);
                records.push(record);
            }
            Check::Torn => {
                damage.push(Damage::TornTail {
                    offset: at,
                    bytes: data.len() - at,
                });
                break;
            }
            Check::Bad => {
                // Resume at the next offset where a whole record verifies.
                let resume = (at + 1..data.len())
                    .find(|&p| matches!(check(&data, p, last_seq), Check::Valid(_)))
                    .unwrap_or(data.len());
                damage.push(Damage::Corrupt {
                    offset: at,
                    bytes: resume - at,
                });
                at = resume;
            }
        }
    }
    Scan {
        data,
        records,
        damage,
    }
}

enum Check {
    Valid(RecordRef),
    /// Incomplete at the end of the file.
    Torn,
    /// Fails verification with more of the file after it.
    Bad,
}

fn check(data: &[u8], at: usize, last_seq: Option<u64>) -> Check {
    let rest = &data[at..];
    if rest.len() < HEADER_BYTES {
        return Check::Torn;
    }
    let header = &rest[..HEADER_BYTES];
    let word = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let seq = word(8);
    let header_ok = xxh3_64(&header[..24]) == word(24)
        && len <= MAX_PAYLOAD_BYTES
        && header[5..8] == [0, 0, 0]
        && last_seq.is_none_or(|last| seq > last);
    let kind = Kind::from_u8(header[4]);
    let (true, Some(kind)) = (header_ok, kind) else {
        // A file system may extend a file before the data reaches it: zeros to the end are an
        // unfinished write, not damage.
        return if rest.iter().all(|&b| b == 0) {
            Check::Torn
        } else {
            Check::Bad
        };
    };
    let end = at + HEADER_BYTES + len;
    if end > data.len() {
        return Check::Torn;
    }
    if xxh3_64(&data[at + HEADER_BYTES..end]) != word(16) {
        // The last record's payload may hold whatever the crash left in it.
        return if end == data.len() {
            Check::Torn
        } else {
            Check::Bad
        };
    }
    Check::Valid(RecordRef {
        kind,
        seq,
        payload: at + HEADER_BYTES..end,
    })
}

/// Moves a damaged segment into `dir/corrupt/`, keeping its name, and returns its new path.
pub fn quarantine(path: &Path) -> io::Result<PathBuf> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("segment path has no parent"))?
        .join("corrupt");
    std::fs::create_dir_all(&dir)?;
    let to = dir.join(path.file_name().unwrap_or_default());
    std::fs::rename(path, &to)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment of `n` records with payloads of growing length, and each record's offset.
    fn segment(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut data = MAGIC.to_vec();
        let mut offsets = Vec::new();
        for seq in 10..10 + n {
            offsets.push(data.len());
            let payload: Vec<u8> = (0..seq * 3).map(|i| (i * 7 + seq) as u8).collect();
            encode_record(Kind::Rows, seq, &payload, &mut data);
        }
        (data, offsets)
    }

    fn seqs(scan: &Scan) -> Vec<u64> {
        scan.records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn clean_segment_reads_back_every_record() {
        let (data, _) = segment(5);
        let scan = scan(data);
        assert_eq!(seqs(&scan), vec![10, 11, 12, 13, 14]);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.valid_end(), scan.data.len());
        let r = &scan.records[2];
        assert_eq!(r.kind, Kind::Rows);
        assert_eq!(scan.payload(r).len(), 36);
        assert_eq!(scan.payload(r)[1], 19);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_that_keeps_the_whole_records() {
        let (data, offsets) = segment(4);
        for len in MAGIC.len()..data.len() {
            let scan = scan(data[..len].to_vec());
            let whole = offsets.iter().skip(1).filter(|&&o| o <= len).count();
            assert_eq!(scan.records.len(), whole, "truncated at {len}");
            assert!(!scan.is_corrupt(), "truncated at {len}: {:?}", scan.damage);
            let tail = len - scan.valid_end();
            if tail == 0 {
                assert!(scan.damage.is_empty());
            } else {
                assert_eq!(
                    scan.damage,
                    vec![Damage::TornTail {
                        offset: scan.valid_end(),
                        bytes: tail
                    }]
                );
            }
        }
        assert!(scan(Vec::new()).damage.is_empty());
        assert_eq!(scan(MAGIC[..3].to_vec()).damage.len(), 1);
    }

    #[test]
    fn zeros_or_garbage_in_the_last_record_are_a_torn_tail() {
        let (mut data, offsets) = segment(3);
        // The file system extended the file but the last record's bytes never arrived.
        let last = offsets[2];
        data[last..].fill(0);
        let s = scan(data.clone());
        assert_eq!(seqs(&s), vec![10, 11]);
        assert!(!s.is_corrupt());
        // The header arrived, the end of the payload did not.
        let (mut data, _) = segment(3);
        let end = data.len();
        data[end - 2] ^= 0xff;
        let s = scan(data);
        assert_eq!(seqs(&s), vec![10, 11]);
        assert!(!s.is_corrupt());
    }

    #[test]
    fn a_flipped_byte_in_the_middle_is_reported_and_reading_resumes() {
        let (data, offsets) = segment(5);
        // Every byte of record 11 (the second), header and payload alike.
        for at in offsets[1]..offsets[2] {
            let mut bad = data.clone();
            bad[at] ^= 0x04;
            let s = scan(bad);
            assert_eq!(seqs(&s), vec![10, 12, 13, 14], "flip at {at}");
            assert!(s.is_corrupt());
            assert_eq!(
                s.damage,
                vec![Damage::Corrupt {
                    offset: offsets[1],
                    bytes: offsets[2] - offsets[1]
                }],
                "flip at {at}"
            );
        }
    }

    #[test]
    fn a_damaged_length_is_not_trusted() {
        let (mut data, offsets) = segment(4);
        // A length that would swallow the rest of the file.
        data[offsets[1] + 3] = 0x7f;
        let s = scan(data);
        assert_eq!(seqs(&s), vec![10, 12, 13]);
        assert!(s.is_corrupt(), "not mistaken for a torn tail");
    }

    #[test]
    fn a_damaged_header_of_the_last_record_is_corrupt_not_torn() {
        let (mut data, offsets) = segment(3);
        // A torn write leaves a prefix of what was written, never a wrong header.
        data[offsets[2] + 9] ^= 1; // the sequence number
        let s = scan(data);
        assert_eq!(seqs(&s), vec![10, 11]);
        assert!(s.is_corrupt());
    }

    #[test]
    fn wrong_magic_is_reported() {
        let (mut data, _) = segment(2);
        data[0] = b'X';
        let s = scan(data);
        assert!(s.records.is_empty());
        assert_eq!(s.damage, vec![Damage::BadMagic]);
        assert!(s.is_corrupt());
    }

    #[test]
    fn sequence_numbers_must_increase() {
        let mut data = MAGIC.to_vec();
        encode_record(Kind::Rows, 5, b"a", &mut data);
        encode_record(Kind::Committed, 5, b"b", &mut data);
        encode_record(Kind::Batch, 6, b"c", &mut data);
        let s = scan(data);
        assert_eq!(seqs(&s), vec![5, 6]);
        assert_eq!(s.records[1].kind, Kind::Batch);
        assert!(s.is_corrupt());
    }

    #[test]
    fn file_names_sort_in_log_order_and_others_are_ignored() {
        assert_eq!(file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for other in [
            "42.wal",
            "0000000000000000004x.wal",
            "00000000000000000042.tmp",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
        let dir = std::env::temp_dir().join(format!("sluice-wal-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for seq in [100, 7, 12] {
            std::fs::write(dir.join(file_name(seq)), MAGIC).unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let listed: Vec<u64> = list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(listed, vec![7, 12, 100]);
        let moved = quarantine(&dir.join(file_name(12))).unwrap();
        assert_eq!(moved, dir.join("corrupt").join(file_name(12)));
        assert!(moved.exists());
        let listed: Vec<u64> = list(&dir).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(listed, vec![7, 100]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
