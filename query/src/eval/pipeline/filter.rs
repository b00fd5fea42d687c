//! Line filters (`|=`, `!=`, `|~`, `!~`, `|>`, `!>`, `ip(...)`, `or`) and label filters
//! (string, numeric, duration, bytes, ip, `and`/`or`), compiled once per query.

use regex::Regex;

use super::convert;
use super::ip::IpMatcher;
use super::labels::{ERROR_LABEL, LabelsBuilder};
use super::pattern::Pattern;
use super::re;
use crate::Error;
use crate::logql::ast::{self, CmpOp, LineFilterOp, MatchOp};

const LABEL_FILTER_ERR: &str = "LabelFilterErr";

/// The pattern of a `|>` or `!>` filter, or Loki's error for it.
pub(crate) fn line_filter_pattern(value: &str) -> crate::Result<Pattern> {
    Pattern::line_filter(value)
        .map_err(|e| Error::BadRequest(format!("invalid line filter pattern {value:?}: {e}")))
}

/// True when this alternative matches every line (`|= ""`, `|~ ""`, `|~ ".*"`), as Loki
/// reads it: an `or` chain drops it when another alternative is left, and a positive filter of
/// nothing else is no filter.
pub(crate) fn always_matches(op: LineFilterOp, value: &str) -> bool {
    match op {
        LineFilterOp::Contains | LineFilterOp::NotContains => value.is_empty(),
        LineFilterOp::Regex | LineFilterOp::NotRegex => matches!(value, "" | ".*"),
        LineFilterOp::Pattern | LineFilterOp::NotPattern => false,
    }
}

/// Loki's reading of the regex `.+`: any non-empty line (a regex `.` would not match a newline).
pub(crate) const NON_EMPTY_REGEX: &str = ".+";

/// One alternative of a line filter.
enum LineMatcher {
    /// Always matches (`|= ""`, `|~ ".*"`).
    True,
    /// Matches non-empty lines (`|~ ".+"`, as Loki simplifies it).
    NonEmpty,
    Contains(String),
    Regex(Regex),
    Pattern(Pattern),
    Ip(IpMatcher),
}

impl LineMatcher {
    fn matches(&self, line: &str) -> bool {
        match self {
            LineMatcher::True => true,
            LineMatcher::NonEmpty => !line.is_empty(),
            LineMatcher::Contains(f) => line.contains(f.as_str()),
            LineMatcher::Regex(r) => r.is_match(line),
            LineMatcher::Pattern(p) => p.test(line),
            LineMatcher::Ip(m) => m.matches_in(line),
        }
    }
}

/// A compiled line filter.
pub(crate) struct LineFilter {
    negative: bool,
    alts: Vec<LineMatcher>,
}

impl LineFilter {
    pub(crate) fn new(f: &ast::LineFilter) -> crate::Result<Self> {
        let negative = matches!(
            f.op,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        );
        let mut alts = Vec::with_capacity(f.alternatives.len());
        for alt in &f.alternatives {
            let m = if alt.ip {
                if !matches!(f.op, LineFilterOp::Contains | LineFilterOp::NotContains) {
                    return Err(Error::BadRequest("ip: invalid operation".to_string()));
                }
                LineMatcher::Ip(IpMatcher::parse(&alt.value).map_err(Error::BadRequest)?)
            } else {
                match f.op {
                    // Loki replaces these with non-regex filters, which differ on newlines.
                    op if always_matches(op, &alt.value) => LineMatcher::True,
                    LineFilterOp::Contains | LineFilterOp::NotContains => {
                        LineMatcher::Contains(alt.value.clone())
                    }
                    LineFilterOp::Regex | LineFilterOp::NotRegex => match alt.value.as_str() {
                        NON_EMPTY_REGEX => LineMatcher::NonEmpty,
                        v => LineMatcher::Regex(re::compile(v).map_err(|e| {
                            Error::BadRequest(format!("invalid line filter regex {v:?}: {e}"))
                        })?),
                    },
                    LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                        LineMatcher::Pattern(line_filter_pattern(&alt.value)?)
                    }
                }
            };
            alts.push(m);
        }
        // Loki's `or` chain drops always-true alternatives (`|= "" or "foo"` filters for
        // "foo"), unless nothing else is left.
        if !negative && alts.iter().any(|a| !matches!(a, LineMatcher::True)) {
            alts.retain(|a| !matches!(a, LineMatcher::True));
        }
        Ok(LineFilter { negative, alts })
    }

    /// True when the filter keeps every line (Loki drops such stages).
    pub(crate) fn is_noop(&self) -> bool {
        !self.negative && self.alts.iter().any(|a| matches!(a, LineMatcher::True))
    }

    /// Positive filters keep a line when any alternative matches, negative ones when none does.
    pub(crate) fn keep(&self, line: &str) -> bool {
        let any = self.alts.iter().any(|m| m.matches(line));
        any != self.negative
    }
}

/// A string matcher on a label value.
pub(crate) enum StrMatcher {
    Eq(String),
    Ne(String),
    Re(Regex),
    Nre(Regex),
    /// Loki's simplifications of `=~""`, `=~".*"` (always) and `=~".+"` (non-empty).
    Always(bool),
    NonEmpty(bool),
}

impl StrMatcher {
    /// A label filter matcher: regexes fully anchored (`^(?:re)$`).
    pub(crate) fn label_filter(m: &ast::Matcher) -> crate::Result<Self> {
        Self::build(m, false)
    }

    /// A `drop`/`keep` matcher: Prometheus semantics, `.` also matches newlines.
    pub(crate) fn prometheus(m: &ast::Matcher) -> crate::Result<Self> {
        Self::build(m, true)
    }

