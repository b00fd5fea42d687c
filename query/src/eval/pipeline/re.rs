//! RE2 (Go `regexp`) patterns on the Rust `regex` crate: the two share a syntax, but Go's
//! `\d`, `\w`, `\s` and `\b` are ASCII-only and a `[` inside a class is a literal in Go, so
//! patterns are rewritten before compiling.

use regex::{Regex, RegexBuilder};

/// Compiles a Go regular expression with Go's semantics. The error text is the crate's.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    RegexBuilder::new(&translated)
        // Loki's patterns are user input; keep compiled programs bounded.
        .size_limit(16 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Compiles a Go regular expression anchored at both ends (label matchers).
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    // Validate the pattern alone first so an unbalanced `)` cannot close our group.
    compile(pattern)?;
    compile(&format!("^(?:{pattern})$"))
}

/// Rewrites the Go-only or differently-behaving constructs into Rust syntax.
fn translate(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    // Position (in chars) right after the class opener, to know when `]` is a literal.
    let mut class_start = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                out.push('\\');
                break;
            };
            if n == 'Q' {
                // \Q...\E: a literal run.
                let mut j = i + 2;
                while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                    let mut buf = [0u8; 4];
                    out.push_str(&regex::escape(chars[j].encode_utf8(&mut buf)));
                    j += 1;
                }
                i = if j < chars.len() { j + 2 } else { j };
                continue;
            }
            let repl: Option<&str> = if in_class {
                match n {
                    'd' => Some("0-9"),
                    'w' => Some("0-9A-Za-z_"),
                    's' => Some("\\t\\n\\x0C\\r "),
                    'D' => Some("[^0-9]"),
                    'W' => Some("[^0-9A-Za-z_]"),
                    'S' => Some("[^\\t\\n\\x0C\\r ]"),
                    _ => None,
                }
            } else {
                match n {
                    'd' => Some("[0-9]"),
                    'w' => Some("[0-9A-Za-z_]"),
                    's' => Some("[\\t\\n\\x0C\\r ]"),
                    'D' => Some("[^0-9]"),
                    'W' => Some("[^0-9A-Za-z_]"),
                    'S' => Some("[^\\t\\n\\x0C\\r ]"),
                    'b' => Some("(?-u:\\b)"),
                    'B' => Some("(?-u:\\B)"),
                    _ => None,
                }
            };
            match repl {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' if i > class_start => {
                    in_class = false;
                    out.push(']');
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // [:alpha:] stays as is.
                    let mut j = i;
                    while j < chars.len() {
                        out.push(chars[j]);
                        if chars[j] == ']' && j > i + 1 && chars[j - 1] == ':' {
                            break;
                        }
                        j += 1;
                    }
                    i = j;
                }
                // Literal in Go, nesting or set operators in Rust.
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => {
                    out.push_str("\\-");
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        if c == '{' {
            // Go rejects repetition counts above 1000; Rust would compile huge programs.
            let mut j = i + 1;
            let mut num = String::new();
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == ',') {
                num.push(chars[j]);
                j += 1;
            }
            if j < chars.len() && chars[j] == '}' && num.starts_with(|c: char| c.is_ascii_digit()) {
                let too_big = num.split(',').any(|n| {
                    !n.is_empty() && n.parse::<u32>().is_ok_and(|v| v > 1000) || n.len() > 9
                });
                if too_big {
                    return Err(format!(
                        "invalid repeat count: {}",
                        chars[i..=j].iter().collect::<String>()
                    ));
                }
            }
        }
        if c == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            class_start = i;
            // A leading `]` is a literal member in both dialects; Rust wants it escaped.
            if chars.get(i) == Some(&']') {
                out.push_str("\\]");
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_classes() {
        let r = compile(r"^\d+$").unwrap();
        assert!(r.is_match("123"));
        assert!(!r.is_match("١٢٣"));
        let r = compile(r"^[\w.]+$").unwrap();
        assert!(r.is_match("a_b.c"));
        assert!(!r.is_match("é"));
        let r = compile(r"[[a]").unwrap();
        assert!(r.is_match("["));
        let r = compile(r"\bfoo\b").unwrap();
        assert!(r.is_match("a foo b"));
        let r = compile(r"[]a]").unwrap();
        assert!(r.is_match("]"));
        let r = compile(r"[[:digit:]x]").unwrap();
        assert!(r.is_match("5"));
        let r = compile(r"\Q.*\E").unwrap();
        assert!(r.is_match("a.*b"));
        assert!(!r.is_match("ab"));
        assert!(compile(r"a|b|\q").is_err());
        assert!(compile_anchored("a)|(b").is_err());
    }
}
