//! Content-Encoding and snappy decompression, bounded so a small bomb cannot exhaust memory.

use std::io::Read;

use super::DecodeError;

/// Undoes `Content-Encoding` (`gzip`, `x-gzip`, `zstd`, `identity` or none), refusing output over
/// `limit` bytes.
pub fn decode_content_encoding(
    encoding: Option<&str>,
    body: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let encoding = encoding.map(str::trim).unwrap_or("");
    match encoding.to_ascii_lowercase().as_str() {
        "" | "identity" => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            Ok(body)
        }
        "gzip" | "x-gzip" => read_bounded(
            flate2::read::MultiGzDecoder::new(body.as_slice()),
            limit,
            "gzip",
        ),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(body.as_slice()).map_err(|e| {
                DecodeError::Compression {
                    codec: "zstd",
                    msg: e.to_string(),
                }
            })?;
            read_bounded(decoder, limit, "zstd")
        }
        _ => Err(DecodeError::UnsupportedEncoding(encoding.to_string())),
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

    #[test]
    fn round_trips() {
        let data = b"hello world".repeat(100);
        assert_eq!(
            decode_content_encoding(Some("gzip"), gzip(&data), 1 << 20).unwrap(),
            data
        );
        let z = zstd::encode_all(data.as_slice(), 1).unwrap();
        assert_eq!(
            decode_content_encoding(Some("zstd"), z, 1 << 20).unwrap(),
            data
        );
        assert_eq!(
            decode_content_encoding(None, data.clone(), 1 << 20).unwrap(),
            data
        );
        let s = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decode_snappy(&s, 1 << 20).unwrap(), data);
    }

    #[test]
    fn bombs_are_refused() {
        let data = vec![0u8; 1 << 20];
        let limit = 1000;
        assert_eq!(
            decode_content_encoding(Some("gzip"), gzip(&data), limit),
            Err(DecodeError::TooLarge { limit })
        );
        let z = zstd::encode_all(data.as_slice(), 1).unwrap();
        assert_eq!(
            decode_content_encoding(Some("zstd"), z, limit),
            Err(DecodeError::TooLarge { limit })
        );
        let s = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decode_snappy(&s, limit),
            Err(DecodeError::TooLarge { limit })
        );
    }

    #[test]
    fn corrupt_and_unknown() {
        for (enc, reason) in [("gzip", "bad_gzip"), ("zstd", "bad_zstd")] {
            let err =
                decode_content_encoding(Some(enc), b"not compressed".to_vec(), 100).unwrap_err();
            assert_eq!(err.reason(), reason, "{err}");
        }
        let mut truncated = gzip(b"some text that is long enough");
        truncated.truncate(truncated.len() - 6);
        assert_eq!(
            decode_content_encoding(Some("gzip"), truncated, 100)
                .unwrap_err()
                .reason(),
            "bad_gzip"
        );
        assert_eq!(
            decode_snappy(b"\xff\xff\xff\xff\xff", 100)
                .unwrap_err()
                .reason(),
            "bad_snappy"
        );
        assert!(matches!(
            decode_content_encoding(Some("br"), vec![1], 100),
            Err(DecodeError::UnsupportedEncoding(e)) if e == "br"
        ));
    }
}
