//! Stream label sets and the stable 64-bit stream id derived from them.

use std::fmt::{self, Write as _};
use std::sync::Arc;

/// A stream's identity: a stable 64-bit hash of its sorted label set.
///
/// The hash is XXH3-64 over the sorted `name=value` pairs with unambiguous separators, so it does
/// not depend on the order a client sent the labels in, and it is the same across processes,
/// versions and machines (it is stored in ClickHouse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

/// A set of labels sorted by name, names unique. The pairs are shared (`Arc`), so every row of a
/// stream can carry them as its `ResourceAttributes` without a copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSet {
    pairs: Arc<[(String, String)]>,
}

impl LabelSet {
    /// Builds a label set from pairs in any order. When a name repeats, the last value wins (as
    /// Prometheus and Loki do when they build a label set from a map).
    pub fn from_pairs(mut pairs: Vec<(String, String)>) -> Self {
        // Stable sort keeps arrival order among equal names, so dedup can keep the last one.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => out.push((name, value)),
            }
        }
        LabelSet { pairs: out.into() }
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.pairs[i].1.as_str())
    }

    /// The stream id of this label set (see [`StreamId`]).
    pub fn stream_id(&self) -> StreamId {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (name, value) in self.pairs.iter() {
            // Length prefixes make the encoding injective: no two label sets hash the same bytes.
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(&(value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        }
        StreamId(h.digest())
    }

    /// The sorted pairs, shared with this set.
    pub fn shared(&self) -> Arc<[(String, String)]> {
        self.pairs.clone()
    }
}

impl fmt::Display for LabelSet {
    /// Formats as Loki does: `{name="value", ...}` with Go-style escapes in values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (i, (name, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => f.write_char(c)?,
                }
            }
            f.write_char('"')?;
        }
        f.write_char('}')
    }
}

/// True when `name` is a valid Prometheus/Loki label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Turns an arbitrary field name into a valid label name by replacing every other character with
/// `_` (and prefixing `_` when it starts with a digit), as Loki does for OTLP attribute names.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        LabelSet::from_pairs(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn stream_id_ignores_order() {
        let a = set(&[("job", "api"), ("env", "prod")]);
        let b = set(&[("env", "prod"), ("job", "api")]);
        assert_eq!(a.stream_id(), b.stream_id());
        assert_eq!(a, b);
    }

    #[test]
    fn stream_id_is_injective_on_boundaries() {
        // Same concatenated bytes, different label sets.
        let a = set(&[("ab", "c")]);
        let b = set(&[("a", "bc")]);
        assert_ne!(a.stream_id(), b.stream_id());
        assert_ne!(set(&[("a", "")]).stream_id(), set(&[]).stream_id());
    }

    #[test]
    fn stream_id_is_stable_across_versions() {
        // Stored in ClickHouse: changing the hash would split every existing stream in two.
        assert_eq!(
            set(&[("job", "api")]).stream_id(),
            StreamId(17_100_414_745_296_874_029)
        );
    }

    #[test]
    fn last_duplicate_wins_and_get_finds() {
        let s = set(&[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("a"), Some("3"));
        assert_eq!(s.get("c"), None);
    }

    #[test]
    fn display_escapes() {
        let s = set(&[("b", "x\"y\\z\n"), ("a", "1")]);
        assert_eq!(s.to_string(), r#"{a="1", b="x\"y\\z\n"}"#);
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("service_name"));
        assert!(is_valid_label_name("_x9"));
        assert!(!is_valid_label_name("9x"));
        assert!(!is_valid_label_name("a.b"));
        assert!(!is_valid_label_name(""));
        assert_eq!(sanitize_label_name("k8s.pod-name"), "k8s_pod_name");
        assert_eq!(sanitize_label_name("1a"), "_1a");
    }
}
