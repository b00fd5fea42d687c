//! The log pipeline: line filters, parsers, label filters, formatting, drop/keep and sample
//! extraction, with Loki's semantics (`pkg/logql/log`).
//!
//! A [`Pipeline`] is compiled once per query (regular expressions, templates, patterns and IP
//! ranges; invalid ones are `Error::BadRequest`) and then run on every fetched entry. Each entry
//! carries its labels by category as Loki does: stream labels, structured metadata and parsed
//! labels. A parsed label whose name is already a stream or metadata label gets the `_extracted`
//! suffix; parser and conversion failures set `__error__` and `__error_details__` and keep the
//! entry.

pub(crate) mod filter;
mod ip;
mod json;
mod labels;
mod logfmt;
pub(crate) mod pattern;
mod re;
mod template;

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::Error;
use crate::eval::Labels;
use crate::goconv as convert;
use crate::logql::ast::{self, Conversion, RangeOp};

use filter::{LabelFilter, LineFilter, StrMatcher};
use labels::{
    Category, DUPLICATE_SUFFIX, ERROR_DETAILS_LABEL, ERROR_LABEL, LabelsBuilder,
    PRESERVE_ERROR_LABEL,
};
use template::{LabelSource, Template};

const TEMPLATE_FORMAT_ERR: &str = "TemplateFormatErr";
const SAMPLE_EXTRACTION_ERR: &str = "SampleExtractionErr";

/// Loki's `sanitizeLabelKey`: trims, prefixes a leading digit with `_`, and turns every
/// character outside `[a-zA-Z0-9_]` into `_`.
pub(crate) fn sanitize_label_key(key: &str) -> String {
    let key = key.trim();
    if key.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(key.len() + 1);
    if key.as_bytes()[0].is_ascii_digit() {
        out.push('_');
    }
    for c in key.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    out
}

/// Bytes cut from a `&str` at ASCII delimiters as text: valid UTF-8 is borrowed without the
/// slower lossy decoder; anything else (from escapes) is repaired with U+FFFD.
pub(crate) fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Loki's `appendSanitized` for nested JSON names.
pub(crate) fn append_sanitized(to: &mut Vec<u8>, key: &[u8]) {
    let s = text(key);
    let key = s.trim();
    if key.is_empty() {
        return;
    }
    if to.is_empty() && key.as_bytes()[0].is_ascii_digit() {
        to.push(b'_');
    }
    for c in key.chars() {
        to.push(if c.is_ascii_alphanumeric() || c == '_' {
            c as u8
        } else {
            b'_'
        });
    }
}

/// Loki's ANSI colour sequence pattern (courtesy of acarl005/stripansi).
static ANSI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re::compile(
        "[\u{001B}\u{009B}][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{0007})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))",
    )
    .ok()
});

/// A `regexp` parser stage.
struct RegexpParser {
    re: Regex,
    /// (group index, label name) of the named groups.
    names: Vec<(usize, String)>,
}

enum Fmt {
    Rename { dst: String, src: String },
    Template { dst: String, t: Template },
}

enum NamedMatcher {
    Name(String),
    Matcher { name: String, m: StrMatcher },
}

impl NamedMatcher {
    fn new(n: &ast::NamedMatcher) -> crate::Result<Self> {
        Ok(match n {
            ast::NamedMatcher::Name(s) => NamedMatcher::Name(s.clone()),
            ast::NamedMatcher::Matcher(m) => NamedMatcher::Matcher {
                name: m.name.clone(),
                m: StrMatcher::prometheus(m)?,
            },
        })
    }
}

enum Stage {
    LineFilter(LineFilter),
    Json,
    JsonExpr(json::JsonExpressionParser),
    Logfmt(logfmt::LogfmtParser),
    LogfmtExpr(logfmt::LogfmtExpressionParser),
    Regexp(RegexpParser),
    Pattern(pattern::Pattern),
    Unpack,
    LabelFilter(LabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<Fmt>),
    Decolorize,
    Drop(Vec<NamedMatcher>),
    Keep(Vec<NamedMatcher>),
}

