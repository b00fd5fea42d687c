//! The per-entry label set of Loki's `LabelsBuilder`: stream labels as the base, structured
//! metadata and parsed labels added on top, deletions, and the `__error__` pair kept apart.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::eval::Labels;

/// `__error__`.
pub(crate) const ERROR_LABEL: &str = "__error__";
/// `__error_details__`.
pub(crate) const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// `__preserve_error__`, never set by this pipeline but kept by `keep` as Loki does.
pub(crate) const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";
/// Suffix of a parsed label whose name collides with a stream or metadata label.
pub(crate) const DUPLICATE_SUFFIX: &str = "_extracted";

/// Loki's label categories; a label lives in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Stream,
    Metadata,
    Parsed,
}

/// Labels of one entry while it runs through the stages.
pub(crate) struct LabelsBuilder<'a> {
    base: &'a Labels,
    metadata: Vec<(String, String)>,
    parsed: Vec<(String, String)>,
    del: Vec<String>,
    err: String,
    err_details: String,
    /// Parsed names deleted again: with the current parsed labels, the names Loki's parser hints
    /// count as already extracted (a later parser does not extract them again).
    gone: Vec<String>,
    /// Hashes of the extracted names once there are many, so wide JSON lines stay linear.
    index: Option<HashSet<u64, BuildHasherDefault<IdHasher>>>,
}

impl<'a> LabelsBuilder<'a> {
    /// A builder over `stream`, with `metadata` added as Loki's pipeline does (a name that collides
    /// with a stream label gets `_extracted`; `__error__` and `__error_details__` set the error).
    pub(crate) fn new(stream: &'a Labels, metadata: &Labels) -> Self {
        let mut b = LabelsBuilder {
            base: stream,
            metadata: Vec::new(),
            parsed: Vec::new(),
            del: Vec::new(),
            err: String::new(),
            err_details: String::new(),
            gone: Vec::new(),
            index: None,
        };
        for (n, v) in metadata {
            let name = if b.base_has(n) {
                format!("{n}{DUPLICATE_SUFFIX}")
            } else {
                n.clone()
            };
            if name == ERROR_LABEL {
                b.err = v.clone();
                continue;
            }
            if name == ERROR_DETAILS_LABEL {
                b.err_details = v.clone();
                continue;
            }
            b.set(Category::Metadata, name, v.clone());
        }
        b
    }

    /// The stream labels (the base), whether deleted or not.
    pub(crate) fn base_has(&self, name: &str) -> bool {
        self.base
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .is_ok()
    }

