//! Request parameters of the query API, read as Loki reads them.

use store::time::{now_nanos, parse_rfc3339};

use crate::logql::lexer::prom_parse_duration;
use crate::logql::parse_duration;
use crate::logql::sql::{Direction, TimeRange};
use crate::{Error, Result};

const SECOND: i64 = 1_000_000_000;

/// Loki's cap on points per series of a range query (steps after the first).
const MAX_POINTS: i64 = 11_000;

/// Query string and form parameters, repeated keys kept in order (`match[]`).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=2` (URL-encoded).
    pub fn parse(query: &str) -> Params {
        Params(
            url_decode_pairs(query)
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        )
    }

    /// Adds the pairs of another encoded string (a form body).
    pub fn extend(&mut self, query: &str) {
        self.0.extend(Params::parse(query).0);
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required parameter.
    pub fn required(&self, key: &str) -> Result<&str> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::BadRequest(format!("missing required parameter {key:?}")))
    }

    /// A timestamp parameter, or `default`.
    pub fn time(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => parse_timestamp(v).ok_or_else(|| {
                Error::BadRequest(format!(
                    "could not parse '{key}' parameter: cannot parse {v:?} to a valid timestamp"
                ))
            }),
        }
    }

    /// `step` as Loki reads it: float seconds or a Prometheus duration, the range over 250
    /// points when absent; positive, and at most 11,000 points per series.
    pub fn step(&self, range: TimeRange) -> Result<i64> {
        let step = match self.get("step").filter(|v| !v.is_empty()) {
            None => default_step(range),
            Some(v) => parse_duration(v).ok_or_else(|| {
                Error::BadRequest(format!("cannot parse {v:?} to a valid duration"))
            })?,
        };
        if step <= 0 {
            return Err(Error::BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if (range.end - range.start) / step > MAX_POINTS {
            return Err(Error::BadRequest(
                "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter".into(),
            ));
        }
        Ok(step)
    }

    /// `since` as Loki reads it: a Prometheus duration (`1h`, `1d`), or `default`.
    pub fn since(&self, default: i64) -> Result<i64> {
        match self.get("since").filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => prom_parse_duration(v)
                .map_err(|e| Error::BadRequest(format!("could not parse 'since' parameter: {e}"))),
        }
    }

    /// `interval` as Loki reads it: a duration where zero means none; negative is refused.
    pub fn interval(&self) -> Result<Option<i64>> {
        match self.get("interval").filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match parse_duration(v) {
                Some(d) if d < 0 => Err(Error::BadRequest("interval must be >= 0".into())),
                Some(d) => Ok((d > 0).then_some(d)),
                None => Err(Error::BadRequest(format!(
                    "cannot parse {v:?} to a valid duration"
                ))),
            },
        }
    }

    /// A line limit as Loki reads `limit` and `line_limit`: positive and at most `u32::MAX`,
    /// or `default`.
    pub fn limit(&self, key: &str, default: u64) -> Result<u64> {
        let Some(v) = self.get(key).filter(|v| !v.is_empty()) else {
            return Ok(default);
        };
        let n: i64 = v
            .parse()
            .map_err(|_| Error::BadRequest(format!("invalid {key} {v:?}: not a number")))?;
        if n <= 0 {
            return Err(Error::BadRequest("limit must be a positive value".into()));
        }
        if n > i64::from(u32::MAX) {
            return Err(Error::BadRequest(format!(
                "{key} value {n} is out of range [0, {}]",
                u32::MAX
            )));
        }
        Ok(n as u64)
    }

    /// A non-negative integer parameter, or `default`.
    pub fn number(&self, key: &str, default: u64) -> Result<u64> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::BadRequest(format!("invalid {key} {v:?}: not a number"))),
        }
    }

    /// `direction`, backward by default.
    pub fn direction(&self) -> Result<Direction> {
        match self
            .get("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(other) => Err(Error::BadRequest(format!(
                "invalid direction {other:?}: use forward or backward"
            ))),
        }
    }

    /// `start`/`end`/`since` as Loki reads them: end defaults to now, start to end minus
    /// `since` (or `default_since`). Refuses start after end and ranges over `max_range`.
    pub fn range(&self, default_since: i64, max_range: i64) -> Result<TimeRange> {
        let now = now_nanos();
        let end = self.time("end", now)?;
        let since = self.since(default_since)?;
        // Loki: with `end` in the future, `since` counts back from now.
        let start = self.time("start", end.min(now) - since)?;
        if end < start {
            return Err(Error::BadRequest(
                "end timestamp must not be before or equal to start time".into(),
            ));
        }
        if end - start > max_range {
            return Err(Error::BadRequest(format!(
                "the query time range exceeds the limit (query length: {}, limit: {})",
                human_duration(end - start),
                human_duration(max_range)
            )));
        }
        Ok(TimeRange { start, end })
    }
}