/// Loki moves line filters ahead of the stages that do not change the line (parsers other than
/// `unpack`, `label_format`, `drop`, `keep`, `decolorize`), up to the next label filter,
/// `line_format` or `unpack`, so they run before the costlier stages.
fn reorder(stages: &[ast::Stage]) -> Vec<&ast::Stage> {
    let mut result = Vec::with_capacity(stages.len());
    let mut line_filters = Vec::new();
    let mut others = Vec::new();
    fn flush<'s>(
        result: &mut Vec<&'s ast::Stage>,
        lf: &mut Vec<&'s ast::Stage>,
        ot: &mut Vec<&'s ast::Stage>,
    ) {
        result.append(lf);
        result.append(ot);
    }
    for s in stages {
        match s {
            ast::Stage::LabelFilter(_) => {
                flush(&mut result, &mut line_filters, &mut others);
                result.push(s);
            }
            ast::Stage::LineFilter(_) => line_filters.push(s),
            ast::Stage::LineFormat(_) | ast::Stage::Parser(ast::Parser::Unpack) => {
                others.push(s);
                flush(&mut result, &mut line_filters, &mut others);
            }
            _ => others.push(s),
        }
    }
    flush(&mut result, &mut line_filters, &mut others);
    result
}

fn compile_stage(s: &ast::Stage) -> crate::Result<Option<Stage>> {
    Ok(Some(match s {
        ast::Stage::LineFilter(f) => {
            let f = LineFilter::new(f)?;
            if f.is_noop() {
                return Ok(None);
            }
            Stage::LineFilter(f)
        }
        ast::Stage::Parser(p) => match p {
            ast::Parser::Json(ex) if ex.is_empty() => Stage::Json,
            ast::Parser::Json(ex) => {
                let mut exprs = Vec::with_capacity(ex.len());
                for e in ex {
                    if e.label.is_empty() {
                        return Err(Error::BadRequest(format!(
                            "invalid extracted label name '{}'",
                            e.label
                        )));
                    }
                    let path = json::parse_path(&e.expression).map_err(Error::BadRequest)?;
                    exprs.push((e.label.clone(), path));
                }
                Stage::JsonExpr(json::JsonExpressionParser { exprs })
            }
            ast::Parser::Logfmt {
                strict,
                keep_empty,
                extractions,
            } if extractions.is_empty() => Stage::Logfmt(logfmt::LogfmtParser {
                strict: *strict,
                keep_empty: *keep_empty,
            }),
            ast::Parser::Logfmt {
                strict,
                extractions,
                ..
            } => {
                let mut exprs = Vec::with_capacity(extractions.len());
                for e in extractions {
                    if e.label.is_empty() {
                        return Err(Error::BadRequest(format!(
                            "invalid extracted label name '{}'",
                            e.label
                        )));
                    }
                    let key = logfmt::parse_logfmt_expression(&e.expression)
                        .map_err(Error::BadRequest)?;
                    exprs.push((e.label.clone(), key));
                }
                Stage::LogfmtExpr(logfmt::LogfmtExpressionParser {
                    strict: *strict,
                    exprs,
                })
            }
            ast::Parser::Regexp(r) => Stage::Regexp(regexp_parser(r)?),
            ast::Parser::Pattern(p) => Stage::Pattern(
                pattern::Pattern::parser(p)
                    .map_err(|e| Error::BadRequest(format!("invalid pattern parser: {e}")))?,
            ),
            ast::Parser::Unpack => Stage::Unpack,
        },
        ast::Stage::LabelFilter(f) => {
            let f = LabelFilter::new(f)?;
            if f.is_noop() {
                return Ok(None);
            }
            Stage::LabelFilter(f)
        }
        ast::Stage::LineFormat(t) => Stage::LineFormat(
            Template::compile("line", t)
                .map_err(|e| Error::BadRequest(format!("invalid line template: {e}")))?,
        ),
        ast::Stage::LabelFormat(fmts) => {
            let mut out = Vec::with_capacity(fmts.len());
            let mut seen: Vec<&str> = Vec::new();
            for f in fmts {
                let dst = match f {
                    ast::LabelFormat::Rename { dst, .. }
                    | ast::LabelFormat::Template { dst, .. } => dst,
                };
                if dst == ERROR_LABEL {
                    return Err(Error::BadRequest(format!(
                        "{ERROR_LABEL} cannot be formatted"
                    )));
                }
                if seen.contains(&dst.as_str()) {
                    return Err(Error::BadRequest(format!(
                        "multiple label name '{dst}' not allowed in a single format operation"
                    )));
                }
                seen.push(dst);
                out.push(match f {
                    ast::LabelFormat::Rename { dst, src } => Fmt::Rename {
                        dst: dst.clone(),
                        src: src.clone(),
                    },
                    ast::LabelFormat::Template { dst, template } => Fmt::Template {
                        dst: dst.clone(),
                        t: Template::compile("label", template).map_err(|e| {
                            Error::BadRequest(format!("invalid template for label '{dst}': {e}"))
                        })?,
                    },
                });
            }
            Stage::LabelFormat(out)
        }
        ast::Stage::Decolorize => Stage::Decolorize,
        ast::Stage::Drop(items) => Stage::Drop(
            items
                .iter()
                .map(NamedMatcher::new)
                .collect::<crate::Result<_>>()?,
        ),
        ast::Stage::Keep(items) => Stage::Keep(
            items
                .iter()
                .map(NamedMatcher::new)
                .collect::<crate::Result<_>>()?,
        ),
    }))
}

