//! Go-compatible parsing of numbers, durations and byte sizes, with Go's error texts, because
//! Loki reports those texts in `__error_details__` and in parse errors. One implementation for
//! the LogQL lexer and parser (literals) and the pipeline (label values).

use std::fmt::Write as _;

pub(crate) use crate::logql::quote as go_quote;

/// The `quote` of Go's `time` package (used in duration errors): non-ASCII and control bytes as
/// `\xNN`.
pub(crate) fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseFloat(s, 64)`, returning Go's error text on failure.
pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    match parse_float_inner(s) {
        Some(v) if v.is_infinite() && !is_inf_literal(s) => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        )),
        Some(v) => Ok(v),
        None => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Like [`parse_float`] but without building the error text (hot paths that only need a yes/no).
pub(crate) fn parse_float_ok(s: &str) -> Option<f64> {
    match parse_float_inner(s) {
        Some(v) if v.is_infinite() && !is_inf_literal(s) => None,
        other => other,
    }
}

fn is_inf_literal(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']);
    t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity")
}

fn parse_float_inner(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    // Special values: an optional sign only before "inf"; "nan" takes no sign.
    let (neg, rest) = match b[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    let rb = rest.as_bytes();
    if rb.len() > 2 && rb[0] == b'0' && (rb[1] | 0x20) == b'x' {
        let v = parse_hex_float(&rest[2..])?;
        return Some(if neg { -v } else { v });
    }
    // Decimal: digits [. digits] [e [+-] digits], underscores only between digits.
    let mut saw_digit = false;
    let mut saw_dot = false;
    let mut i = 0;
    let mut has_underscore = false;
    while i < rb.len() {
        match rb[i] {
            b'0'..=b'9' => saw_digit = true,
            b'.' if !saw_dot => saw_dot = true,
            b'_' => has_underscore = true,
            _ => break,
        }
        i += 1;
    }
    if !saw_digit {
        return None;
    }
    if i < rb.len() && (rb[i] | 0x20) == b'e' {
        i += 1;
        if i < rb.len() && (rb[i] == b'+' || rb[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < rb.len() && (rb[i].is_ascii_digit() || rb[i] == b'_') {
            if rb[i] == b'_' {
                has_underscore = true;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != rb.len() {
        return None;
    }
    let v = if has_underscore {
        if !crate::logql::lexer::underscore_ok(rest) {
            return None;
        }
        rest.replace('_', "").parse::<f64>().ok()?
    } else {
        rest.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut mant: f64 = 0.0;
    let mut exp: i64 = 0;
    let mut saw_digit = false;
    let mut saw_dot = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            i += 1;
            continue;
        }
        if c == b'.' && !saw_dot {
            saw_dot = true;
            i += 1;
            continue;
        }
        let d = match (c as char).to_digit(16) {
            Some(d) => d,
            None => break,
        };
        saw_digit = true;
        mant = mant * 16.0 + f64::from(d);
        if saw_dot {
            exp -= 4;
        }
        i += 1;
    }
    if !saw_digit || i >= b.len() || (b[i] | 0x20) != b'p' {
        return None;
    }
    i += 1;
    let mut eneg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        eneg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut e: i64 = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        if b[i] != b'_' {
            e = (e * 10 + i64::from(b[i] - b'0')).min(100_000);
        }
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    exp += if eneg { -e } else { e };
    Some(mant * 2f64.powi(exp.clamp(-20_000, 20_000) as i32))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: base prefixes `0x`, `0o`, `0b`, and a leading `0` for
/// octal; underscores between digits.
pub(crate) fn parse_int_base0(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (neg, body) = match b[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let bb = body.as_bytes();
    if bb.is_empty() {
        return None;
    }
    let (base, digits, prefixed) = if bb.len() >= 2 && bb[0] == b'0' {
        match bb[1] | 0x20 {
            b'x' => (16, &body[2..], true),
            b'o' => (8, &body[2..], true),
            b'b' => (2, &body[2..], true),
            _ => (8, &body[1..], true),
        }
    } else {
        (10, body, false)
    };
    if body.contains('_') && !crate::logql::lexer::underscore_ok(body) {
        return None;
    }
    let mut v: u64 = 0;
    let mut any = false;
    for c in digits.bytes() {
        if c == b'_' {
            continue;
        }
        let d = (c as char).to_digit(base)?;
        v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
        any = true;
    }
    // "0" alone is octal zero.
    if !(any || prefixed && base == 8 && digits.is_empty()) {
        return None;
    }
    if neg {
        if v > 1u64 << 63 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", time_quote(orig));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Leading integer.
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Optional fraction.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if !s.is_empty() && s[0] == b'.' {
            s = &s[1..];
            let mut i = 0;
            let mut overflow = false;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                time_quote(orig)
            ));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    time_quote(&String::from_utf8_lossy(u)),
                    time_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `time.Duration.Seconds()`.
pub(crate) fn duration_seconds(ns: i64) -> f64 {
    let sec = ns / 1_000_000_000;
    let nsec = ns % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// `humanize.ParseBytes`: `"42 MB"` → 42000000, `"42 mib"` → 44040192.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let mut last = 0;
    let mut has_comma = false;
    for (i, c) in s.char_indices() {
        if !(c.is_ascii_digit() || c == '.' || c == ',') {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        last = i + c.len_utf8();
    }
    let num = &s[..last];
    let f = if has_comma {
        parse_float(&num.replace(',', ""))?
    } else {
        parse_float(num)?
    };
    let extra = s[last..].trim().to_lowercase();
    let m: u64 = match extra.as_str() {
        "b" | "" => 1,
        "kib" | "ki" => 1 << 10,
        "kb" | "k" => 1_000,
        "mib" | "mi" => 1 << 20,
        "mb" | "m" => 1_000_000,
        "gib" | "gi" => 1 << 30,
        "gb" | "g" => 1_000_000_000,
        "tib" | "ti" => 1 << 40,
        "tb" | "t" => 1_000_000_000_000,
        "pib" | "pi" => 1 << 50,
        "pb" | "p" => 1_000_000_000_000_000,
        "eib" | "ei" => 1 << 60,
        "eb" | "e" => 1_000_000_000_000_000_000,
        _ => return Err(format!("unhandled size name: {extra}")),
    };
    let v = f * m as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float("1_000"), Ok(1000.0));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert_eq!(parse_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("+nan").is_err());
        assert!(
            parse_float("1e400")
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert_eq!(
            parse_float("abc").unwrap_err(),
            "strconv.ParseFloat: parsing \"abc\": invalid syntax"
        );
        assert!(parse_float("1_").is_err());
        assert!(parse_float(" 1").is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int_base0("010"), Some(8));
        assert_eq!(parse_int_base0("0x1F"), Some(31));
        assert_eq!(parse_int_base0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int_base0("9223372036854775808"), None);
        assert_eq!(parse_int_base0("0"), Some(0));
        assert_eq!(parse_int_base0("1_000"), Some(1000));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("-2µs"), Ok(-2_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("2weeeeee").unwrap_err(),
            "time: unknown unit \"weeeeee\" in duration \"2weeeeee\""
        );
        assert_eq!(
            parse_duration("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert!(parse_duration("9999999999999999999h").is_err());
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("42 MB"), Ok(42_000_000));
        assert_eq!(parse_bytes("42mib"), Ok(44_040_192));
        assert_eq!(parse_bytes("1,000"), Ok(1000));
        assert_eq!(parse_bytes("2qb").unwrap_err(), "unhandled size name: qb");
    }
}
