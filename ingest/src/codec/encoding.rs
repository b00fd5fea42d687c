//! Content-Encoding and snappy decompression, bounded so a small bomb cannot exhaust memory.
//!
//! Shippers disagree on names and framing, and a `4xx` makes them drop the batch, so every
//! encoding a shipper is known to send is read: `gzip`/`x-gzip`; `deflate` both zlib-wrapped (what
//! Vector's `zlib` compression sends) and raw (what Go's `compress/flate` writes, which Loki
//! reads); `zstd`; and `snappy`, as a block or in the framed format.

use std::io::Read;

use super::DecodeError;

/// The `Content-Encoding` values read, for error messages and docs.
pub const ACCEPTED_ENCODINGS: &str = "identity, gzip, x-gzip, deflate (zlib or raw), zstd, snappy";

/// What the body is once its `Content-Encoding` is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The content itself (JSON, NDJSON ...).
    Plain,
    /// A snappy block around the content, as Loki's protobuf push always has. A `snappy`
    /// `Content-Encoding` on such a body names that same block (Vector's `loki` sink sends the
    /// header, Promtail does not), so it is undone once, not twice, as Loki does.
    SnappyBlock,
}

/// Undoes `encoding` (a `Content-Encoding` value: one coding or a comma-separated list, applied
/// in order by the sender, so undone last first), then the payload's own snappy block, refusing
/// any stage whose output is over `limit` bytes.
pub fn decode_body(
    encoding: Option<&str>,
    body: Vec<u8>,
    payload: Payload,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let header = encoding.unwrap_or("");
    let mut codings = Vec::new();
    for token in header.split(',') {
        let token = token.trim().to_ascii_lowercase();
        match token.as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" => codings.push(Coding::Gzip),
            "deflate" => codings.push(Coding::Deflate),
            "zstd" => codings.push(Coding::Zstd),
            "snappy" => codings.push(Coding::Snappy),
            _ => return Err(DecodeError::UnsupportedEncoding(header.trim().to_string())),
        }
    }
    if payload == Payload::SnappyBlock && codings.last() == Some(&Coding::Snappy) {
        codings.pop();
    }
    let mut data = body;
    if codings.is_empty() && data.len() > limit && payload == Payload::Plain {
        return Err(DecodeError::TooLarge { limit });
    }
    for coding in codings.into_iter().rev() {
        data = coding.decode(&data, limit)?;
    }
    if payload == Payload::SnappyBlock {
        if data.is_empty() {
            return Err(DecodeError::Empty);
        }
        data = decode_snappy(&data, limit)?;
    }
    Ok(data)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Zstd,
    Snappy,
}

impl Coding {
    fn decode(self, data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        match self {
            Coding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), limit, "gzip"),
            Coding::Deflate => {
                if has_zlib_header(data) {
                    match read_bounded(flate2::read::ZlibDecoder::new(data), limit, "deflate") {
                        Err(DecodeError::Compression { .. }) => {}
                        done => return done,
                    }
                }
                // Raw DEFLATE, or a raw stream whose first bytes happen to look like zlib's.
                read_bounded(flate2::read::DeflateDecoder::new(data), limit, "deflate")
            }
            Coding::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| {
                    DecodeError::Compression {
                        codec: "zstd",
                        msg: e.to_string(),
                    }
                })?;
                read_bounded(decoder, limit, "zstd")
            }
            Coding::Snappy if data.starts_with(SNAPPY_FRAMED_MAGIC) => {
                read_bounded(snap::read::FrameDecoder::new(data), limit, "snappy")
            }
            Coding::Snappy => decode_snappy(data, limit),
        }
    }
}