fn regexp_parser(r: &str) -> crate::Result<RegexpParser> {
    let bad = |m: String| Error::BadRequest(format!("invalid regexp parser: {m}"));
    let re = re::compile(r).map_err(bad)?;
    let mut names = Vec::new();
    for (i, n) in re.capture_names().enumerate() {
        let Some(n) = n else { continue };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad(format!("invalid extracted label name '{n}'")));
        }
        if names.iter().any(|(_, m): &(usize, String)| m == n) {
            return Err(bad(format!("duplicate extracted label name '{n}'")));
        }
        names.push((i, n.to_string()));
    }
    if names.is_empty() {
        return Err(bad(
            "at least one named capture must be supplied".to_string()
        ));
    }
    Ok(RegexpParser { re, names })
}

impl LabelSource for LabelsBuilder<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.map_get(name)
    }

    fn sorted(&self) -> Vec<(String, String)> {
        self.sorted_map()
    }

    fn len(&self) -> usize {
        self.sorted_map().len()
    }
}

/// A compiled pipeline.
pub struct Pipeline {
    stages: Vec<Stage>,
}

/// An entry that passed: the (possibly rewritten) line and its labels by category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// The line after `line_format`, `unpack` and `decolorize`.
    pub line: String,
    /// Stream labels that were neither dropped nor overridden.
    pub stream: Labels,
    /// Structured metadata labels (a name colliding with a stream label carries `_extracted`).
    pub metadata: Labels,
    /// Labels added by parsers and `label_format`, and `__error__`/`__error_details__`.
    pub parsed: Labels,
}

impl Processed {
    /// All labels merged and sorted (the labels Loki returns for the entry without categorize-labels).
    pub fn labels(&self) -> Labels {
        labels::merge(&[&self.stream, &self.metadata, &self.parsed])
    }
}

impl Pipeline {
    /// Compiles the stages (regexes, templates, patterns, ip ranges); Error::BadRequest on invalid ones.
    pub fn new(stages: &[ast::Stage]) -> crate::Result<Self> {
        let mut out = Vec::with_capacity(stages.len());
        for s in reorder(stages) {
            if let Some(c) = compile_stage(s)? {
                out.push(c);
            }
        }
        Ok(Pipeline { stages: out })
    }

    /// True when the pipeline has no stage (a fast path for callers).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs one entry through; None when a filter drops it.
    /// `stream` = the stream's labels, `metadata` = structured metadata, both sorted.
    pub fn process(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        metadata: &Labels,
    ) -> Option<Processed> {
        let (line, lbs) = self.run(timestamp_ns, line, stream, metadata)?;
        let (stream, metadata, parsed) = lbs.into_categories();
        Some(Processed {
            line: line.into_owned(),
            stream,
            metadata,
            parsed,
        })
    }

