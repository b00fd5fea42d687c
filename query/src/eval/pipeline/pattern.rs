//! Loki's pattern language: literals and `<name>` captures (`<_>` unnamed), used by the
//! `pattern` parser and the `|>` / `!>` line filters.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Capture(String),
    Literal(String),
}

impl Node {
    fn is_unnamed_capture(&self) -> bool {
        matches!(self, Node::Capture(n) if n == "_")
    }
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    nodes: Vec<Node>,
    names: Vec<String>,
}

/// Splits a pattern into literals and captures: `<` + identifier + `>` is a capture, anything
/// else (including a lone `<`) is literal text.
fn lex(input: &str) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut lit = String::new();
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
                j += 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j < b.len() && b[j] == b'>' {
                    if !lit.is_empty() {
                        nodes.push(Node::Literal(std::mem::take(&mut lit)));
                    }
                    nodes.push(Node::Capture(input[i + 1..j].to_string()));
                    i = j + 1;
                    continue;
                }
            }
        }
        // Copy one whole character.
        let ch_len = input[i..].chars().next().map_or(1, char::len_utf8);
        lit.push_str(&input[i..i + ch_len]);
        i += ch_len;
    }
    if !lit.is_empty() {
        nodes.push(Node::Literal(lit));
    }
    nodes
}

fn no_consecutive_captures(nodes: &[Node]) -> Result<(), String> {
    for w in nodes.windows(2) {
        if let (Node::Capture(a), Node::Capture(b)) = (&w[0], &w[1]) {
            return Err(format!(
                "found consecutive capture '<{a}><{b}>': invalid expression"
            ));
        }
    }
    Ok(())
}

impl Pattern {
    fn from_nodes(nodes: Vec<Node>) -> Self {
        let names = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(c) if c != "_" => Some(c.clone()),
                _ => None,
            })
            .collect();
        Pattern { nodes, names }
    }

    /// A pattern for the `pattern` parser: at least one named capture, no two captures in a row,
    /// no duplicate names.
    pub(crate) fn parser(input: &str) -> Result<Self, String> {
        let nodes = lex(input);
        let p = Pattern::from_nodes(nodes);
        if p.names.is_empty() {
            return Err("at least one capture is required".to_string());
        }
        no_consecutive_captures(&p.nodes)?;
        for (i, n) in p.names.iter().enumerate() {
            if p.names[..i].contains(n) {
                return Err(format!("duplicate capture name ({n}): invalid expression"));
            }
        }
        Ok(p)
    }

    /// A pattern for the `|>` line filter: only `<_>` captures.
    pub(crate) fn line_filter(input: &str) -> Result<Self, String> {
        let nodes = lex(input);
        no_consecutive_captures(&nodes)?;
        if let Some(Node::Capture(c)) = nodes
            .iter()
            .find(|n| matches!(n, Node::Capture(c) if c != "_"))
        {
            return Err(format!("named captures are not allowed: found '<{c}>'"));
        }
        Ok(Pattern::from_nodes(nodes))
    }

    /// Number of captures, named or not.
    pub(crate) fn captures(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Capture(_)))
            .count()
    }

    /// What [`Pattern::test`] needs, for evaluating it elsewhere (ClickHouse): the literals in
    /// order, whether the pattern starts with a literal, and whether it ends with a capture.
    pub(crate) fn test_parts(&self) -> (Vec<String>, bool, bool) {
        let literals = self
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Literal(l) => Some(l.clone()),
                Node::Capture(_) => None,
            })
            .collect();
        let head = matches!(self.nodes.first(), Some(Node::Literal(_)));
        let tail = matches!(self.nodes.last(), Some(Node::Capture(_)));
        (literals, head, tail)
    }

    /// Names of the named captures, in order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    fn find(&self, idx: usize, hay: &str) -> Option<usize> {
        match &self.nodes[idx] {
            Node::Literal(l) => hay.find(l.as_str()),
            Node::Capture(_) => None,
        }
    }

    /// The named captures of a line (possibly fewer than the names when the line ends early);
    /// empty when the line does not start with the leading literal.
    pub(crate) fn matches<'l>(&self, line: &'l str) -> Vec<&'l str> {
        let mut caps = Vec::new();
        if line.is_empty() || self.nodes.is_empty() {
            return caps;
        }
        let mut input = line;
        let mut idx = 0;
        if let Node::Literal(l) = &self.nodes[0] {
            if !input.starts_with(l.as_str()) {
                return caps;
            }
            input = &input[l.len()..];
            idx = 1;
        }
        if idx == self.nodes.len() {
            return caps;
        }
        while idx < self.nodes.len() {
            let cap = &self.nodes[idx];
            if idx + 1 == self.nodes.len() {
                if !cap.is_unnamed_capture() {
                    caps.push(input);
                }
                return caps;
            }
            let Node::Literal(lit) = &self.nodes[idx + 1] else {
                return caps;
            };
            let lit_idx = idx + 1;
            idx += 2;
            match self.find(lit_idx, input) {
                None => {
                    if !cap.is_unnamed_capture() {
                        caps.push(input);
                    }
                    return caps;
                }
                Some(i) => {
                    if !cap.is_unnamed_capture() {
                        caps.push(&input[..i]);
                    }
                    input = &input[i + lit.len()..];
                }
            }
        }
        caps
    }

    /// The `|>` test: literals in order, captures non-empty.
    pub(crate) fn test(&self, line: &str) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = n else { continue };
            let Some(j) = self.find(i, &line[off..]) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let req_rem = matches!(self.nodes.last(), Some(Node::Capture(_)));
        let has_rem = off != line.len();
        req_rem == has_rem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures() {
        // (pattern, line, captures, test result) from Loki's pattern tests.
        let cases: &[(&str, &str, &[&str], bool)] = &[
            ("foo <foo> bar", "foo buzz bar", &["buzz"], true),
            ("foo <foo> bar<fuzz>", "foo buzz bar", &["buzz", ""], false),
            ("<foo>foo <bar> bar", "foo buzz bar", &["", "buzz"], false),
            ("<foo> bar<fuzz>", " bar", &["", ""], false),
            ("<foo>bar<baz>", " bar ", &[" ", " "], true),
            ("<foo> bar<baz>", " bar ", &["", " "], false),
            ("<foo>bar <baz>", " bar ", &[" ", ""], false),
            ("<foo>", " bar ", &[" bar "], true),
            (
                "<path>?<_>",
                "/api/plugins/versioncheck?slugIn=x",
                &["/api/plugins/versioncheck"],
                true,
            ),
            (
                "<path>?<_>",
                "/api/plugins/status",
                &["/api/plugins/status"],
                false,
            ),
        ];
        for (pat, line, caps, ok) in cases {
            let p = Pattern::parser(pat).unwrap();
            assert_eq!(&p.matches(line), caps, "{pat} on {line}");
            assert_eq!(p.test(line), *ok, "test {pat} on {line}");
        }
    }

    #[test]
    fn errors() {
        assert!(Pattern::parser("<_> foo").is_err());
        assert!(Pattern::parser("<a><b>").is_err());
        assert!(Pattern::parser("<a> <a>").is_err());
        assert!(Pattern::line_filter("<a> foo").is_err());
        assert!(Pattern::line_filter("<_> foo <_>").is_ok());
        assert!(Pattern::line_filter("<1> x").is_ok());
    }
}
