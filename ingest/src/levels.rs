//! Level detection at ingest, as Loki's `discover_log_levels` does it (its distributor's
//! `FieldDetector`): every entry gets a `detected_level` structured-metadata pair, which Grafana's
//! Logs Drilldown reads for its level histogram and filters.
//!
//! In order, the first that gives a level:
//! 1. a `detected_level` the client sent, normalised;
//! 2. a level-like stream label ([`LEVEL_FIELDS`]), then a level-like metadata pair, normalised
//!    (an unknown word is kept as sent);
//! 3. an OTLP severity number (`severity_number` metadata), by OpenTelemetry's ranges;
//! 4. the line: a JSON object's first level-like key with a string value, or a logfmt line's
//!    level-like key (the earliest in [`LEVEL_FIELDS`] wins), normalised when it is a known
//!    level;
//! 5. the first level word in the line (`ERROR`, `warn`, ...) standing as a word;
//! 6. `unknown`.

use std::borrow::Cow;

/// The name of the detected level in the structured metadata.
pub const DETECTED_LEVEL: &str = "detected_level";

/// Level-like field names, in priority order (Loki's `DefaultAllowedLevelFields`).
pub const LEVEL_FIELDS: &[&str] = &[
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// Words that name a level in free text, in the order Loki tries them at one position.
const LEVEL_WORDS: &[(&str, &str)] = &[
    ("trace", "trace"),
    ("debug", "debug"),
    ("fatal", "fatal"),
    ("critical", "critical"),
    ("error", "error"),
    ("err", "error"),
    ("warning", "warn"),
    ("warn", "warn"),
    ("info", "info"),
];

/// The detected level of an entry with these stream `labels`, metadata `attributes` and `line`;
/// `None` when the client sent a `detected_level` that is already normal.
pub fn detect<'a>(
    labels: &'a [(String, String)],
    attributes: &'a [(String, String)],
    line: &str,
) -> Option<Cow<'a, str>> {
    let get = |pairs: &'a [(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(sent) = get(attributes, DETECTED_LEVEL) {
        let normal = normalise(sent);
        return (normal != sent).then(|| Cow::Owned(normal.into_owned()));
    }
    for pairs in [labels, attributes] {
        if let Some(level) = LEVEL_FIELDS.iter().find_map(|f| get(pairs, f)) {
            return Some(normalise(level));
        }
    }
    if let Some(number) = get(attributes, "severity_number") {
        return Some(Cow::Borrowed(from_severity_number(number)));
    }
    Some(Cow::Borrowed(from_line(line)))
}

/// A level in its normal form (`WARNING` is `warn`, `err` is `error`); other words as they are.
pub fn normalise(level: &str) -> Cow<'_, str> {
    Cow::Borrowed(known(level).unwrap_or(level))
}

/// The normal form of a known level word, any case.
fn known(level: &str) -> Option<&'static str> {
    const FORMS: &[(&[&str], &str)] = &[
        (&["trace", "trc"], "trace"),
        (&["debug", "dbg"], "debug"),
        (&["info", "inf", "information"], "info"),
        (&["warn", "wrn", "warning"], "warn"),
        (&["error", "err"], "error"),
        (&["critical"], "critical"),
        (&["fatal"], "fatal"),
    ];
    FORMS
        .iter()
        .find(|(words, _)| words.iter().any(|w| w.eq_ignore_ascii_case(level)))
        .map(|(_, normal)| *normal)
}

/// OpenTelemetry's severity ranges; `info` for a number that does not parse, as Loki.
fn from_severity_number(text: &str) -> &'static str {
    match text.trim().parse::<u32>() {
        Err(_) => "info",
        Ok(0) => "unknown",
        Ok(1..=4) => "trace",
        Ok(5..=8) => "debug",
        Ok(9..=12) => "info",
        Ok(13..=16) => "warn",
        Ok(17..=20) => "error",
        Ok(21..=24) => "fatal",
        Ok(_) => "unknown",
    }
}

/// The level of a line alone.
fn from_line(line: &str) -> &'static str {
    let trimmed = line.trim();
    let field = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        json_level(trimmed)
    } else if line.contains('=') {
        logfmt_level(line)
    } else {
        return word_level(line);
    };
    field.and_then(known).unwrap_or_else(|| word_level(line))
}

/// The string value of the first level-like key of a JSON object, in document order, at any
/// depth. A scan for `"key":"value"`, not a parse: an escaped quote inside a string can make it
/// miss a key that follows (then the line's words decide).
fn json_level(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(open) = memchr::memchr(b'"', &bytes[i..]).map(|p| i + p) {
        let close = open + 1 + memchr::memchr(b'"', &bytes[open + 1..])?;
        let token = &line[open + 1..close];
        i = close + 1;
        // A key is a string followed by `:`.
        let after = line[i..].trim_start();
        let Some(value) = after.strip_prefix(':') else {
            continue;
        };
        let value = value.trim_start();
        if !LEVEL_FIELDS.contains(&token) {
            continue;
        }
        if let Some(rest) = value.strip_prefix('"') {
            let end = memchr::memchr(b'"', rest.as_bytes())?;
            return Some(&rest[..end]);
        }
    }
    None
}