    /// The stages over one entry: the final line and labels, `None` when dropped.
    fn run<'l, 's>(
        &self,
        ts: i64,
        line: &'l str,
        stream: &'s Labels,
        metadata: &Labels,
    ) -> Option<(Cow<'l, str>, LabelsBuilder<'s>)> {
        let mut lbs = LabelsBuilder::new(stream, metadata);
        let mut line: Cow<'l, str> = Cow::Borrowed(line);
        for stage in &self.stages {
            match stage {
                Stage::LineFilter(f) => {
                    if !f.keep(&line) {
                        return None;
                    }
                }
                Stage::Json => json::parse_all(&line, &mut lbs),
                Stage::JsonExpr(p) => p.process(&line, &mut lbs),
                Stage::Logfmt(p) => p.process(&line, &mut lbs),
                Stage::LogfmtExpr(p) => p.process(&line, &mut lbs),
                Stage::Regexp(p) => regexp_process(p, &line, &mut lbs),
                Stage::Pattern(p) => pattern_process(p, &line, &mut lbs),
                Stage::Unpack => {
                    if let Some(entry) = json::unpack(&line, &mut lbs) {
                        line = Cow::Owned(entry);
                    }
                }
                Stage::LabelFilter(f) => {
                    if !f.keep(&mut lbs) {
                        return None;
                    }
                }
                Stage::LineFormat(t) => {
                    if let Some(key) = t.simple_key() {
                        // Loki's fast path reads the label directly (never the error pair).
                        let v = lbs.get(key).unwrap_or("").to_string();
                        line = Cow::Owned(v);
                    } else {
                        match t.execute(&lbs, &line, ts) {
                            Ok(s) => line = Cow::Owned(s),
                            Err(e) => {
                                lbs.set_err(TEMPLATE_FORMAT_ERR);
                                lbs.set_err_details(e);
                            }
                        }
                    }
                }
                Stage::LabelFormat(fmts) => label_format(fmts, &line, ts, &mut lbs),
                Stage::Decolorize => {
                    if let Some(re) = ANSI.as_ref()
                        && let Cow::Owned(s) = re.replace_all(&line, "")
                    {
                        line = Cow::Owned(s);
                    }
                }
                Stage::Drop(items) => drop_labels(items, &mut lbs),
                Stage::Keep(items) => keep_labels(items, &mut lbs),
            }
        }
        Some((line, lbs))
    }
}

fn regexp_process(p: &RegexpParser, line: &str, lbs: &mut LabelsBuilder<'_>) {
    let Some(caps) = p.re.captures(line) else {
        return;
    };
    for (i, name) in &p.names {
        let key = sanitize_label_key(name);
        if key.is_empty() {
            continue;
        }
        let key = if lbs.collides(&key) {
            key + DUPLICATE_SUFFIX
        } else {
            key
        };
        if lbs.extracted(&key) {
            continue;
        }
        let v = caps.get(*i).map_or("", |m| m.as_str());
        lbs.set_parsed(key, v.to_string());
    }
}

fn pattern_process(p: &pattern::Pattern, line: &str, lbs: &mut LabelsBuilder<'_>) {
    let matches = p.matches(line);
    for (name, v) in p.names().iter().zip(matches) {
        let key = if lbs.collides(name) {
            format!("{name}{DUPLICATE_SUFFIX}")
        } else {
            name.clone()
        };
        if lbs.extracted(&key) {
            continue;
        }
        lbs.set_parsed(key, v.to_string());
    }
}

fn label_format(fmts: &[Fmt], line: &str, ts: i64, lbs: &mut LabelsBuilder<'_>) {
    // Templates of one stage all see the labels as they were at its first template.
    let mut snapshot: Vec<(String, String)> = Vec::new();
    for f in fmts {
        match f {
            Fmt::Rename { dst, src } => {
                if let Some((v, _)) = lbs.get_with_category(src) {
                    let v = v.to_string();
                    lbs.set(Category::Parsed, dst.clone(), v);
                    lbs.del(src);
                }
            }
            Fmt::Template { dst, t } => {
                if snapshot.is_empty() {
                    snapshot = lbs.sorted_map();
                }
                match t.execute(&snapshot, line, ts) {
                    Ok(s) => lbs.set_parsed(dst.clone(), s),
                    Err(e) => {
                        lbs.set_err(TEMPLATE_FORMAT_ERR);
                        lbs.set_err_details(e);
                    }
                }
            }
        }
    }
}

fn drop_labels(items: &[NamedMatcher], lbs: &mut LabelsBuilder<'_>) {
    for item in items {
        match item {
            NamedMatcher::Name(n) => {
                if n == ERROR_LABEL {
                    lbs.reset_err();
                } else if n == ERROR_DETAILS_LABEL {
                    lbs.reset_err_details();
                } else if lbs.get(n).is_some() {
                    lbs.del(n);
                }
            }
            NamedMatcher::Matcher { name, m } => {
                if name == ERROR_LABEL {
                    if m.matches(lbs.err()) {
                        lbs.reset_err();
                    }
                } else if name == ERROR_DETAILS_LABEL {
                    if m.matches(lbs.err_details()) {
                        lbs.reset_err_details();
                    }
                } else if m.matches(lbs.get(name).unwrap_or("")) {
                    lbs.del(name);
                }
            }
        }
    }
}

fn keep_labels(items: &[NamedMatcher], lbs: &mut LabelsBuilder<'_>) {
    if items.is_empty() {
        return;
    }
    let doomed: Vec<String> = lbs
        .unsorted()
        .into_iter()
        .filter(|(name, value)| {
            !matches!(
                *name,
                ERROR_LABEL | ERROR_DETAILS_LABEL | PRESERVE_ERROR_LABEL
            ) && !items.iter().any(|it| match it {
                NamedMatcher::Name(n) => n == name,
                NamedMatcher::Matcher { name: n, m } => n == name && m.matches(value),
            })
        })
        .map(|(n, _)| n.to_string())
        .collect();
    lbs.del_many(&doomed);
}

