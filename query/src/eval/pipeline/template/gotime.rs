//! Go's `time.Time` as templates see it: layout-based formatting and parsing ("2006-01-02"),
//! `String()`, Unix conversions. Times are UTC or a fixed offset (no time zone database).

use std::fmt::Write as _;

use store::time::civil_from_days;

/// An instant with the offset it is shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GoTime {
    /// Seconds since the Unix epoch.
    pub(crate) secs: i64,
    /// Nanoseconds within the second.
    pub(crate) nanos: u32,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
    /// True for UTC itself (named "UTC"), false for a fixed offset parsed from text.
    pub(crate) utc: bool,
}

/// Unix seconds of Go's zero time, January 1, year 1.
const ZERO_SECS: i64 = -62_135_596_800;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down wall clock.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    yday: u32,
    wday: u32,
}

impl GoTime {
    /// `time.Unix(secs, nanos)` in UTC.
    pub(crate) fn from_unix(secs: i64, nanos: i64) -> Self {
        let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        GoTime::from_unix_nanos_i128(total)
    }

    fn from_unix_nanos_i128(total: i128) -> Self {
        let secs = total.div_euclid(1_000_000_000);
        let nanos = total.rem_euclid(1_000_000_000) as u32;
        GoTime {
            secs: secs.clamp(i128::from(i64::MIN / 2), i128::from(i64::MAX / 2)) as i64,
            nanos,
            offset: 0,
            utc: true,
        }
    }

    /// Go's zero `time.Time`.
    pub(crate) fn zero() -> Self {
        GoTime {
            secs: ZERO_SECS,
            nanos: 0,
            offset: 0,
            utc: true,
        }
    }

