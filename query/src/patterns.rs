//! Log patterns for `GET /loki/api/v1/patterns`, mined at query time.
//!
//! Loki mines patterns at ingest in its pattern ingester (the Drain algorithm) and answers from
//! what each ingester remembers. sluice mines at query time instead, from a bounded sample of the
//! stored lines, and then counts every pattern over all the lines of the range in ClickHouse
//! ([`crate::logql::sql::pattern_counts`]) with the matching rule of the `|>` line filter. So:
//!
//! * a pattern's count in a step is exactly the number of lines in that step that
//!   `{selector} |> "pattern"` selects, which is what Grafana's Logs Drilldown shows when the
//!   pattern is included;
//! * every replica writing to the same ClickHouse gives the same answer, and nothing is mined or
//!   kept at ingest;
//! * a line may match more than one pattern (Loki counts each line once, in the cluster Drain
//!   put it in).
//!
//! The miner is a simplified Drain (He et al., 2017). A line is cut into words and the runs of
//! separators between them (whitespace and punctuation such as `=`, `"`, `:`); lines with the
//! same separators in the same order and the same first word (unless it has a digit) form a
//! group; in a group a line joins the cluster whose template has the most words equal to its
//! own, when at least [`SIMILARITY`] of them are, and the words that differ become `<_>`.
//! Words that never vary stay, numbers included (`ERROR job <_> failed: connection refused to
//! 10.1.2.3:5432`, as Loki shows it). Because separators are never variables, a `<_>` always
//! stands for one non-empty word between two fixed separators, and every line of a cluster
//! matches its template as `|>` reads it.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::Result;
use crate::engine::Engine;
use crate::eval::pipeline::pattern::Pattern;
use crate::logql::ast::Matcher;
use crate::logql::sql::{self, Streams, TimeRange};

/// The placeholder of a variable word, as Loki writes it.
pub const PLACEHOLDER: &str = "<_>";

/// Share of a group's words that must be equal for a line to join a cluster (Drain's
/// similarity threshold). Loki uses 0.3 below a prefix tree of up to 30 words that already
/// keeps unlike lines apart; with only the first word as prefix here, 0.5 keeps
/// `INFO job 1 finished in 2s` and `WARN job 3 retrying after Timeout` apart.
const SIMILARITY: f64 = 0.5;

/// Lines longer than this are not mined (Loki's `MaxAllowedLineLength`); they are still counted
/// when they match a pattern.
pub const MAX_LINE_BYTES: usize = 3000;

/// Lines with more words than this are not mined.
const MAX_WORDS: usize = 256;

/// Clusters kept per separator group: a group that would need more is too varied to summarise.
const MAX_CLUSTERS_PER_GROUP: usize = 64;

/// Bytes that separate words. Never part of a variable, so `<_>` cannot swallow structure.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '=' | ','
                | ';'
                | ':'
                | '"'
                | '\''
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '<'
                | '>'
                | '|'
                | '`'
        )
}

/// A line cut into separator runs and words: `seps[0] words[0] seps[1] ... words[n-1] seps[n]`
/// (the first and last runs may be empty).
#[derive(Debug, PartialEq)]
struct Tokens<'a> {
    seps: Vec<&'a str>,
    words: Vec<&'a str>,
}

fn tokenize(line: &str) -> Tokens<'_> {
    let mut seps = Vec::new();
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        let word_at = rest.find(|c: char| !is_separator(c)).unwrap_or(rest.len());
        seps.push(&rest[..word_at]);
        rest = &rest[word_at..];
        if rest.is_empty() {
            break;
        }
        let word_end = rest.find(is_separator).unwrap_or(rest.len());
        words.push(&rest[..word_end]);
        rest = &rest[word_end..];
        if rest.is_empty() {
            seps.push("");
            break;
        }
    }
    Tokens { seps, words }
}

/// One cluster: its template (`None` is a variable word) and how many sampled lines it holds.
#[derive(Clone, Debug)]
struct Cluster {
    words: Vec<Option<String>>,
    lines: u64,
}