/// How a sample's value is obtained.
enum Extract {
    /// 1 per entry.
    Count,
    /// The line's length in bytes.
    Bytes,
    /// A label's value, converted, then post filters.
    Unwrap {
        label: String,
        conversion: Option<Conversion>,
        post: Vec<LabelFilter>,
    },
}

/// Turns entries into samples for a range aggregation.
pub struct SampleExtractor {
    pipeline: Pipeline,
    extract: Extract,
    /// `absent_over_time` aggregates without labels.
    no_labels: bool,
}

impl SampleExtractor {
    /// From the log range (its pipeline and optional unwrap with conversion and post filters) and the op:
    /// count_over_time/rate/absent → 1 per entry (rate with unwrap → the unwrapped value);
    /// bytes_over_time/bytes_rate → line length in bytes; the *_over_time ops with unwrap → the value.
    pub fn new(range: &ast::LogRange, op: RangeOp) -> crate::Result<Self> {
        let pipeline = Pipeline::new(&range.log.pipeline)?;
        let extract = match &range.unwrap {
            Some(u) => {
                if matches!(op, RangeOp::Count | RangeOp::Bytes | RangeOp::BytesRate) {
                    return Err(Error::BadRequest(format!(
                        "invalid aggregation {} with unwrap",
                        op.as_str()
                    )));
                }
                let post = u
                    .post_filters
                    .iter()
                    .map(LabelFilter::new)
                    .collect::<crate::Result<Vec<_>>>()?;
                Extract::Unwrap {
                    label: u.label.clone(),
                    conversion: u.conversion,
                    post,
                }
            }
            None => match op {
                RangeOp::Count | RangeOp::Rate | RangeOp::Absent => Extract::Count,
                RangeOp::Bytes | RangeOp::BytesRate => Extract::Bytes,
                _ => {
                    return Err(Error::BadRequest(format!(
                        "invalid aggregation {} without unwrap",
                        op.as_str()
                    )));
                }
            },
        };
        Ok(SampleExtractor {
            pipeline,
            extract,
            no_labels: op == RangeOp::Absent,
        })
    }

    /// The sample value and the series labels of one entry, None when filtered out.
    pub fn extract(
        &self,
        timestamp_ns: i64,
        line: &str,
        stream: &Labels,
        metadata: &Labels,
    ) -> Option<(f64, Labels)> {
        let (line, mut lbs) = self.pipeline.run(timestamp_ns, line, stream, metadata)?;
        let (value, unwrapped) = match &self.extract {
            Extract::Count => (1.0, None),
            Extract::Bytes => (line.len() as f64, None),
            Extract::Unwrap {
                label,
                conversion,
                post,
            } => {
                // An entry without the label (or with it empty) yields no sample, as in Loki.
                let raw = lbs.get(label).filter(|v| !v.is_empty())?.to_string();
                let converted = match conversion {
                    None => convert::parse_float(&raw),
                    Some(Conversion::Bytes) => convert::parse_bytes(&raw).map(|b| b as f64),
                    Some(Conversion::Duration | Conversion::DurationSeconds) => {
                        convert::parse_duration(&raw).map(convert::duration_seconds)
                    }
                };
                let v = match converted {
                    Ok(v) => v,
                    Err(e) => {
                        lbs.set_err(SAMPLE_EXTRACTION_ERR);
                        lbs.set_err_details(e);
                        0.0
                    }
                };
                for f in post {
                    if !f.keep(&mut lbs) {
                        return None;
                    }
                }
                (v, Some(label.as_str()))
            }
        };
        let has_err = lbs.has_err();
        let (s, m, p) = lbs.into_categories();
        if has_err {
            // Loki keeps every label of a failed entry so the error is visible.
            return Some((value, labels::merge(&[&s, &m, &p])));
        }
        if self.no_labels {
            return Some((value, Vec::new()));
        }
        let mut all = labels::merge(&[&s, &m, &p]);
        if let Some(u) = unwrapped {
            // The unwrapped label is not a series label (Loki groups `without` it); error
            // details alone do not survive that grouping either.
            all.retain(|(n, _)| n != u && n != ERROR_DETAILS_LABEL);
        }
        Some((value, all))
    }
}