/// The value of the level-like logfmt key that comes first in [`LEVEL_FIELDS`].
fn logfmt_level(line: &str) -> Option<&str> {
    let mut best: Option<(usize, &str)> = None;
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let Some(after) = rest.strip_prefix('=') else {
            continue;
        };
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        rest = tail;
        let rank = LEVEL_FIELDS
            .iter()
            .position(|f| f.eq_ignore_ascii_case(key));
        if let Some(rank) = rank
            && best.is_none_or(|(b, _)| rank < b)
        {
            best = Some((rank, value));
            if rank == 0 {
                break;
            }
        }
    }
    best.map(|(_, v)| v)
}

/// The first level word standing as a word in the line, any case; `unknown` when none.
fn word_level(line: &str) -> &'static str {
    // A word starts after one of these (not `:`, so `misc:error` is no level)...
    let left = |c: u8| b" \t\n[({\"'=|".contains(&c);
    // ... and ends before one of these (`:` included, for `error: ...`).
    let right = |c: u8| b" \t\n[](){}:,!\"'=|".contains(&c);
    let bytes = line.as_bytes();
    for start in 0..bytes.len() {
        if start > 0 && !left(bytes[start - 1]) {
            continue;
        }
        for (word, level) in LEVEL_WORDS {
            let end = start + word.len();
            if end <= bytes.len()
                && bytes[start..end].eq_ignore_ascii_case(word.as_bytes())
                && bytes.get(end).is_none_or(|&c| right(c))
            {
                return level;
            }
        }
    }
    "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn level(labels: &[(&str, &str)], attrs: &[(&str, &str)], line: &str) -> Option<String> {
        detect(&pairs(labels), &pairs(attrs), line).map(Cow::into_owned)
    }

    #[test]
    fn labels_then_metadata_then_severity_number() {
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Pairs, Pairs, &str, &str)] = &[
            (&[("level", "WARNING")], &[("level", "debug")], "x", "warn"),
            (&[("lvl", "Err")], &[], "info: x", "error"),
            (&[], &[("severity", "INFO")], "error: x", "info"),
            (&[], &[("log.level", "crit")], "x", "crit"),
            (&[], &[("severity_text", "Fatal")], "x", "fatal"),
            (&[], &[("severity_number", "14")], "error: x", "warn"),
            (&[], &[("severity_number", "0")], "error: x", "unknown"),
            (&[], &[("severity_number", "x")], "x", "info"),
            (&[("app", "web")], &[("user", "error")], "x", "unknown"),
        ];
        for (labels, attrs, line, want) in cases {
            assert_eq!(
                level(labels, attrs, line).as_deref(),
                Some(*want),
                "{labels:?} {attrs:?} {line:?}"
            );
        }
    }

    #[test]
    fn a_detected_level_sent_is_normalised_or_kept() {
        assert_eq!(level(&[], &[("detected_level", "error")], "x"), None);
        assert_eq!(
            level(&[], &[("detected_level", "ERR")], "x").as_deref(),
            Some("error")
        );
        assert_eq!(level(&[], &[("detected_level", "loud")], "x"), None);
    }

    #[test]
    fn from_the_line() {
        let cases = [
            // JSON: the first level-like key with a string value, at any depth.
            (r#"{"msg":"all good","level":"ERROR"}"#, "error"),
            (r#"{"log":{"level":"wrn"},"msg":"x"}"#, "warn"),
            (r#"{"msg":"has level in it","severity":"debug"}"#, "debug"),
            (r#"{"level":5,"msg":"an error"}"#, "error"),
            (r#"{"level":"chatty","msg":"x"}"#, "unknown"),
            // logfmt: the key earliest in the list wins, wherever it is.
            (r#"ts=1 severity=info level=warn msg="x""#, "warn"),
            (r#"msg="disk full" lvl=err"#, "error"),
            ("msg=hello level=\"Information\"", "info"),
            ("msg=nothing here", "unknown"),
            // Words: the first standing as a word, any case.
            ("2024-05-01 ERROR something broke", "error"),
            ("[warn] low disk; error later", "warn"),
            ("debug: starting", "debug"),
            (
                "errors happen, terrorists do not, misc:error neither",
                "unknown",
            ),
            ("Critical failure", "critical"),
            ("FATAL", "fatal"),
            ("all fine", "unknown"),
            ("", "unknown"),
        ];
        for (line, want) in cases {
            assert_eq!(level(&[], &[], line).as_deref(), Some(want), "{line:?}");
        }
    }
}
