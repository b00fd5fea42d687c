//! Parser for Loki's stream label strings: `{name="value", other="x"}`.
//!
//! This is the form Loki's protobuf push carries in `StreamAdapter.labels`. Values are Go string
//! literals: double-quoted with Go escapes (`\"`, `\\`, `\n`, `\t`, `\xHH`, `\uHHHH`, octal ...)
//! or back-quoted raw strings, so commas, quotes and braces inside values are fine.

use std::fmt;

/// A label string that does not parse; `pos` is the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// Byte offset into the label string.
    pub pos: usize,
    /// What is wrong there.
    pub msg: String,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.msg, self.pos)
    }
}

/// Parses `{a="b", c="d"}` into name/value pairs in the order given.
///
/// Names must be valid label names, must not repeat, and at least one pair is required (Loki
/// refuses streams with no labels).
pub fn parse_label_string(s: &str) -> Result<Vec<(String, String)>, LabelError> {
    let mut p = Parser { s, pos: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    p.skip_ws();
    if p.peek() == Some(b'}') {
        return Err(p.err("at least one label pair is required"));
    }
    loop {
        p.skip_ws();
        let name_pos = p.pos;
        let name = p.name()?;
        if pairs.iter().any(|(n, _)| n == name) {
            return Err(LabelError {
                pos: name_pos,
                msg: format!("duplicate label name {name:?}"),
            });
        }
        p.skip_ws();
        p.expect(b'=')?;
        p.skip_ws();
        let value = p.string()?;
        pairs.push((name.to_string(), value));
        p.skip_ws();
        match p.peek() {
            Some(b',') => {
                p.pos += 1;
                p.skip_ws();
                // A trailing comma before the brace is accepted, as Prometheus does.
                if p.peek() == Some(b'}') {
                    p.pos += 1;
                    break;
                }
            }
            Some(b'}') => {
                p.pos += 1;
                break;
            }
            Some(_) => return Err(p.err("expected ',' or '}'")),
            None => return Err(p.err("unexpected end, expected ',' or '}'")),
        }
    }
    p.skip_ws();
    if p.pos != s.len() {
        return Err(p.err("unexpected text after '}'"));
    }
    Ok(pairs)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn err(&self, msg: &str) -> LabelError {
        LabelError {
            pos: self.pos,
            msg: msg.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), LabelError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn name(&mut self) -> Result<&'a str, LabelError> {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        if !matches!(self.peek(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_')) {
            return Err(self.err("expected a label name"));
        }
        while self.pos < bytes.len()
            && (bytes[self.pos].is_ascii_alphanumeric() || bytes[self.pos] == b'_')
        {
            self.pos += 1;
        }
        Ok(&self.s[start..self.pos])
    }

    fn string(&mut self) -> Result<String, LabelError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'`') => {
                let open = self.err("unterminated raw string");
                self.pos += 1;
                let rest = &self.s[self.pos..];
                let end = rest.find('`').ok_or(open)?;
                self.pos += end + 1;
                Ok(rest[..end].to_string())
            }
            _ => Err(self.err("expected a quoted label value")),
        }
    }

    fn quoted(&mut self) -> Result<String, LabelError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.s[self.pos..];
            // Copy the run of plain characters in one go.
            let plain = rest.find(['"', '\\', '\n']).ok_or_else(|| LabelError {
                pos: open,
                msg: "unterminated quoted string".into(),
            })?;
            out.push_str(&rest[..plain]);
            self.pos += plain;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\n') => return Err(self.err("newline in quoted string")),
                _ => self.escape(&mut out)?,
            }
        }
    }

    /// Decodes one Go escape sequence at `self.pos` (which is at the backslash).
    fn escape(&mut self, out: &mut String) -> Result<(), LabelError> {
        let at = self.pos;
        let bad = |msg: &str| LabelError {
            pos: at,
            msg: msg.to_string(),
        };
        self.pos += 1;
        let c = self.peek().ok_or_else(|| bad("unterminated escape"))?;
        self.pos += 1;
        let simple = match c {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            return Ok(());
        }
        let (digits, radix) = match c {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => return Err(bad("unknown escape sequence")),
        };
        let text = self
            .s
            .get(self.pos..self.pos + digits)
            .ok_or_else(|| bad("short escape sequence"))?;
        let v = u32::from_str_radix(text, radix).map_err(|_| bad("bad escape sequence"))?;
        self.pos += digits;
        if c == b'x' || c.is_ascii_digit() {
            // \x and octal escapes are single bytes in Go; only ASCII keeps the value UTF-8.
            if v > 0x7f {
                return Err(bad("non-ASCII byte escape would not be valid UTF-8"));
            }
        }
        out.push(char::from_u32(v).ok_or_else(|| bad("escape is not a Unicode scalar value"))?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<(String, String)> {
        parse_label_string(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn valid_label_strings() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (r#"{job="api"}"#, &[("job", "api")]),
            (
                r#"{job="api", env="prod"}"#,
                &[("job", "api"), ("env", "prod")],
            ),
            (
                r#"  { job = "api" ,env="prod" }  "#,
                &[("job", "api"), ("env", "prod")],
            ),
            (
                r#"{a="x,y}z", b="q\"uote"}"#,
                &[("a", "x,y}z"), ("b", "q\"uote")],
            ),
            (
                r#"{a="back\\slash\n\ttab"}"#,
                &[("a", "back\\slash\n\ttab")],
            ),
            (r#"{a="\x41\101\u00e9\U0001F600"}"#, &[("a", "AAé😀")]),
            ("{a=`raw \\n \"x\"`}", &[("a", "raw \\n \"x\"")]),
            (r#"{a="", _b9="ünïcode"}"#, &[("a", ""), ("_b9", "ünïcode")]),
            (r#"{a="1",}"#, &[("a", "1")]),
        ];
        for (text, want) in cases {
            assert_eq!(ok(text), pairs(want), "{text}");
        }
    }

    #[test]
    fn invalid_label_strings_name_the_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected '{'"),
            ("job=\"api\"", 0, "expected '{'"),
            ("{}", 1, "at least one label pair"),
            ("{job}", 4, "expected '='"),
            ("{job=api}", 5, "expected a quoted label value"),
            ("{9job=\"a\"}", 1, "expected a label name"),
            ("{job=\"api}", 5, "unterminated quoted string"),
            ("{job=\"a\" env=\"b\"}", 9, "expected ',' or '}'"),
            ("{job=\"a\"", 8, "unexpected end"),
            ("{job=\"a\"} x", 10, "unexpected text after '}'"),
            ("{a=\"1\", a=\"2\"}", 8, "duplicate label name"),
            ("{a=\"\\q\"}", 4, "unknown escape sequence"),
            ("{a=\"\\xff\"}", 4, "non-ASCII byte escape"),
            ("{a=\"\\uD800\"}", 4, "not a Unicode scalar value"),
            ("{a=\"\\u12\"}", 4, "bad escape sequence"),
            ("{a=\"x\ny\"}", 5, "newline in quoted string"),
            ("{a=`x}", 3, "unterminated raw string"),
            ("{a=\"1\",,}", 7, "expected a label name"),
        ];
        for (text, pos, msg) in cases {
            let err = parse_label_string(text).expect_err(text);
            assert_eq!(err.pos, *pos, "{text}: {err}");
            assert!(err.msg.contains(msg), "{text}: {err}");
        }
    }
}