/// The stream identifier chunk that opens every snappy framed stream.
const SNAPPY_FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// RFC 1950: compression method 8 with a window of at most 32 KiB, and a header checksum.
fn has_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn read_bounded(r: impl Read, limit: usize, codec: &'static str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    r.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Compression {
            codec,
            msg: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// Decompresses a snappy block (the format Loki's protobuf push uses: not the framed format),
/// checking the declared length against `limit` before allocating.
pub fn decode_snappy(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let bad = |e: snap::Error| DecodeError::Compression {
        codec: "snappy",
        msg: e.to_string(),
    };
    let len = snap::raw::decompress_len(body).map_err(bad)?;
    if len > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn snappy_block(data: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(data).unwrap()
    }

    fn snappy_framed(data: &[u8]) -> Vec<u8> {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.into_inner().unwrap()
    }

    fn plain(encoding: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, DecodeError> {
        decode_body(Some(encoding), body, Payload::Plain, limit)
    }

    #[test]
    fn every_coding_round_trips() {
        let data = b"hello world ".repeat(100);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("", data.clone()),
            ("identity", data.clone()),
            ("gzip", gzip(&data)),
            ("x-gzip", gzip(&data)),
            ("GZIP", gzip(&data)),
            ("deflate", zlib(&data)),
            ("deflate", raw_deflate(&data)),
            ("zstd", zstd::encode_all(data.as_slice(), 1).unwrap()),
            ("snappy", snappy_block(&data)),
            ("snappy", snappy_framed(&data)),
            (
                " gzip , zstd ",
                zstd::encode_all(gzip(&data).as_slice(), 1).unwrap(),
            ),
            ("identity, deflate", zlib(&data)),
        ];
        for (encoding, body) in cases {
            assert_eq!(
                plain(encoding, body, 1 << 20).unwrap(),
                data,
                "{encoding:?}"
            );
        }
        assert_eq!(
            decode_body(None, data.clone(), Payload::Plain, 1 << 20).unwrap(),
            data
        );
    }

    #[test]
    fn snappy_payload_is_undone_once() {
        let data = b"protobuf bytes ".repeat(50);
        let block = snappy_block(&data);
        // Promtail: no header. Vector's loki sink: `Content-Encoding: snappy` on the same block.
        for encoding in [None, Some("snappy"), Some("identity"), Some("Snappy")] {
            assert_eq!(
                decode_body(encoding, block.clone(), Payload::SnappyBlock, 1 << 20).unwrap(),
                data,
                "{encoding:?}"
            );
        }
        // A transport coding around the block is undone first.
        assert_eq!(
            decode_body(Some("gzip"), gzip(&block), Payload::SnappyBlock, 1 << 20).unwrap(),
            data
        );
        assert_eq!(
            decode_body(Some("snappy"), vec![], Payload::SnappyBlock, 100),
            Err(DecodeError::Empty)
        );
    }

    #[test]
    fn bombs_are_refused() {
        let data = vec![0u8; 1 << 20];
        let limit = 1000;
        let bombs: Vec<(&str, Vec<u8>)> = vec![
            ("gzip", gzip(&data)),
            ("deflate", zlib(&data)),
            ("deflate", raw_deflate(&data)),
            ("zstd", zstd::encode_all(data.as_slice(), 1).unwrap()),
            ("snappy", snappy_block(&data)),
            ("snappy", snappy_framed(&data)),
            ("", vec![b'x'; limit + 1]),
        ];
        for (encoding, body) in bombs {
            assert_eq!(
                plain(encoding, body, limit),
                Err(DecodeError::TooLarge { limit }),
                "{encoding:?}"
            );
        }
        assert_eq!(
            decode_snappy(&snappy_block(&data), limit),
            Err(DecodeError::TooLarge { limit })
        );
        // Exactly at the limit is fine.
        assert_eq!(
            plain("gzip", gzip(&data[..limit]), limit).unwrap().len(),
            limit
        );
    }

    #[test]
    fn corrupt_and_unknown() {
        for (enc, reason) in [
            ("gzip", "bad_gzip"),
            ("zstd", "bad_zstd"),
            ("deflate", "bad_deflate"),
            ("snappy", "bad_snappy"),
        ] {
            let err = plain(enc, b"\xff\xff\xff\xff\xffnot compressed".to_vec(), 100).unwrap_err();
            assert_eq!(err.reason(), reason, "{enc}: {err}");
        }
        let mut truncated = gzip(b"some text that is long enough");
        truncated.truncate(truncated.len() - 6);
        assert_eq!(
            plain("gzip", truncated, 100).unwrap_err().reason(),
            "bad_gzip"
        );
        let mut framed = snappy_framed(b"some text that is long enough");
        framed.truncate(framed.len() - 3);
        assert_eq!(
            plain("snappy", framed, 100).unwrap_err().reason(),
            "bad_snappy"
        );
        assert_eq!(
            decode_snappy(b"\xff\xff\xff\xff\xff", 100)
                .unwrap_err()
                .reason(),
            "bad_snappy"
        );
        for header in ["br", "gzip, br", "compress"] {
            let err = plain(header, vec![1], 100).unwrap_err();
            assert_eq!(err, DecodeError::UnsupportedEncoding(header.into()));
            assert!(err.to_string().contains(ACCEPTED_ENCODINGS), "{err}");
        }
    }

    #[test]
    fn zlib_header_check() {
        assert!(has_zlib_header(&zlib(b"x")));
        assert!(!has_zlib_header(&gzip(b"x")));
        assert!(!has_zlib_header(b"x"));
        assert!(!has_zlib_header(b"\x78\x00"));
    }
}