impl Cluster {
    fn new(words: &[&str]) -> Cluster {
        let words = words.iter().map(|w| Some((*w).to_owned())).collect();
        Cluster { words, lines: 1 }
    }

    /// Words of `words` equal to this template's literal words.
    fn equal_words(&self, words: &[&str]) -> usize {
        self.words
            .iter()
            .zip(words)
            .filter(|(t, w)| t.as_deref() == Some(**w))
            .count()
    }

    fn absorb(&mut self, words: &[&str]) {
        for (t, w) in self.words.iter_mut().zip(words) {
            if t.as_deref() != Some(*w) {
                *t = None;
            }
        }
        self.lines += 1;
    }
}

/// A mined pattern: its text in the `|>` syntax and the sampled lines it summarised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mined {
    /// The pattern, `<_>` for each variable word.
    pub text: String,
    /// Lines of the sample in its cluster.
    pub lines: u64,
    /// What ClickHouse needs to match it as `|>` does ([`Pattern::test_parts`]).
    pub(crate) test_parts: (Vec<String>, bool, bool),
}

/// Mines patterns from lines (see the module documentation).
#[derive(Debug, Default)]
pub struct Miner {
    /// Clusters by separators and first word (when it has no digit): Drain's first tree level,
    /// so `level=...` and `LEVEL=...` lines never share a template.
    groups: HashMap<(Vec<String>, Option<String>), Vec<Cluster>>,
}

impl Miner {
    /// An empty miner.
    pub fn new() -> Miner {
        Miner::default()
    }

    /// Adds one line.
    pub fn add(&mut self, line: &str) {
        if line.is_empty() || line.len() > MAX_LINE_BYTES {
            return;
        }
        let tokens = tokenize(line);
        if tokens.words.len() > MAX_WORDS {
            return;
        }
        let seps: Vec<String> = tokens.seps.iter().map(|s| (*s).to_owned()).collect();
        let first = tokens
            .words
            .first()
            .filter(|w| !w.bytes().any(|b| b.is_ascii_digit()))
            .map(|w| (*w).to_owned());
        let clusters = self.groups.entry((seps, first)).or_default();
        let n = tokens.words.len();
        // The first of the most similar clusters.
        let best = clusters
            .iter()
            .enumerate()
            .map(|(i, c)| (c.equal_words(&tokens.words), std::cmp::Reverse(i)))
            .max();
        match best {
            // A full group: the line joins its nearest cluster rather than being lost.
            Some((equal, std::cmp::Reverse(i)))
                if n == 0
                    || equal as f64 >= SIMILARITY * n as f64
                    || clusters.len() >= MAX_CLUSTERS_PER_GROUP =>
            {
                clusters[i].absorb(&tokens.words)
            }
            _ => clusters.push(Cluster::new(&tokens.words)),
        }
    }

    /// The patterns found, most lines first (ties by text), at most `limit`. Templates with no
    /// literal word (`<_> <_>`), which would match nearly any line, are left out, and so are
    /// templates whose text the `|>` filter would read otherwise (a literal `<name>` in a line).
    pub fn patterns(&self, limit: usize) -> Vec<Mined> {
        let mut out: Vec<Mined> = Vec::new();
        for ((seps, _), clusters) in &self.groups {
            for c in clusters {
                if !c.words.is_empty() && c.words.iter().all(Option::is_none) {
                    continue;
                }
                let text = render(seps, &c.words);
                let variables = c.words.iter().filter(|w| w.is_none()).count();
                let test_parts = match Pattern::line_filter(&text) {
                    Ok(p) if p.captures() == variables => p.test_parts(),
                    _ => continue,
                };
                match out.iter_mut().find(|m| m.text == text) {
                    Some(m) => m.lines += c.lines,
                    None => out.push(Mined {
                        text,
                        lines: c.lines,
                        test_parts,
                    }),
                }
            }
        }
        out.sort_by(|a, b| b.lines.cmp(&a.lines).then_with(|| a.text.cmp(&b.text)));
        out.truncate(limit);
        out
    }
}

