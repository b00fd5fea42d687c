//! Label-set helpers for the metric evaluator, and `label_replace`.

use std::collections::HashMap;

use regex::Regex;

use super::Vectors;
use crate::eval::Labels;
use crate::logql::ast::{Grouping, LabelReplace};
use crate::{Error, Result};

/// Loki's error label, set by a failing pipeline stage.
const ERROR_LABEL: &str = "__error__";
/// Set to "true" by a query that wants error series kept instead of failing.
const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// Sorts by name and keeps one pair per name, so input from any source compares and hashes
/// consistently.
pub(super) fn normalize(labels: &mut Labels) {
    if !labels.is_sorted_by(|a, b| a.0 < b.0) {
        // Stable, so the last of duplicate names wins after the reverse dedup below.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.reverse();
        labels.dedup_by(|a, b| a.0 == b.0);
        labels.reverse();
    }
}

/// The value of `name`, if present.
pub(super) fn get<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Sets `name` to `value`, keeping the pairs sorted.
pub(super) fn set(labels: &mut Labels, name: &str, value: &str) {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value.to_string(),
        Err(i) => labels.insert(i, (name.to_string(), value.to_string())),
    }
}

/// Removes `name` if present.
pub(super) fn delete(labels: &mut Labels, name: &str) {
    labels.retain(|(n, _)| n != name);
}

/// Only the labels named in `names` (Prometheus' `Keep`).
pub(super) fn keep(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| names.iter().any(|k| k == n))
        .cloned()
        .collect()
}

/// All labels except those named in `names` (Prometheus' `Del`).
pub(super) fn drop(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| !names.iter().any(|k| k == n))
        .cloned()
        .collect()
}

/// The labels a `by`/`without` grouping leaves.
pub(super) fn group(labels: &Labels, grouping: &Grouping) -> Labels {
    if grouping.without {
        drop(labels, &grouping.labels)
    } else {
        keep(labels, &grouping.labels)
    }
}

/// Whether a series carries a pipeline error.
pub(super) fn has_error(labels: &Labels) -> bool {
    get(labels, ERROR_LABEL).is_some_and(|e| !e.is_empty())
}

/// Whether a series carries a pipeline error the query did not ask to keep.
pub(super) fn has_unpreserved_error(labels: &Labels) -> bool {
    has_error(labels) && get(labels, PRESERVE_ERROR_LABEL) != Some("true")
}

/// Loki's pipeline error for a series that kept `__error__` up to a range aggregation.
pub(super) fn pipeline_error(labels: &Labels) -> Error {
    let kind = get(labels, ERROR_LABEL).unwrap_or_default();
    Error::Execution(format!(
        "pipeline error: '{kind}' for series: '{}'.\n\
         Use a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\n\
         To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
        to_string(labels)
    ))
}

/// Prometheus' text form `{a="b", c="d"}`.
pub(super) fn to_string(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Assigns one index per distinct label set.
#[derive(Default)]
pub(super) struct Interner {
    /// Index of each label set.
    index: HashMap<Labels, usize>,
    /// Label sets by index.
    pub(super) labels: Vec<Labels>,
}

impl Interner {
    /// The index of `labels`, adding it when new.
    pub(super) fn intern(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        let i = self.labels.len();
        self.labels.push(labels.clone());
        self.index.insert(labels, i);
        i
    }
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `label_replace(v, dst, replacement, src, regex)`: where the anchored regex matches the value
/// of `src` ("" when absent), `dst` becomes the expanded replacement (removed when that is empty);
/// other series pass unchanged. Series that end up with equal labels are not merged (Loki does not
/// either).
pub(super) fn label_replace(lr: &LabelReplace, mut input: Vectors) -> Result<Vectors> {
    if !valid_label_name(&lr.dst) {
        return Err(Error::BadRequest(format!(
            "invalid destination label name in label_replace(): {}",
            lr.dst
        )));
    }
    let re = Regex::new(&format!("^(?:{})$", lr.regex))
        .map_err(|e| Error::BadRequest(format!("invalid regex in label_replace: {e}")))?;
    for labels in &mut input.labels {
        let src = get(labels, &lr.src).unwrap_or_default().to_string();
        let Some(caps) = re.captures(&src) else {
            continue;
        };
        let mut value = String::new();
        caps.expand(&lr.replacement, &mut value);
        delete(labels, &lr.dst);
        if !value.is_empty() {
            set(labels, &lr.dst, &value);
        }
    }
    Ok(input)
}