/// Loki's timestamp rules: a number with a `.` is float seconds; an integer of at most 10
/// digits is seconds, a longer one nanoseconds; anything else RFC 3339.
pub fn parse_timestamp(v: &str) -> Option<i64> {
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        if !f.is_finite() || f.abs() > (i64::MAX / SECOND) as f64 {
            return None;
        }
        let secs = f.trunc();
        // Loki rounds the fraction to milliseconds.
        let frac_ms = ((f - secs) * 1000.0).round() as i64;
        return Some(secs as i64 * SECOND + frac_ms * 1_000_000);
    }
    if let Ok(n) = v.parse::<i64>() {
        let digits = v.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(SECOND)
        } else {
            Some(n)
        };
    }
    parse_rfc3339(v)
}

/// Loki's default step: the range over 250 points, at least one second.
pub fn default_step(range: TimeRange) -> i64 {
    (((range.end - range.start) / SECOND) / 250).max(1) * SECOND
}

/// `1h30m0s`-style text of a duration in ns, for messages.
pub fn human_duration(ns: i64) -> String {
    let secs = ns / SECOND;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    format!("{h}h{m}m{s}s")
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as space; invalid escapes are kept as they are.
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(a), Some(b)) => {
                        out.push((a * 16 + b) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_loki_reads_them() {
        assert_eq!(parse_timestamp("1700000000"), Some(1_700_000_000 * SECOND));
        assert_eq!(
            parse_timestamp("1700000000123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_timestamp("1700000000.5"),
            Some(1_700_000_000 * SECOND + 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z"),
            Some(1_700_000_000 * SECOND)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("1e400.0"), None);
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("%7Bapp%3D%22a%22%7D+x"), "{app=\"a\"} x");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        let p = Params::parse("match%5B%5D=%7Ba%3D%22b%22%7D&match[]={c=\"d\"}&limit=5");
        assert_eq!(p.all("match[]"), vec!["{a=\"b\"}", "{c=\"d\"}"]);
        assert_eq!(p.number("limit", 100).unwrap(), 5);
        assert!(p.number("match[]", 1).is_err());
    }

    #[test]
    fn ranges_and_steps() {
        let p = Params::parse("start=100&end=50");
        assert!(p.range(3600 * SECOND, i64::MAX).is_err());
        let p = Params::parse("start=0&end=7200");
        let r = p.range(3600 * SECOND, i64::MAX).unwrap();
        assert_eq!(r.end - r.start, 7200 * SECOND);
        assert_eq!(default_step(r), 28 * SECOND);
        assert_eq!(p.step(r).unwrap(), 28 * SECOND);
        assert!(p.range(0, 3600 * SECOND).is_err());

        let at = |q: &str| {
            Params::parse(q).step(TimeRange {
                start: 0,
                end: 11_000 * SECOND,
            })
        };
        assert_eq!(at("step=1").unwrap(), SECOND);
        assert_eq!(at("step=1.5").unwrap(), 1_500_000_000);
        assert_eq!(at("step=1m").unwrap(), 60 * SECOND);
        assert!(at("step=0.999").is_err(), "over 11,000 points");
        assert!(at("step=0").is_err());
        assert!(at("step=-1").is_err());
        assert!(at("step=h").is_err());

        let p = Params::parse("end=7200&since=1d");
        assert_eq!(p.since(0).unwrap(), 86_400 * SECOND);
        assert_eq!(
            p.range(0, i64::MAX).unwrap().start,
            7200 * SECOND - 86_400 * SECOND
        );
        assert!(Params::parse("since=HI!").since(0).is_err());
        assert_eq!(Params::parse("").since(5).unwrap(), 5);

        assert_eq!(Params::parse("interval=0").interval().unwrap(), None);
        assert_eq!(
            Params::parse("interval=5").interval().unwrap(),
            Some(5 * SECOND)
        );
        assert!(Params::parse("interval=-1").interval().is_err());
    }
}
