//! Timestamp parsing: RFC 3339 text and Unix numbers of any precision, to nanoseconds.
//!
//! Timestamps are parsed here, never left to ClickHouse's best-effort parsing, so what is stored
//! is exactly what was sent.

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00.123456789Z`, `+02:00` offsets, `t`/`z` in
/// lower case and a space instead of `T` accepted) to nanoseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(range)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':'
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Digits past nanoseconds are dropped (truncated), as Go's time.Parse does.
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    // A leap second is folded into the next second, as most systems do.
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts a Unix timestamp of unknown precision to nanoseconds, guessing the unit from the
/// magnitude as VictoriaLogs does: below 1e11 seconds, below 1e14 milliseconds, below 1e17
/// microseconds, else nanoseconds. Fractions are kept.
pub fn unix_float_to_nanos(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let nanos = if v < 1e11 {
        v * 1e9
    } else if v < 1e14 {
        v * 1e6
    } else if v < 1e17 {
        v * 1e3
    } else {
        v
    };
    (nanos < i64::MAX as f64).then_some(nanos.round() as i64)
}

/// Integer form of [`unix_float_to_nanos`], exact for nanosecond values.
pub fn unix_int_to_nanos(v: u64) -> Option<i64> {
    let nanos = if v < 100_000_000_000 {
        v.checked_mul(1_000_000_000)?
    } else if v < 100_000_000_000_000 {
        v.checked_mul(1_000_000)?
    } else if v < 100_000_000_000_000_000 {
        v.checked_mul(1_000)?
    } else {
        v
    };
    i64::try_from(nanos).ok()
}

/// Exact form of [`unix_float_to_nanos`] for decimal text: `int` whole units and the digits
/// `frac` after the point, truncated past nanoseconds.
fn unix_decimal_to_nanos(int: u64, frac: &str) -> Option<i64> {
    let unit: u64 = if int < 100_000_000_000 {
        1_000_000_000
    } else if int < 100_000_000_000_000 {
        1_000_000
    } else if int < 100_000_000_000_000_000 {
        1_000
    } else {
        1
    };
    let mut sub = 0u64;
    let mut scale = unit;
    for c in frac.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        sub += u64::from(c - b'0') * scale;
    }
    i64::try_from(int.checked_mul(unit)?.checked_add(sub)?).ok()
}

/// Parses a timestamp given as text: RFC 3339, or a Unix number (integer or decimal).
pub fn parse_text(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty() {
        return unix_int_to_nanos(t.parse().ok()?);
    }
    if let Some((int, frac)) = t.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if digits(int) && digits(frac) {
            return unix_decimal_to_nanos(int.parse().ok()?, frac);
        }
    }
    parse_rfc3339(t)
}

/// Date (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `ns` since the epoch as RFC 3339 in UTC to the second, as Go's `time.RFC3339` writes it
/// (Loki's error messages use it): `2026-12-06T02:00:01Z`.
pub fn format_rfc3339_secs(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting_round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-12-06T02:00:01Z",
            "1969-12-31T23:59:59Z",
        ] {
            let ns = parse_rfc3339(text).unwrap();
            assert_eq!(format_rfc3339_secs(ns), text);
            assert_eq!(format_rfc3339_secs(ns + 999_999_999), text);
        }
    }

    #[test]
    fn rfc3339_cases() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-05-01T12:00:00Z", Some(1_714_564_800_000_000_000)),
            (
                "2024-05-01T12:00:00.123456789Z",
                Some(1_714_564_800_123_456_789),
            ),
            ("2024-05-01T12:00:00.1Z", Some(1_714_564_800_100_000_000)),
            (
                "2024-05-01T12:00:00.1234567891Z",
                Some(1_714_564_800_123_456_789),
            ),
            ("2024-05-01T14:00:00+02:00", Some(1_714_564_800_000_000_000)),
            ("2024-05-01T10:30:00-01:30", Some(1_714_564_800_000_000_000)),
            ("2024-05-01t12:00:00z", Some(1_714_564_800_000_000_000)),
            ("2024-05-01 12:00:00Z", Some(1_714_564_800_000_000_000)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000_000_000)),
            ("2023-02-29T00:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-05-01T24:00:00Z", None),
            ("2024-05-01T12:00:00", None),
            ("2024-05-01T12:00:00.Z", None),
            ("2024-05-01T12:00:00+0200", None),
            ("2024-05-01", None),
            ("not a time at all!!!", None),
            ("2024-05-01T12:00:00Zjunk", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), *want, "{text}");
        }
    }

    #[test]
    fn unix_units_by_magnitude() {
        assert_eq!(
            unix_int_to_nanos(1_714_564_800),
            Some(1_714_564_800_000_000_000)
        );
        assert_eq!(
            unix_int_to_nanos(1_714_564_800_123),
            Some(1_714_564_800_123_000_000)
        );
        assert_eq!(
            unix_int_to_nanos(1_714_564_800_123_456),
            Some(1_714_564_800_123_456_000)
        );
        assert_eq!(
            unix_int_to_nanos(1_714_564_800_123_456_789),
            Some(1_714_564_800_123_456_789)
        );
        assert_eq!(
            unix_float_to_nanos(1_714_564_800.5),
            Some(1_714_564_800_500_000_000)
        );
        assert_eq!(unix_float_to_nanos(-1.0), None);
        assert_eq!(unix_float_to_nanos(f64::NAN), None);
        assert_eq!(parse_text("1714564800"), Some(1_714_564_800_000_000_000));
        assert_eq!(parse_text("1714564800.25"), Some(1_714_564_800_250_000_000));
        assert_eq!(
            parse_text("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000_000_000)
        );
        assert_eq!(
            parse_text("1714564800123.5"),
            Some(1_714_564_800_123_500_000)
        );
        assert_eq!(
            parse_text("1714564800.1234567891"),
            Some(1_714_564_800_123_456_789)
        );
        assert_eq!(parse_text("1.2.3"), None);
        assert_eq!(parse_text("1."), None);
        assert_eq!(parse_text(""), None);
    }
}