    fn build(m: &ast::Matcher, dot_nl: bool) -> crate::Result<Self> {
        let positive = matches!(m.op, MatchOp::Eq | MatchOp::Re);
        Ok(match m.op {
            MatchOp::Eq => StrMatcher::Eq(m.value.clone()),
            MatchOp::Neq => StrMatcher::Ne(m.value.clone()),
            MatchOp::Re | MatchOp::Nre => {
                if !dot_nl {
                    match m.value.as_str() {
                        "" | ".*" => return Ok(StrMatcher::Always(positive)),
                        ".+" => return Ok(StrMatcher::NonEmpty(positive)),
                        _ => {}
                    }
                }
                let pat = if dot_nl {
                    format!("(?s:{})", m.value)
                } else {
                    m.value.clone()
                };
                let r = re::compile_anchored(&pat).map_err(|e| {
                    Error::BadRequest(format!(
                        "invalid regular expression {:?} for label {}: {e}",
                        m.value, m.name
                    ))
                })?;
                if positive {
                    StrMatcher::Re(r)
                } else {
                    StrMatcher::Nre(r)
                }
            }
        })
    }

    pub(crate) fn matches(&self, v: &str) -> bool {
        match self {
            StrMatcher::Eq(s) => v == s,
            StrMatcher::Ne(s) => v != s,
            StrMatcher::Re(r) => r.is_match(v),
            StrMatcher::Nre(r) => !r.is_match(v),
            StrMatcher::Always(p) => *p,
            StrMatcher::NonEmpty(p) => v.is_empty() != *p,
        }
    }

    /// True when the matcher accepts every value.
    pub(crate) fn is_always(&self) -> bool {
        matches!(self, StrMatcher::Always(true))
    }
}

/// A compiled label filter.
pub(crate) enum LabelFilter {
    Str {
        name: String,
        m: StrMatcher,
    },
    Ip {
        name: String,
        negated: bool,
        m: IpMatcher,
    },
    Duration {
        name: String,
        op: CmpOp,
        value: i64,
    },
    Bytes {
        name: String,
        op: CmpOp,
        value: u64,
    },
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

fn cmp<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
    }
}

impl LabelFilter {
    pub(crate) fn new(f: &ast::LabelFilter) -> crate::Result<Self> {
        Ok(match f {
            ast::LabelFilter::Matcher(m) => LabelFilter::Str {
                name: m.name.clone(),
                m: StrMatcher::label_filter(m)?,
            },
            ast::LabelFilter::Ip {
                name,
                negated,
                pattern,
            } => LabelFilter::Ip {
                name: name.clone(),
                negated: *negated,
                m: IpMatcher::parse(pattern).map_err(Error::BadRequest)?,
            },
            ast::LabelFilter::Duration { name, op, value } => LabelFilter::Duration {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            ast::LabelFilter::Bytes { name, op, value } => LabelFilter::Bytes {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            ast::LabelFilter::Number { name, op, value } => LabelFilter::Number {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            ast::LabelFilter::And(a, b) => {
                LabelFilter::And(Box::new(Self::new(a)?), Box::new(Self::new(b)?))
            }
            ast::LabelFilter::Or(a, b) => {
                LabelFilter::Or(Box::new(Self::new(a)?), Box::new(Self::new(b)?))
            }
        })
    }

    /// True for a top-level filter that keeps everything (Loki drops the stage).
    pub(crate) fn is_noop(&self) -> bool {
        matches!(self, LabelFilter::Str { m, .. } if m.is_always())
    }

    /// Runs the filter: false drops the entry. Conversion failures set `__error__` (unless one is
    /// already set) and keep the entry, as in Loki.
    pub(crate) fn keep(&self, lbs: &mut LabelsBuilder<'_>) -> bool {
        match self {
            LabelFilter::And(a, b) => {
                let l = a.keep(lbs);
                let r = b.keep(lbs);
                l && r
            }
            LabelFilter::Or(a, b) => a.keep(lbs) || b.keep(lbs),
            LabelFilter::Str { name, m } => {
                if name == ERROR_LABEL {
                    return m.matches(lbs.err());
                }
                m.matches(lbs.get(name).unwrap_or(""))
            }
            LabelFilter::Ip { name, negated, m } => {
                if lbs.has_err() {
                    // Only string matchers filter entries with errors.
                    return true;
                }
                match lbs.get(name) {
                    None => false,
                    Some(v) => m.matches_in(v) != *negated,
                }
            }
            LabelFilter::Duration { name, op, value } => {
                let Some(v) = lbs.get(name) else { return false };
                match convert::parse_duration(v) {
                    Ok(d) => cmp(*op, d, *value),
                    Err(e) => conversion_error(lbs, e),
                }
            }
            LabelFilter::Bytes { name, op, value } => {
                let Some(v) = lbs.get(name) else { return false };
                match convert::parse_bytes(v) {
                    Ok(b) => cmp(*op, b, *value),
                    Err(e) => conversion_error(lbs, e),
                }
            }
            LabelFilter::Number { name, op, value } => {
                let Some(v) = lbs.get(name) else { return false };
                match convert::parse_float(v) {
                    Ok(f) => cmp(*op, f, *value),
                    Err(e) => conversion_error(lbs, e),
                }
            }
        }
    }
}

fn conversion_error(lbs: &mut LabelsBuilder<'_>, details: String) -> bool {
    // Don't overwrite what might be a more useful error.
    if !lbs.has_err() {
        lbs.set_err(LABEL_FILTER_ERR);
        lbs.set_err_details(details);
    }
    true
}
