//! Invalid UTF-8 in what a shipper sends becomes U+FFFD, one per invalid byte as Go's decoders
//! (and so Loki) do, instead of a `400` that would make the shipper drop the whole batch. In JSON
//! the same goes for `\uXXXX` escapes of lone UTF-16 surrogates, which JavaScript's
//! `JSON.stringify` writes for broken strings and simd-json refuses.

/// `bytes` as text, each byte of an invalid sequence replaced by U+FFFD, and how many bytes were
/// replaced. Valid input is taken over without a copy.
pub fn lossy(bytes: Vec<u8>) -> (String, usize) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, 0),
        Err(e) => repair(e.as_bytes()),
    }
}

/// Replaces `body` by its repaired text when it is not valid UTF-8 (for decoders that parse
/// bytes, such as simd-json); returns how many bytes were replaced.
pub fn repair_in_place(body: &mut Vec<u8>) -> usize {
    if std::str::from_utf8(body).is_ok() {
        return 0;
    }
    let (text, replaced) = repair(body);
    *body = text.into_bytes();
    replaced
}

/// Makes a JSON text readable by simd-json the way Go reads it: invalid UTF-8 and lone surrogate
/// escapes become U+FFFD. Returns how many characters were replaced.
pub fn repair_json(body: &mut Vec<u8>) -> usize {
    repair_in_place(body) + repair_json_surrogates(body)
}

/// Rewrites `\uXXXX` escapes of lone UTF-16 surrogates in a JSON text to `\ufffd`, in place
/// (the same length), as Go's `encoding/json` decodes them; returns how many were rewritten.
/// Surrogate pairs and escaped backslashes followed by `u` are left alone.
pub fn repair_json_surrogates(json: &mut [u8]) -> usize {
    let mut replaced = 0;
    let mut from = 0;
    while let Some(offset) = memchr::memmem::find(&json[from..], b"\\u") {
        let at = from + offset;
        from = at + 2;
        // An even run of backslashes is escaped backslashes, not the start of an escape.
        let run = json[..=at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if run % 2 == 0 {
            continue;
        }
        match hex4(json, at + 2) {
            Some(0xD800..=0xDBFF)
                if json.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(hex4(json, at + 8), Some(0xDC00..=0xDFFF)) =>
            {
                from = at + 12;
            }
            Some(0xD800..=0xDFFF) => {
                json[at + 2..at + 6].copy_from_slice(b"fffd");
                replaced += 1;
                from = at + 6;
            }
            _ => {}
        }
    }
    replaced
}

fn hex4(json: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(json.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn repair(bytes: &[u8]) -> (String, usize) {
    let mut out = String::with_capacity(bytes.len() + 16);
    let mut replaced = 0;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
            replaced += 1;
        }
    }
    (out, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_kept() {
        assert_eq!(lossy("héllo ✓".into()), ("héllo ✓".to_string(), 0));
        let mut body = b"{\"a\":\"\xc3\xa9\"}".to_vec();
        assert_eq!(repair_in_place(&mut body), 0);
        assert_eq!(body, "{\"a\":\"é\"}".as_bytes());
    }

    #[test]
    fn each_invalid_byte_becomes_one_replacement() {
        let cases: &[(&[u8], &str, usize)] = &[
            (b"a\xff\xfeb", "a\u{FFFD}\u{FFFD}b", 2),
            // A truncated 3-byte sequence: Go's utf8.DecodeRune takes it one byte at a time.
            (b"x\xe2\x82y", "x\u{FFFD}\u{FFFD}y", 2),
            (b"\xc3", "\u{FFFD}", 1),
            // An encoded surrogate is not UTF-8.
            (b"\xed\xa0\x80", "\u{FFFD}\u{FFFD}\u{FFFD}", 3),
            (b"ok \xe2\x9c\x93 \x80", "ok ✓ \u{FFFD}", 1),
        ];
        for (bytes, want, n) in cases {
            assert_eq!(lossy(bytes.to_vec()), (want.to_string(), *n), "{bytes:?}");
            let mut body = bytes.to_vec();
            assert_eq!(repair_in_place(&mut body), *n);
            assert_eq!(body, want.as_bytes());
        }
    }

    #[test]
    fn lone_surrogate_escapes_become_replacements() {
        let cases: &[(&str, &str, usize)] = &[
            (r#"["x\ud800y"]"#, r#"["x\ufffdy"]"#, 1),
            (r#"["\uDC00"]"#, r#"["\ufffd"]"#, 1),
            // A pair is one character, and stays.
            (r#"["\ud83d\ude00"]"#, r#"["\ud83d\ude00"]"#, 0),
            // A high surrogate followed by a non-surrogate escape.
            (r#"["\ud83d\u0041"]"#, r#"["\ufffd\u0041"]"#, 1),
            // Two highs in a row.
            (r#"["\ud800\ud800"]"#, r#"["\ufffd\ufffd"]"#, 2),
            // An escaped backslash followed by text that looks like an escape.
            (r#"["\\ud800"]"#, r#"["\\ud800"]"#, 0),
            (r#"["\\\ud800"]"#, r#"["\\\ufffd"]"#, 1),
            // Too short to be an escape: left for the JSON parser to refuse.
            (r#"["\ud8"]"#, r#"["\ud8"]"#, 0),
            (r#"["\u00e9 plain"]"#, r#"["\u00e9 plain"]"#, 0),
        ];
        for (json, want, n) in cases {
            let mut bytes = json.as_bytes().to_vec();
            assert_eq!(repair_json_surrogates(&mut bytes), *n, "{json}");
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), *want, "{json}");
        }
    }
}
