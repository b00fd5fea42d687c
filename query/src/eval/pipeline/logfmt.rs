//! The `logfmt` parser: Loki's decoder (adapted go-logfmt) and both stage forms, all keys or
//! named extractions.

use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};
use super::sanitize_label_key;

const LOGFMT_ERR: &str = "LogfmtParserErr";

/// One `key[=value]` pair, or an error; the value is borrowed unless it had escapes.
struct Decoder<'a> {
    line: &'a [u8],
    pos: usize,
    err: Option<String>,
}

enum Value<'a> {
    None,
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Value<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::None => &[],
            Value::Borrowed(b) => b,
            Value::Owned(v) => v,
        }
    }
}

impl<'a> Decoder<'a> {
    fn new(line: &'a str) -> Self {
        Decoder {
            line: line.as_bytes(),
            pos: 0,
            err: None,
        }
    }

    fn eol(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn syntax_error(&mut self, msg: &str) {
        self.err = Some(format!(
            "logfmt syntax error at pos {} : {}",
            self.pos + 1,
            msg
        ));
    }

    fn unexpected_byte(&mut self, c: u8) {
        let quoted = match c {
            b'\'' => "'\\''".to_string(),
            b'"' => "'\"'".to_string(),
            c => format!("'{}'", c as char),
        };
        self.err = Some(format!(
            "logfmt syntax error at pos {} : unexpected {}",
            self.pos + 1,
            quoted
        ));
    }

    /// Skips to the next whitespace after a bad pair; always "no pair".
    fn skip_value(&mut self) -> Option<(&'a [u8], Value<'a>)> {
        let line = self.line;
        match line[self.pos..].iter().position(|&c| c <= b' ') {
            Some(p) => self.pos += p,
            None => self.pos = line.len(),
        }
        None
    }

    /// Loki's `ScanKeyval`: `Some((key, value))` for a pair (the key may be empty only when the
    /// line ends), `None` at the end or on an error (then `err` is set).
    fn scan(&mut self) -> Option<(&'a [u8], Value<'a>)> {
        let line = self.line;
        // Garbage before the key.
        match line[self.pos..].iter().position(|&c| c > b' ') {
            Some(p) => self.pos += p,
            None => {
                self.pos = line.len();
                return None;
            }
        }
        // Key.
        let start = self.pos;
        let mut multibyte = false;
        let mut i = self.pos;
        loop {
            if i >= line.len() {
                self.pos = line.len();
                let key = &line[start..];
                if multibyte && contains_replacement(key) {
                    self.syntax_error("invalid key");
                    return None;
                }
                return Some((key, Value::None));
            }
            let c = line[i];
            if c == b'=' {
                self.pos = i;
                if self.pos == start {
                    self.unexpected_byte(c);
                    return self.skip_value();
                }
                let key = &line[start..self.pos];
                if multibyte && contains_replacement(key) {
                    self.syntax_error("invalid key");
                    return self.skip_value();
                }
                return self.scan_value(key);
            } else if c == b'"' {
                self.pos = i;
                self.unexpected_byte(c);
                return self.skip_value();
            } else if c <= b' ' {
                self.pos = i;
                let key = &line[start..self.pos];
                if multibyte && contains_replacement(key) {
                    self.syntax_error("invalid key");
                    return None;
                }
                return Some((key, Value::None));
            } else if c >= 0x80 {
                multibyte = true;
            }
            i += 1;
        }
    }

    fn scan_value(&mut self, key: &'a [u8]) -> Option<(&'a [u8], Value<'a>)> {
        let line = self.line;
        // Skip the '='.
        self.pos += 1;
        if self.pos >= line.len() {
            return Some((key, Value::None));
        }
        let c = line[self.pos];
        if c <= b' ' {
            return Some((key, Value::None));
        }
        if c == b'"' {
            return self.scan_quoted(key);
        }
        let start = self.pos;
        let mut i = self.pos;
        while i < line.len() {
            let c = line[i];
            if c == b'=' || c == b'"' {
                self.pos = i;
                self.unexpected_byte(c);
                return self.skip_value();
            }
            if c <= b' ' {
                self.pos = i;
                return Some((key, Value::Borrowed(&line[start..i])));
            }
            i += 1;
        }
        self.pos = line.len();
        Some((key, Value::Borrowed(&line[start..])))
    }

    fn scan_quoted(&mut self, key: &'a [u8]) -> Option<(&'a [u8], Value<'a>)> {
        let line = self.line;
        let start = self.pos;
        let mut has_esc = false;
        let mut esc = false;
        let mut i = self.pos + 1;
        while i < line.len() {
            let c = line[i];
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos = i + 1;
                if has_esc {
                    match unquote(&line[start + 1..i]) {
                        Some(v) => return Some((key, Value::Owned(v))),
                        None => {
                            self.syntax_error("invalid quoted value");
                            return None;
                        }
                    }
                }
                return Some((key, Value::Borrowed(&line[start + 1..i])));
            }
            i += 1;
        }
        self.pos = line.len();
        self.syntax_error("unterminated quoted value");
        None
    }
}

fn contains_replacement(b: &[u8]) -> bool {
    b.windows(3).any(|w| w == "\u{FFFD}".as_bytes())
}