/// A template's text: separators as they are, variables as [`PLACEHOLDER`].
fn render(seps: &[String], words: &[Option<String>]) -> String {
    let mut text = String::new();
    for (i, sep) in seps.iter().enumerate() {
        text.push_str(sep);
        if let Some(w) = words.get(i) {
            text.push_str(w.as_deref().unwrap_or(PLACEHOLDER));
        }
    }
    text
}

/// Lines sampled for mining, at most.
const SAMPLE_LINES: u64 = 10_000;

/// Windows of the range the sample is spread over.
const SAMPLE_WINDOWS: i64 = 50;

/// Share of each window read when the range is busy enough.
const SAMPLE_COVERAGE: f64 = 0.1;

/// Patterns counted and returned, at most.
pub const MAX_PATTERNS: usize = 100;

/// Answers `GET /loki/api/v1/patterns` for the streams `matchers` select: mines the sample,
/// counts each pattern per `step` and detected level, and builds Loki's answer
/// (`{"status":"success","data":[{"pattern","level","samples":[[seconds, count], ...]}]}`, the
/// patterns with the most lines first, only steps with lines).
pub async fn query(
    engine: &Engine,
    tenant: &str,
    matchers: &[Matcher],
    range: TimeRange,
    step: i64,
) -> Result<Json> {
    let streams = Streams::Matching(matchers);
    let per_window = (SAMPLE_LINES as i64 / SAMPLE_WINDOWS) as u64;
    let sample = |coverage| {
        sql::pattern_sample(tenant, streams, range, SAMPLE_WINDOWS, coverage, per_window)
    };
    let mut lines: Vec<BodyRow> = engine.fetch(&sample(SAMPLE_COVERAGE)).await?;
    if (lines.len() as u64) < SAMPLE_LINES / 2 {
        // Too quiet a range for a partial read: read it all.
        lines = engine.fetch(&sample(1.0)).await?;
    }
    let mut miner = Miner::new();
    for l in &lines {
        miner.add(&l.body);
    }
    let mined = miner.patterns(MAX_PATTERNS);
    if mined.is_empty() {
        return Ok(json!({"status": "success", "data": []}));
    }
    let parts: Vec<(Vec<String>, bool, bool)> =
        mined.iter().map(|m| m.test_parts.clone()).collect();
    let rows: Vec<CountsRow> = engine
        .fetch(&sql::pattern_counts(tenant, streams, range, step, &parts))
        .await?;
    // (pattern, level) -> bucket -> count.
    let mut series: BTreeMap<(usize, String), BTreeMap<i64, u64>> = BTreeMap::new();
    for row in rows {
        // Entries stored with levels off have none: Loki's default.
        let level = if row.level.is_empty() {
            "unknown".to_owned()
        } else {
            row.level
        };
        for (k, &count) in row.counts.iter().enumerate() {
            if count > 0 {
                *series
                    .entry((k, level.clone()))
                    .or_default()
                    .entry(row.bucket)
                    .or_default() += count;
            }
        }
    }
    let mut out: Vec<(u64, Json)> = series
        .into_iter()
        .map(|((k, level), buckets)| {
            let total = buckets.values().sum();
            let samples: Vec<Json> = buckets
                .into_iter()
                .map(|(b, n)| json!([b * step / 1_000_000_000, n]))
                .collect();
            (
                total,
                json!({"pattern": mined[k].text, "level": level, "samples": samples}),
            )
        })
        .collect();
    // Most lines first; the sort is stable, so ties keep the mining order.
    out.sort_by_key(|(total, _)| std::cmp::Reverse(*total));
    Ok(json!({
        "status": "success",
        "data": out.into_iter().map(|(_, j)| j).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BodyRow {
    body: String,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct CountsRow {
    bucket: i64,
    level: String,
    counts: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(lines: &[&str]) -> Vec<(String, u64)> {
        let mut m = Miner::new();
        for l in lines {
            m.add(l);
        }
        m.patterns(MAX_PATTERNS)
            .into_iter()
            .map(|p| (p.text, p.lines))
            .collect()
    }

    #[test]
    fn tokens_keep_every_byte() {
        for line in [
            "",
            "a",
            "  lead and trail  ",
            r#"level=info msg="GET /a done" took=5ms"#,
            r#"{"a":1,"b":[true,null]}"#,
            "tab\tsep|pipe <angle> é✓",
        ] {
            let t = tokenize(line);
            assert_eq!(t.seps.len(), t.words.len() + 1, "{line:?}");
            let mut back = String::new();
            for (i, s) in t.seps.iter().enumerate() {
                back.push_str(s);
                if let Some(w) = t.words.get(i) {
                    assert!(!w.is_empty() && !w.contains(is_separator), "{w:?}");
                    back.push_str(w);
                }
            }
            assert_eq!(back, line);
        }
        assert_eq!(
            tokenize("k=v x"),
            Tokens {
                seps: vec!["", "=", " ", ""],
                words: vec!["k", "v", "x"]
            }
        );
    }

    #[test]
    fn similar_lines_share_a_template() {
        let got = mine(&[
            r#"level=info msg="GET /login done" status=200 user=ann"#,
            r#"level=info msg="PUT /cart done" status=201 user=bob"#,
            r#"level=error msg="GET /cart done" status=500 user=ann"#,
            "connection from 10.0.0.1 closed",
            "connection from 10.0.0.2 closed",
            "connection from 10.0.0.3 reset",
        ]);
        assert_eq!(
            got,
            [
                // Equal counts: by text.
                ("connection from <_> <_>".to_string(), 3),
                (
                    r#"level=<_> msg="<_> <_> done" status=<_> user=<_>"#.to_string(),
                    3
                ),
            ]
        );
    }

    #[test]
    fn words_that_vary_are_variables_and_unlike_lines_stay_apart() {
        let got = mine(&[
            "job 17 started on worker-3",
            "cache warmed in 5 shards on db-1",
            "cache warmed in 7 shards on db-1",
            "LEVEL=x a",
            "level=x a",
        ]);
        assert_eq!(
            got,
            [
                ("cache warmed in <_> shards on db-1".to_string(), 2),
                // Another first word: another group.
                ("LEVEL=x a".to_string(), 1),
                ("job 17 started on worker-3".to_string(), 1),
                ("level=x a".to_string(), 1),
            ]
        );
    }

    #[test]
    fn useless_or_ambiguous_templates_are_left_out() {
        // A literal `<x>` the `|>` filter would read as a capture; too long; empty.
        let long = "y ".repeat(MAX_LINE_BYTES);
        let got = mine(&["saw <x> here", "", &long]);
        assert_eq!(got, []);
        // A full group takes one more line into its nearest cluster; a template left with no
        // literal word (`<_> <_>`) would match nearly anything and is not offered.
        let lines: Vec<String> = (0..=MAX_CLUSTERS_PER_GROUP)
            .map(|i| format!("{i} {i}"))
            .collect();
        let got = mine(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(got.len(), MAX_CLUSTERS_PER_GROUP - 1, "{got:?}");
        assert!(
            got.iter().all(|(t, n)| !t.contains("<_>") && *n == 1),
            "{got:?}"
        );
    }

    #[test]
    fn every_line_matches_its_template_as_the_line_filter_reads_it() {
        let lines = [
            r#"level=info msg="GET /login done" status=200"#,
            r#"level=warn msg="GET /a/b done" status=404"#,
            "  spaced   out 1  ",
            "  spaced   out 22  ",
            r#"{"ts":"2024-01-01T00:00:01Z","msg":"a b"}"#,
            r#"{"ts":"2024-01-01T00:00:02Z","msg":"c d"}"#,
            "x=1 x=2 x=3",
        ];
        let mut m = Miner::new();
        for l in lines {
            m.add(l);
        }
        let patterns: Vec<Pattern> = m
            .patterns(MAX_PATTERNS)
            .iter()
            .map(|p| Pattern::line_filter(&p.text).unwrap())
            .collect();
        for l in lines {
            assert!(patterns.iter().any(|p| p.test(l)), "{l:?}");
        }
    }
}