    fn base_get(&self, name: &str) -> Option<&'a str> {
        let base: &'a Labels = self.base;
        base.binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| base[i].1.as_str())
    }

    /// True when `name` is currently a structured-metadata label.
    pub(crate) fn has_metadata(&self, name: &str) -> bool {
        self.metadata.iter().any(|(n, _)| n == name)
    }

    /// Loki's `BaseHas(name) || HasInCategory(name, StructuredMetadata)`: the test that decides
    /// the `_extracted` suffix of parsed labels.
    pub(crate) fn collides(&self, name: &str) -> bool {
        self.base_has(name) || self.has_metadata(name)
    }

    /// Whether a previous parser already extracted `name` for this entry.
    pub(crate) fn extracted(&self, name: &str) -> bool {
        if let Some(ix) = &self.index
            && !ix.contains(&name_hash(name))
        {
            return false;
        }
        self.parsed_index(name).is_some() || self.gone.iter().any(|g| g == name)
    }

    fn parsed_index(&self, name: &str) -> Option<usize> {
        if let Some(ix) = &self.index
            && !ix.contains(&name_hash(name))
        {
            return None;
        }
        // Cheap length and first-byte checks before comparing whole names.
        let (len, first) = (name.len(), name.as_bytes().first());
        self.parsed
            .iter()
            .position(|(n, _)| n.len() == len && n.as_bytes().first() == first && n == name)
    }

    /// Records a new parsed name in the hash index (built once the set grows).
    fn record(&mut self, name: &str) {
        const INDEX_FROM: usize = 16;
        match &mut self.index {
            Some(ix) => {
                ix.insert(name_hash(name));
            }
            None if self.parsed.len() + self.gone.len() >= INDEX_FROM => {
                let mut ix: HashSet<u64, BuildHasherDefault<IdHasher>> = HashSet::default();
                for (n, _) in &self.parsed {
                    ix.insert(name_hash(n));
                }
                for g in &self.gone {
                    ix.insert(name_hash(g));
                }
                ix.insert(name_hash(name));
                self.index = Some(ix);
            }
            None => {}
        }
    }

    /// Value and category of a label; `None` when absent or deleted (a stream label with an empty
    /// value counts as absent, as in Loki).
    pub(crate) fn get_with_category(&self, name: &str) -> Option<(&str, Category)> {
        if let Some((_, v)) = self.metadata.iter().find(|(n, _)| n == name) {
            return Some((v, Category::Metadata));
        }
        if let Some(i) = self.parsed_index(name) {
            return Some((&self.parsed[i].1, Category::Parsed));
        }
        if self.del.iter().any(|d| d == name) {
            return None;
        }
        match self.base_get(name) {
            Some(v) if !v.is_empty() => Some((v, Category::Stream)),
            _ => None,
        }
    }

    /// Value of a label (not `__error__`, which lives apart).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.get_with_category(name).map(|(v, _)| v)
    }

    /// The value a template sees for `name`: the label map includes the error labels.
    pub(crate) fn map_get(&self, name: &str) -> Option<&str> {
        if name == ERROR_LABEL && !self.err.is_empty() {
            return Some(&self.err);
        }
        if name == ERROR_DETAILS_LABEL && !self.err_details.is_empty() {
            return Some(&self.err_details);
        }
        self.get(name)
    }

    /// Sets a label in a category with Loki's precedence: parsed > metadata > stream.
    pub(crate) fn set(&mut self, cat: Category, name: String, value: String) {
        match cat {
            Category::Parsed => {
                if let Some(i) = self.metadata.iter().position(|(n, _)| *n == name) {
                    self.metadata.remove(i);
                }
                if let Some(i) = self.parsed_index(&name) {
                    self.parsed[i].1 = value;
                    return;
                }
                self.record(&name);
                self.parsed.push((name, value));
            }
            Category::Metadata => {
                if self.parsed_index(&name).is_some() {
                    return;
                }
                if let Some(slot) = self.metadata.iter_mut().find(|(n, _)| *n == name) {
                    slot.1 = value;
                    return;
                }
                self.metadata.push((name, value));
            }
            Category::Stream => {
                // Stream labels only come from the base; nothing in the pipeline sets them.
            }
        }
    }

    /// Shorthand for a parsed label.
    pub(crate) fn set_parsed(&mut self, name: String, value: String) {
        self.set(Category::Parsed, name, value);
    }

    /// Deletes a label from every category.
    pub(crate) fn del(&mut self, name: &str) {
        self.metadata.retain(|(n, _)| n != name);
        if let Some(i) = self.parsed_index(name) {
            let (n, _) = self.parsed.remove(i);
            self.gone.push(n);
        }
        self.del.push(name.to_string());
    }

    /// Deletes many labels at once (`keep` on a wide line), in linear time.
    pub(crate) fn del_many(&mut self, names: &[String]) {
        if names.len() < 8 {
            for n in names {
                self.del(n);
            }
            return;
        }
        let set: HashSet<&str> = names.iter().map(String::as_str).collect();
        self.metadata.retain(|(n, _)| !set.contains(n.as_str()));
        let mut kept = Vec::with_capacity(self.parsed.len());
        for (n, v) in std::mem::take(&mut self.parsed) {
            if set.contains(n.as_str()) {
                self.gone.push(n);
            } else {
                kept.push((n, v));
            }
        }
        self.parsed = kept;
        self.del.extend(names.iter().cloned());
    }

    /// The current error (empty when none).
    pub(crate) fn err(&self) -> &str {
        &self.err
    }

    /// The current error details (empty when none).
    pub(crate) fn err_details(&self) -> &str {
        &self.err_details
    }

    /// True when `__error__` is set.
    pub(crate) fn has_err(&self) -> bool {
        !self.err.is_empty()
    }

    /// Sets `__error__`.
    pub(crate) fn set_err(&mut self, err: &str) {
        err.clone_into(&mut self.err);
    }

    /// Sets `__error_details__`.
    pub(crate) fn set_err_details(&mut self, details: impl Into<String>) {
        self.err_details = details.into();
    }

    /// Sets both, Loki's `addErrLabel`.
    pub(crate) fn add_err(&mut self, err: &str, details: Option<String>) {
        self.set_err(err);
        if let Some(d) = details {
            self.err_details = d;
        }
    }

    /// Clears `__error__`.
    pub(crate) fn reset_err(&mut self) {
        self.err.clear();
    }

    /// Clears `__error_details__`.
    pub(crate) fn reset_err_details(&mut self) {
        self.err_details.clear();
    }

    /// Every label in Loki's order (stream, metadata, parsed, then the error pair), unsorted,
    /// borrowed.
    pub(crate) fn unsorted(&self) -> Vec<(&str, &str)> {
        let mut out =
            Vec::with_capacity(self.base.len() + self.metadata.len() + self.parsed.len() + 2);
        let unchanged = self.del.is_empty() && self.metadata.is_empty() && self.parsed.is_empty();
        for (n, v) in self.base {
            if !unchanged
                && (self.del.iter().any(|d| d == n)
                    || self.has_metadata(n)
                    || self.parsed_index(n).is_some())
            {
                continue;
            }
            out.push((n.as_str(), v.as_str()));
        }
        for (n, v) in &self.metadata {
            out.push((n.as_str(), v.as_str()));
        }
        for (n, v) in &self.parsed {
            out.push((n.as_str(), v.as_str()));
        }
        if !self.err.is_empty() {
            out.push((ERROR_LABEL, &self.err));
        }
        if !self.err_details.is_empty() {
            out.push((ERROR_DETAILS_LABEL, &self.err_details));
        }
        out
    }

    /// The labels sorted by name (a template's `.` and label_format's snapshot).
    pub(crate) fn sorted_map(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .unsorted()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        sort_dedup(&mut v);
        v
    }

    /// The final labels by category, each sorted: (stream, metadata, parsed). Error labels count
    /// as parsed.
    pub(crate) fn into_categories(self) -> (Labels, Labels, Labels) {
        let unchanged = self.del.is_empty()
            && self.metadata.is_empty()
            && self.parsed.is_empty()
            && self.err.is_empty()
            && self.err_details.is_empty();
        if unchanged {
            return (self.base.clone(), Vec::new(), Vec::new());
        }
        let mut stream: Labels = Vec::with_capacity(self.base.len());
        for (n, v) in self.base {
            if self.del.iter().any(|d| d == n)
                || self.has_metadata(n)
                || self.parsed_index(n).is_some()
            {
                continue;
            }
            stream.push((n.clone(), v.clone()));
        }
        let mut metadata = self.metadata;
        let mut parsed = self.parsed;
        if !self.err.is_empty() {
            parsed.push((ERROR_LABEL.to_string(), self.err));
        }
        if !self.err_details.is_empty() {
            parsed.push((ERROR_DETAILS_LABEL.to_string(), self.err_details));
        }
        sort_dedup(&mut metadata);
        sort_dedup(&mut parsed);
        (stream, metadata, parsed)
    }
}

/// Sorts by name and keeps the last of equal names (the error pair is appended last and wins
/// over a parsed label of the same name).
pub(crate) fn sort_dedup(v: &mut Vec<(String, String)>) {
    v.reverse();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
}

/// Merges category label sets into one sorted set.
pub(crate) fn merge(parts: &[&Labels]) -> Labels {
    let mut out: Labels = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend(p.iter().cloned());
    }
    sort_dedup(&mut out);
    out
}

/// FxHash of a label name (fast, not DoS-resistant; the index only speeds up a linear check).
fn name_hash(s: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = 0;
    let mut b = s.as_bytes();
    while b.len() >= 8 {
        let w = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        b = &b[8..];
    }
    for &c in b {
        h = (h.rotate_left(5) ^ u64::from(c)).wrapping_mul(K);
    }
    (h.rotate_left(5) ^ s.len() as u64).wrapping_mul(K)
}

/// Passes pre-hashed `u64` keys through.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