    /// The current time.
    pub(crate) fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        GoTime {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
            offset: 0,
            utc: true,
        }
    }

    /// The same instant in UTC (`t.In(UTC)`; this engine has no other zones).
    pub(crate) fn in_utc(self) -> Self {
        GoTime {
            offset: 0,
            utc: true,
            ..self
        }
    }

    pub(crate) fn unix(&self) -> i64 {
        self.secs
    }

    pub(crate) fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.secs == ZERO_SECS && self.nanos == 0
    }

    fn civil(&self) -> Civil {
        let local = self.secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32 + 1;
        let wday = (days + 4).rem_euclid(7) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            min: sod / 60 % 60,
            sec: sod % 60,
            yday,
            wday,
        }
    }

    fn zone_name(&self) -> String {
        if self.utc {
            return "UTC".to_string();
        }
        let mut s = String::new();
        let z = self.offset / 60;
        let (sign, z) = if z < 0 { ('-', -z) } else { ('+', z) };
        let _ = write!(s, "{sign}{:02}{:02}", z / 60, z % 60);
        s
    }

    /// `t.String()`: "2006-01-02 15:04:05.999999999 -0700 MST".
    pub(crate) fn to_go_string(self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// Year, month, day... accessors for template method calls.
    pub(crate) fn field(&self, name: &str) -> Option<i64> {
        let c = self.civil();
        Some(match name {
            "Year" => c.year,
            "Day" => i64::from(c.day),
            "Hour" => i64::from(c.hour),
            "Minute" => i64::from(c.min),
            "Second" => i64::from(c.sec),
            "Nanosecond" => i64::from(self.nanos),
            "YearDay" => i64::from(c.yday),
            _ => return None,
        })
    }

    /// Month name (`t.Month()` prints as its name).
    pub(crate) fn month_name(&self) -> &'static str {
        MONTHS[(self.civil().month - 1) as usize]
    }

    /// Weekday name.
    pub(crate) fn weekday_name(&self) -> &'static str {
        DAYS[self.civil().wday as usize]
    }

    /// `t.Format(layout)`.
    pub(crate) fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::with_capacity(layout.len() + 10);
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            match std {
                Std::Year => {
                    let _ = write!(out, "{:02}", c.year.rem_euclid(100));
                }
                Std::LongYear => {
                    if c.year < 0 {
                        let _ = write!(out, "-{:04}", -c.year);
                    } else {
                        let _ = write!(out, "{:04}", c.year);
                    }
                }
                Std::Month => out.push_str(&MONTHS[(c.month - 1) as usize][..3]),
                Std::LongMonth => out.push_str(MONTHS[(c.month - 1) as usize]),
                Std::NumMonth => {
                    let _ = write!(out, "{}", c.month);
                }
                Std::ZeroMonth => {
                    let _ = write!(out, "{:02}", c.month);
                }
                Std::WeekDay => out.push_str(&DAYS[c.wday as usize][..3]),
                Std::LongWeekDay => out.push_str(DAYS[c.wday as usize]),
                Std::Day => {
                    let _ = write!(out, "{}", c.day);
                }
                Std::UnderDay => {
                    let _ = write!(out, "{:>2}", c.day);
                }
                Std::ZeroDay => {
                    let _ = write!(out, "{:02}", c.day);
                }
                Std::UnderYearDay => {
                    let _ = write!(out, "{:>3}", c.yday);
                }
                Std::ZeroYearDay => {
                    let _ = write!(out, "{:03}", c.yday);
                }
                Std::Hour => {
                    let _ = write!(out, "{:02}", c.hour);
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let h = if c.hour % 12 == 0 { 12 } else { c.hour % 12 };
                    if std == Std::Hour12 {
                        let _ = write!(out, "{h}");
                    } else {
                        let _ = write!(out, "{h:02}");
                    }
                }
                Std::Minute => {
                    let _ = write!(out, "{}", c.min);
                }
                Std::ZeroMinute => {
                    let _ = write!(out, "{:02}", c.min);
                }
                Std::Second => {
                    let _ = write!(out, "{}", c.sec);
                }
                Std::ZeroSecond => {
                    let _ = write!(out, "{:02}", c.sec);
                }
                Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Std::Tz(kind) => {
                    if kind.iso && self.offset == 0 {
                        out.push('Z');
                        continue;
                    }
                    let z = self.offset;
                    let (sign, z) = if z < 0 { ('-', -z) } else { ('+', z) };
                    out.push(sign);
                    let _ = write!(out, "{:02}", z / 3600);
                    if kind.minutes {
                        if kind.colon {
                            out.push(':');
                        }
                        let _ = write!(out, "{:02}", z / 60 % 60);
                    }
                    if kind.seconds {
                        if kind.colon {
                            out.push(':');
                        }
                        let _ = write!(out, "{:02}", z % 60);
                    }
                }
                Std::ZoneName => out.push_str(&self.zone_name()),
                Std::Frac { sep, digits, trim } => {
                    let frac = format!("{:09}", self.nanos);
                    let mut f = &frac[..digits.min(9)];
                    if trim {
                        f = f.trim_end_matches('0');
                        if f.is_empty() {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(f);
                    if !trim && digits > 9 {
                        out.extend(std::iter::repeat_n('0', digits - 9));
                    }
                }
            }
        }
        out
    }

    /// `time.Parse(layout, value)` in UTC; the error text is short (callers ignore it).
    pub(crate) fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
        let bad = || {
            Err(format!(
                "parsing time {value:?} as {layout:?}: cannot parse"
            ))
        };
        let mut v = value;
        let mut rest = layout;
        let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
        let mut yday: Option<u32> = None;
        let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let mut offset: Option<i32> = None;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            v = match skip(v, prefix) {
                Some(v) => v,
                None => return bad(),
            };
            let Some(std) = std else {
                break;
            };
            rest = suffix;
            match std {
                Std::Year => {
                    let Some((n, r)) = take_digits(v, 2, 2) else {
                        return bad();
                    };
                    year = if n >= 69 { 1900 + n } else { 2000 + n };
                    v = r;
                }
                Std::LongYear => {
                    let Some((n, r)) = take_digits(v, 4, 4) else {
                        return bad();
                    };
                    year = n;
                    v = r;
                }
                Std::Month | Std::LongMonth => {
                    let mut found = None;
                    for (i, m) in MONTHS.iter().enumerate() {
                        let name = if std == Std::Month { &m[..3] } else { m };
                        if v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name) {
                            found = Some((i as u32 + 1, name.len()));
                            break;
                        }
                    }
                    let Some((m, l)) = found else { return bad() };
                    month = m;
                    v = &v[l..];
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let mut found = None;
                    for d in DAYS {
                        let name = if std == Std::WeekDay { &d[..3] } else { d };
                        if v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name) {
                            found = Some(name.len());
                            break;
                        }
                    }
                    let Some(l) = found else { return bad() };
                    v = &v[l..];
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let min = if std == Std::ZeroMonth { 2 } else { 1 };
                    let Some((n, r)) = take_digits(v, min, 2) else {
                        return bad();
                    };
                    if !(1..=12).contains(&n) {
                        return bad();
                    }
                    month = n as u32;
                    v = r;
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    let min = if std == Std::ZeroDay { 2 } else { 1 };
                    let Some((n, r)) = take_digits(v, min, 2) else {
                        return bad();
                    };
                    day = n as u32;
                    v = r;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    if std == Std::UnderYearDay {
                        v = v.trim_start_matches(' ');
                    }
                    let min = if std == Std::ZeroYearDay { 3 } else { 1 };
                    let Some((n, r)) = take_digits(v, min, 3) else {
                        return bad();
                    };
                    yday = Some(n as u32);
                    v = r;
                }
                Std::Hour => {
                    let Some((n, r)) = take_digits(v, 1, 2) else {
                        return bad();
                    };
                    if n > 23 {
                        return bad();
                    }
                    hour = n as u32;
                    v = r;
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let min = if std == Std::ZeroHour12 { 2 } else { 1 };
                    let Some((n, r)) = take_digits(v, min, 2) else {
                        return bad();
                    };
                    if !(0..=12).contains(&n) {
                        return bad();
                    }
                    hour = n as u32;
                    v = r;
                }
                Std::Minute | Std::ZeroMinute => {
                    let width = if std == Std::ZeroMinute { 2 } else { 1 };
                    let Some((n, r)) = take_digits(v, width, 2) else {
                        return bad();
                    };
                    if n > 59 {
                        return bad();
                    }
                    min = n as u32;
                    v = r;
                }
                Std::Second | Std::ZeroSecond => {
                    let minw = if std == Std::ZeroSecond { 2 } else { 1 };
                    let Some((n, r)) = take_digits(v, minw, 2) else {
                        return bad();
                    };
                    if n > 59 {
                        return bad();
                    }
                    sec = n as u32;
                    v = r;
                    // A fraction in the value without one in the layout is still accepted.
                    let next_is_frac =
                        matches!(next_std_chunk(rest), ("", Some(Std::Frac { .. }), _));
                    if !next_is_frac
                        && v.len() >= 2
                        && (v.starts_with('.') || v.starts_with(','))
                        && v.as_bytes()[1].is_ascii_digit()
                    {
                        let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nanos = frac_nanos(&v[1..1 + n]);
                        v = &v[1 + n..];
                    }
                }
                Std::PM | Std::Pm => {
                    if v.len() < 2 {
                        return bad();
                    }
                    match &v[..2] {
                        "PM" | "pm" => pm = Some(true),
                        "AM" | "am" => pm = Some(false),
                        _ => return bad(),
                    }
                    v = &v[2..];
                }
                Std::Tz(kind) => {
                    if kind.iso && v.starts_with('Z') {
                        v = &v[1..];
                        offset = Some(0);
                        continue;
                    }
                    let b = v.as_bytes();
                    if b.is_empty() || (b[0] != b'+' && b[0] != b'-') {
                        return bad();
                    }
                    let neg = b[0] == b'-';
                    let mut r = &v[1..];
                    let Some((hh, r2)) = take_digits(r, 2, 2) else {
                        return bad();
                    };
                    r = r2;
                    let mut mm = 0;
                    let mut ss = 0;
                    if kind.minutes {
                        if kind.colon {
                            let Some(r2) = r.strip_prefix(':') else {
                                return bad();
                            };
                            r = r2;
                        }
                        let Some((m, r2)) = take_digits(r, 2, 2) else {
                            return bad();
                        };
                        mm = m;
                        r = r2;
                    }
                    if kind.seconds {
                        if kind.colon {
                            let Some(r2) = r.strip_prefix(':') else {
                                return bad();
                            };
                            r = r2;
                        }
                        let Some((s, r2)) = take_digits(r, 2, 2) else {
                            return bad();
                        };
                        ss = s;
                        r = r2;
                    }
                    let off = (hh * 3600 + mm * 60 + ss) as i32;
                    offset = Some(if neg { -off } else { off });
                    v = r;
                }
                Std::ZoneName => {
                    if let Some(r) = v.strip_prefix("UTC") {
                        v = r;
                        offset.get_or_insert(0);
                        continue;
                    }
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return bad();
                    }
                    v = &v[n..];
                }
                Std::Frac { digits, trim, .. } => {
                    let b = v.as_bytes();
                    if b.is_empty() || (b[0] != b'.' && b[0] != b',') {
                        if trim {
                            continue;
                        }
                        return bad();
                    }
                    let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    if !trim && n < digits {
                        return bad();
                    }
                    let take = if trim { n } else { digits };
                    nanos = frac_nanos(&v[1..1 + take]);
                    v = &v[1 + take..];
                }
            }
        }
        if !v.is_empty() {
            return Err(format!("parsing time {value:?}: extra text: {v:?}"));
        }
        if let Some(pm) = pm {
            if pm && hour < 12 {
                hour += 12;
            } else if !pm && hour == 12 {
                hour = 0;
            }
        }
        if let Some(yd) = yday {
            let max = if is_leap(year) { 366 } else { 365 };
            if yd < 1 || yd > max {
                return bad();
            }
            let days = days_from_civil(year, 1, 1) + i64::from(yd) - 1;
            let (_, m, d) = civil_from_days(days);
            month = m;
            day = d;
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(format!("parsing time {value:?}: day out of range"));
        }
        let days = days_from_civil(year, month, day);
        let local = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
        let off = offset.unwrap_or(0);
        Ok(GoTime {
            secs: local - i64::from(off),
            nanos,
            offset: off,
            utc: off == 0,
        })
    }
}