/// JSON-style unquoting of a logfmt value's inside; `None` on a bad escape or a bare quote.
fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut r = 0;
    while r < s.len() {
        let c = s[r];
        match c {
            b'\\' => {
                r += 1;
                let e = *s.get(r)?;
                match e {
                    b'"' | b'\\' | b'/' | b'\'' => {
                        out.push(e);
                        r += 1;
                    }
                    b'b' => {
                        out.push(8);
                        r += 1;
                    }
                    b'f' => {
                        out.push(12);
                        r += 1;
                    }
                    b'n' => {
                        out.push(b'\n');
                        r += 1;
                    }
                    b'r' => {
                        out.push(b'\r');
                        r += 1;
                    }
                    b't' => {
                        out.push(b'\t');
                        r += 1;
                    }
                    b'u' => {
                        let rr = getu4(&s[r - 1..])?;
                        r += 5;
                        let ch = if (0xD800..0xE000).contains(&rr) {
                            match getu4(&s[r..]) {
                                Some(rr1)
                                    if (0xD800..0xDC00).contains(&rr)
                                        && (0xDC00..0xE000).contains(&rr1) =>
                                {
                                    r += 6;
                                    char::from_u32(0x10000 + ((rr - 0xD800) << 10) + (rr1 - 0xDC00))
                                        .unwrap_or('\u{FFFD}')
                                }
                                _ => '\u{FFFD}',
                            }
                        } else {
                            char::from_u32(rr).unwrap_or('\u{FFFD}')
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return None,
                }
            }
            b'"' => return None,
            _ => {
                out.push(c);
                r += 1;
            }
        }
    }
    Some(out)
}

fn getu4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 || s[0] != b'\\' || s[1] != b'u' {
        return None;
    }
    s[2..6].iter().try_fold(0u32, |acc, &c| {
        (c as char).to_digit(16).map(|d| acc * 16 + d)
    })
}

/// Lossy text of a value; U+FFFD becomes a space as in Loki.
fn value_string(v: &[u8]) -> String {
    let s = super::text(v);
    if s.contains('\u{FFFD}') {
        s.replace('\u{FFFD}', " ")
    } else {
        s.into_owned()
    }
}

/// `| logfmt [--strict] [--keep-empty]`.
pub(crate) struct LogfmtParser {
    pub(crate) strict: bool,
    pub(crate) keep_empty: bool,
}

impl LogfmtParser {
    pub(crate) fn process(&self, line: &str, lbs: &mut LabelsBuilder<'_>) {
        let mut dec = Decoder::new(line);
        while !dec.eol() {
            let Some((raw_key, val)) = dec.scan() else {
                if self.strict && dec.err.is_some() {
                    break;
                }
                continue;
            };
            let key = sanitize_label_key(&super::text(raw_key));
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
            let v = val.as_bytes();
            if !self.keep_empty && v.is_empty() {
                continue;
            }
            lbs.set_parsed(key, value_string(v));
        }
        if self.strict
            && let Some(e) = dec.err
        {
            lbs.add_err(LOGFMT_ERR, Some(e));
        }
    }
}

/// `| logfmt a="key", b`: named extractions.
pub(crate) struct LogfmtExpressionParser {
    pub(crate) strict: bool,
    /// (label, logfmt key) in query order.
    pub(crate) exprs: Vec<(String, String)>,
}

/// Parses a logfmt extraction expression: an identifier or a quoted key.
pub(crate) fn parse_logfmt_expression(expr: &str) -> Result<String, String> {
    let t = expr.trim_matches([' ', '\t', '\n']);
    let fail = |c: char| {
        Err(format!(
            "cannot parse expression [{expr}]: unexpected char {c}"
        ))
    };
    let mut chars = t.chars();
    match chars.next() {
        None => Ok(String::new()),
        Some('"') => {
            let inner: String = chars.take_while(|&c| c != '"' && c != ']').collect();
            Ok(inner)
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            for ch in t.chars() {
                if ch == ' ' || ch == '\t' || ch == '\n' {
                    return Err(format!(
                        "cannot parse expression [{expr}]: syntax error: unexpected KEY"
                    ));
                }
                if !(ch.is_ascii_alphanumeric() || ch == '_') {
                    return fail(ch);
                }
            }
            Ok(t.to_string())
        }
        Some(c) => fail(c),
    }
}

impl LogfmtExpressionParser {
    pub(crate) fn process(&self, line: &str, lbs: &mut LabelsBuilder<'_>) {
        // Every extracted label exists, empty when the key is missing.
        for (id, _) in &self.exprs {
            if !lbs.collides(id) {
                lbs.set_parsed(id.clone(), String::new());
            }
        }
        let mut dec = Decoder::new(line);
        while !dec.eol() {
            let Some((raw_key, val)) = dec.scan() else {
                if self.strict && dec.err.is_some() {
                    break;
                }
                continue;
            };
            let key = sanitize_label_key(&super::text(raw_key));
            if key.is_empty() {
                continue;
            }
            let always = self.exprs.iter().any(|(id, _)| *id == key);
            if !always && lbs.extracted(&key) {
                continue;
            }
            let v = val.as_bytes();
            let v = if contains_replacement(v) || std::str::from_utf8(v).is_err() {
                String::new()
            } else {
                super::text(v).into_owned()
            };
            // A key that is some extraction's source becomes that label; a key equal to a
            // label name is kept under that name (Loki's lookup does both).
            let mut target = key;
            if let Some((id, _)) = self.exprs.iter().find(|(_, orig)| *orig == target) {
                target = id.clone();
            }
            if self.exprs.iter().any(|(id, _)| *id == target) {
                if lbs.collides(&target) {
                    target.push_str(DUPLICATE_SUFFIX);
                }
                lbs.set_parsed(target, v);
            }
        }
        if self.strict
            && let Some(e) = dec.err
        {
            lbs.add_err(LOGFMT_ERR, Some(e));
        }
    }
}