fn frac_nanos(digits: &str) -> u32 {
    let mut n: u32 = 0;
    for (i, c) in digits.bytes().enumerate() {
        if i >= 9 {
            break;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    for _ in digits.len().min(9)..9 {
        n *= 10;
    }
    n
}

/// Reads between `min` and `max` ASCII digits.
fn take_digits(v: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

/// Go's `skip`: literal layout text, runs of spaces matching runs of spaces.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while !prefix.is_empty() {
        if prefix.starts_with(' ') {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        let c = prefix.chars().next()?;
        if !value.starts_with(c) {
            return None;
        }
        prefix = &prefix[c.len_utf8()..];
        value = &value[c.len_utf8()..];
    }
    Some(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TzKind {
    iso: bool,
    colon: bool,
    minutes: bool,
    seconds: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    Year,
    LongYear,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PM,
    Pm,
    Tz(TzKind),
    ZoneName,
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

fn starts_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: literal prefix, the layout element, the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..i + s.len()) == Some(s);
    for i in 0..b.len() {
        let r = |n: usize| &layout[i + n..];
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return (&layout[..i], Some(Std::LongMonth), r(7));
                }
                if !starts_lower(r(3)) {
                    return (&layout[..i], Some(Std::Month), r(3));
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        return (&layout[..i], Some(Std::LongWeekDay), r(6));
                    }
                    if !starts_lower(r(3)) {
                        return (&layout[..i], Some(Std::WeekDay), r(3));
                    }
                }
                if at(i, "MST") {
                    return (&layout[..i], Some(Std::ZoneName), r(3));
                }
            }
            b'0' => {
                if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) {
                    let std = [
                        Std::ZeroMonth,
                        Std::ZeroDay,
                        Std::ZeroHour12,
                        Std::ZeroMinute,
                        Std::ZeroSecond,
                        Std::Year,
                    ][(b[i + 1] - b'1') as usize];
                    return (&layout[..i], Some(std), r(2));
                }
                if at(i, "002") {
                    return (&layout[..i], Some(Std::ZeroYearDay), r(3));
                }
            }
            b'1' => {
                if i + 1 < b.len() && b[i + 1] == b'5' {
                    return (&layout[..i], Some(Std::Hour), r(2));
                }
                return (&layout[..i], Some(Std::NumMonth), r(1));
            }
            b'2' => {
                if at(i, "2006") {
                    return (&layout[..i], Some(Std::LongYear), r(4));
                }
                return (&layout[..i], Some(Std::Day), r(1));
            }
            b'_' => {
                if i + 1 < b.len() && b[i + 1] == b'2' {
                    if at(i + 1, "2006") {
                        return (&layout[..i + 1], Some(Std::LongYear), r(5));
                    }
                    return (&layout[..i], Some(Std::UnderDay), r(2));
                }
                if at(i, "__2") {
                    return (&layout[..i], Some(Std::UnderYearDay), r(3));
                }
            }
            b'3' => return (&layout[..i], Some(Std::Hour12), r(1)),
            b'4' => return (&layout[..i], Some(Std::Minute), r(1)),
            b'5' => return (&layout[..i], Some(Std::Second), r(1)),
            b'P' if i + 1 < b.len() && b[i + 1] == b'M' => {
                return (&layout[..i], Some(Std::PM), r(2));
            }
            b'p' if i + 1 < b.len() && b[i + 1] == b'm' => {
                return (&layout[..i], Some(Std::Pm), r(2));
            }
            b'-' | b'Z' => {
                let iso = b[i] == b'Z';
                let forms: [(&str, bool, bool, bool); 5] = [
                    ("070000", false, true, true),
                    ("07:00:00", true, true, true),
                    ("0700", false, true, false),
                    ("07:00", true, true, false),
                    ("07", false, false, false),
                ];
                for (f, colon, minutes, seconds) in forms {
                    if at(i + 1, f) {
                        return (
                            &layout[..i],
                            Some(Std::Tz(TzKind {
                                iso,
                                colon,
                                minutes,
                                seconds,
                            })),
                            r(1 + f.len()),
                        );
                    }
                }
            }
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if !(j < b.len() && b[j].is_ascii_digit()) {
                    return (
                        &layout[..i],
                        Some(Std::Frac {
                            sep: b[i] as char,
                            digits: j - (i + 1),
                            trim: ch == b'9',
                        }),
                        &layout[j..],
                    );
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let t = GoTime::from_unix(1_661_518_453, 244_672_570);
        assert_eq!(t.to_go_string(), "2022-08-26 12:54:13.24467257 +0000 UTC");
        assert_eq!(t.format("2006-01-02"), "2022-08-26");
        assert_eq!(t.format("Mon Jan _2 3:04PM"), "Fri Aug 26 12:54PM");
        assert_eq!(
            GoTime::zero().to_go_string(),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        let p = GoTime::parse(
            "2006-01-02T15:04:05.999999999Z",
            "2023-03-10T01:32:40.340485723Z",
        )
        .unwrap();
        assert_eq!(p.unix_nanos(), 1_678_411_960_340_485_723);
        let p = GoTime::parse("2006-01-02T15:04:05Z07:00", "2021-01-01T10:00:00-07:00").unwrap();
        assert_eq!(p.unix(), 1_609_520_400);
        assert_eq!(p.to_go_string(), "2021-01-01 10:00:00 -0700 -0700");
        assert!(GoTime::parse("2006-01-02", "2021-02-30").is_err());
        let p = GoTime::parse("02/Jan/2006:15:04:05 -0700", "10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(p.unix(), 971_211_336);
    }
}
