//! The `json` and `unpack` parsers. Loki reads JSON with a lenient scanner (grafana/jsonparser)
//! whose acceptance and error texts show up in results, so this is a scanner with the same rules,
//! written iteratively so deep nesting cannot overflow the stack.

use std::borrow::Cow;

use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};
use super::{append_sanitized, sanitize_label_key};

const JSON_ERR: &str = "JSONParserErr";

/// jsonparser's error values (their texts become `__error_details__`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    Malformed,
    MalformedString,
    MalformedArray,
    MalformedObject,
    MalformedStringEscape,
    UnknownValueType,
}

impl JsonError {
    fn text(self) -> &'static str {
        match self {
            JsonError::Malformed => "Malformed JSON error",
            JsonError::MalformedString => "Value is string, but can't find closing '\"' symbol",
            JsonError::MalformedArray => "Value is array, but can't find closing ']' symbol",
            JsonError::MalformedObject => {
                "Value looks like object, but can't find closing '}' symbol"
            }
            JsonError::MalformedStringEscape => {
                "Encountered an invalid escape sequence in a string"
            }
            JsonError::UnknownValueType => "Unknown value type",
        }
    }
}

/// Kinds of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Object,
    Array,
    Boolean,
    Null,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// Offset of the next non-whitespace byte.
fn next_token(data: &[u8]) -> Option<usize> {
    data.iter().position(|&c| !is_ws(c))
}

/// Offset just after the closing quote of a string whose opening quote was already consumed,
/// and whether it has escapes.
fn string_end(data: &[u8]) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut i = 0;
    while i < data.len() {
        match data[i..].iter().position(|&c| c == b'"' || c == b'\\') {
            None => return None,
            Some(p) => {
                let j = i + p;
                if data[j] == b'\\' {
                    escaped = true;
                    i = j + 1;
                    continue;
                }
                if !escaped {
                    return Some((j + 1, false));
                }
                // Count the backslashes before this quote.
                let mut k = j;
                let mut n = 0;
                while k > 0 && data[k - 1] == b'\\' {
                    n += 1;
                    k -= 1;
                }
                if n % 2 == 0 {
                    return Some((j + 1, true));
                }
                i = j + 1;
            }
        }
    }
    None
}

/// Offset just after the matching close symbol; only `open`/`close` are counted, strings are
/// skipped.
fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b'"' {
            let (se, _) = string_end(&data[i + 1..])?;
            i += se;
        } else if c == open {
            level += 1;
        } else if c == close {
            level = level.wrapping_sub(1);
            if level == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

fn token_end(data: &[u8]) -> usize {
    data.iter()
        .position(|&c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .unwrap_or(data.len())
}

/// Matching `}` offsets of every `{` in a line, computed in one pass so nested objects need no
/// rescans (jsonparser's `blockEnd` per level is quadratic on deep nesting).
struct BraceTable {
    /// (open offset, end offset just past the close), sorted by open offset.
    pairs: Vec<(usize, usize)>,
}

impl BraceTable {
    fn build(data: &[u8], from: usize) -> Self {
        let mut pairs = Vec::new();
        let mut stack = Vec::new();
        let mut i = from;
        while i < data.len() {
            match data[i] {
                b'"' => match string_end(&data[i + 1..]) {
                    Some((se, _)) => i += se,
                    None => break,
                },
                b'{' => stack.push(i),
                b'}' => {
                    if let Some(o) = stack.pop() {
                        pairs.push((o, i + 1));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        pairs.sort_unstable();
        BraceTable { pairs }
    }

    fn end_of(&self, open: usize) -> Option<usize> {
        self.pairs
            .binary_search_by_key(&open, |p| p.0)
            .ok()
            .map(|i| self.pairs[i].1)
    }
}

/// jsonparser's `getType` at `offset` of `data[..end]`: the value (strings without quotes), its
/// kind and the offset after it.
fn get_type(
    data: &[u8],
    offset: usize,
    end: usize,
    braces: Option<&BraceTable>,
) -> Result<(usize, usize, Kind, usize), JsonError> {
    let c = data[offset];
    match c {
        b'"' => match string_end(&data[offset + 1..end]) {
            Some((idx, _)) => Ok((offset + 1, offset + idx, Kind::String, offset + idx + 1)),
            None => Err(JsonError::MalformedString),
        },
        b'[' => match block_end(&data[offset..end], b'[', b']') {
            Some(e) => Ok((offset, offset + e, Kind::Array, offset + e)),
            None => Err(JsonError::MalformedArray),
        },
        b'{' => {
            let e = match braces {
                Some(t) => t.end_of(offset).filter(|&e| e <= end),
                None => block_end(&data[offset..end], b'{', b'}').map(|e| offset + e),
            };
            match e {
                Some(e) => Ok((offset, e, Kind::Object, e)),
                None => Err(JsonError::MalformedObject),
            }
        }
        _ => {
            let te = offset + token_end(&data[offset..end]);
            let v = &data[offset..te];
            let kind = match c {
                b't' | b'f' if v == b"true" || v == b"false" => Kind::Boolean,
                b'u' | b'n' if v == b"null" => Kind::Null,
                b'0'..=b'9' | b'-' => Kind::Number,
                _ => return Err(JsonError::UnknownValueType),
            };
            Ok((offset, te, kind, te))
        }
    }
}

/// jsonparser's `Get(data)` without keys: the first value after whitespace.
fn get_value(
    data: &[u8],
    from: usize,
    end: usize,
    braces: Option<&BraceTable>,
) -> Result<(usize, usize, Kind, usize), JsonError> {
    let Some(n) = next_token(&data[from..end]) else {
        return Err(JsonError::Malformed);
    };
    get_type(data, from + n, end, braces)
}

/// jsonparser's `Unescape`.
pub(crate) fn unescape(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    let Some(first) = input.iter().position(|&c| c == b'\\') else {
        return Some(Cow::Borrowed(input));
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < input.len() {
        if input[i] != b'\\' {
            let next = input[i..]
                .iter()
                .position(|&c| c == b'\\')
                .map_or(input.len(), |p| i + p);
            out.extend_from_slice(&input[i..next]);
            i = next;
            continue;
        }
        let e = *input.get(i + 1)?;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return None,
        };
        if let Some(s) = simple {
            out.push(s);
            i += 2;
            continue;
        }
        let r = hex4(&input[i..])?;
        let (ch, used) = if r <= 0xFFFF && !(0xD800..=0xDFFF).contains(&r) {
            (r, 6)
        } else {
            let r2 = hex4(input.get(i + 6..)?)?;
            if r2 < 0xDC00 {
                return None;
            }
            (
                0x10000 + ((r.wrapping_sub(0xD800)) << 10) + r2.wrapping_sub(0xDC00),
                12,
            )
        };
        let c = char::from_u32(ch).unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += used;
    }
    Some(Cow::Owned(out))
}

fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 {
        return None;
    }
    s[2..6].iter().try_fold(0u32, |acc, &c| {
        (c as char).to_digit(16).map(|d| acc * 16 + d)
    })
}

/// Loki's `unescapeJSONString`: unescaped text, "" on a bad escape, U+FFFD as a space.
pub(crate) fn unescape_string(raw: &[u8]) -> String {
    match unescape(raw) {
        None => String::new(),
        Some(b) => {
            let s = super::text(&b);
            if s.contains('\u{FFFD}') {
                s.replace('\u{FFFD}', " ")
            } else {
                s.into_owned()
            }
        }
    }
}

/// Iteration state of one object: jsonparser's `ObjectEach` as a resumable frame.
struct Frame {
    end: usize,
    offset: usize,
    /// Number of key prefixes (enclosing objects) of this object's members.
    depth: usize,
    /// The frame resumes after a nested object: the separator after it comes next.
    pending_after: bool,
}

/// Opens an object at `start` within `data[..end]`: `Ok(None)` for `{}`, `Ok(Some(offset))` at
/// the first key.
fn open_object(data: &[u8], start: usize, end: usize) -> Result<Option<usize>, JsonError> {
    let Some(n) = next_token(&data[start..end]) else {
        return Err(JsonError::MalformedObject);
    };
    let mut off = start + n;
    if data[off] != b'{' {
        return Err(JsonError::MalformedObject);
    }
    off += 1;
    let Some(n) = next_token(&data[off..end]) else {
        return Err(JsonError::Malformed);
    };
    off += n;
    if data[off] == b'}' {
        return Ok(None);
    }
    Ok(Some(off))
}

/// An object member: (unescaped key, value start, value end, kind, offset after the value).
type Member<'d> = (Cow<'d, [u8]>, usize, usize, Kind, usize);

/// One member, or `None`
/// at the closing brace.
fn next_member<'d>(
    data: &'d [u8],
    offset: usize,
    end: usize,
    braces: Option<&BraceTable>,
) -> Result<Option<Member<'d>>, JsonError> {
    let mut off = offset;
    match data[off] {
        b'"' => off += 1,
        b'}' => return Ok(None),
        _ => return Err(JsonError::MalformedObject),
    }
    let Some((se, esc)) = string_end(&data[off..end]) else {
        return Err(JsonError::Malformed);
    };
    let raw_key = &data[off..off + se - 1];
    off += se;
    let key = if esc {
        match unescape(raw_key) {
            Some(k) => Cow::Owned(k.into_owned()),
            None => return Err(JsonError::MalformedStringEscape),
        }
    } else {
        Cow::Borrowed(raw_key)
    };
    let Some(n) = next_token(&data[off..end]) else {
        return Err(JsonError::Malformed);
    };
    off += n;
    if data[off] != b':' {
        return Err(JsonError::Malformed);
    }
    off += 1;
    let (vs, ve, kind, after) = get_value(data, off, end, braces)?;
    Ok(Some((key, vs, ve, kind, after)))
}

/// After a member: `Ok(None)` at `}`, `Ok(Some(next key offset))` after a comma.
fn after_member(data: &[u8], offset: usize, end: usize) -> Result<Option<usize>, JsonError> {
    let Some(n) = next_token(&data[offset..end]) else {
        return Err(JsonError::MalformedArray);
    };
    let mut off = offset + n;
    match data[off] {
        b'}' => return Ok(None),
        b',' => off += 1,
        _ => return Err(JsonError::MalformedObject),
    }
    let Some(n) = next_token(&data[off..end]) else {
        return Err(JsonError::MalformedArray);
    };
    Ok(Some(off + n))
}

/// `| json`: every string, number and boolean field, nested names joined with `_`.
pub(crate) fn parse_all(line: &str, lbs: &mut LabelsBuilder<'_>) {
    if let Err(e) = parse_all_inner(line.as_bytes(), lbs) {
        lbs.add_err(JSON_ERR, Some(e.text().to_string()));
    }
}

fn parse_all_inner(data: &[u8], lbs: &mut LabelsBuilder<'_>) -> Result<(), JsonError> {
    let Some(first) = open_object(data, 0, data.len())? else {
        return Ok(());
    };
    let mut braces: Option<BraceTable> = None;
    // Unescaped keys of the enclosing objects.
    let mut prefix: Vec<Vec<u8>> = Vec::new();
    let mut stack = vec![Frame {
        end: data.len(),
        offset: first,
        depth: 0,
        pending_after: false,
    }];
    let mut name_buf: Vec<u8> = Vec::with_capacity(64);
    'frames: while let Some(mut f) = stack.pop() {
        prefix.truncate(f.depth);
        if f.pending_after {
            match after_member(data, f.offset, f.end)? {
                None => continue 'frames,
                Some(n) => f.offset = n,
            }
        }
        loop {
            let Some((key, vs, ve, kind, after)) =
                next_member(data, f.offset, f.end, braces.as_ref())?
            else {
                continue 'frames;
            };
            match kind {
                Kind::String | Kind::Number | Kind::Boolean => {
                    set_field(lbs, &prefix, &key, &data[vs..ve], kind, &mut name_buf);
                }
                Kind::Object => {
                    // The nested object runs first, then this one resumes at its separator.
                    stack.push(Frame {
                        end: f.end,
                        offset: after,
                        depth: f.depth,
                        pending_after: true,
                    });
                    prefix.push(key.into_owned());
                    if let Some(o) = open_object(data, vs, ve)? {
                        stack.push(Frame {
                            end: ve,
                            offset: o,
                            depth: f.depth + 1,
                            pending_after: false,
                        });
                    }
                    // Shallow objects scan their nested values directly; deep ones use one
                    // precomputed table instead of rescanning at every level.
                    if braces.is_none() && f.depth >= 8 {
                        braces = Some(BraceTable::build(data, 0));
                    }
                    continue 'frames;
                }
                Kind::Array | Kind::Null => {}
            }
            match after_member(data, after, f.end)? {
                None => continue 'frames,
                Some(n) => f.offset = n,
            }
        }
    }
    Ok(())
}

/// Loki's `parseLabelValue` for one scalar field.
fn set_field(
    lbs: &mut LabelsBuilder<'_>,
    prefix: &[Vec<u8>],
    key: &[u8],
    raw: &[u8],
    kind: Kind,
    buf: &mut Vec<u8>,
) {
    let name = if prefix.is_empty() {
        let k = sanitize_label_key(&super::text(key));
        if k.is_empty() {
            return;
        }
        if lbs.collides(&k) {
            k + DUPLICATE_SUFFIX
        } else {
            k
        }
    } else {
        let build = |buf: &mut Vec<u8>, last: &[u8]| {
            buf.clear();
            for (i, part) in prefix
                .iter()
                .map(Vec::as_slice)
                .chain(std::iter::once(last))
                .enumerate()
            {
                if blank(part) {
                    continue;
                }
                if i > 0 && !buf.is_empty() {
                    buf.push(b'_');
                }
                append_sanitized(buf, part);
            }
            super::text(buf).into_owned()
        };
        let k = build(buf, key);
        if lbs.collides(&k) {
            let mut last = key.to_vec();
            last.extend_from_slice(DUPLICATE_SUFFIX.as_bytes());
            build(buf, &last)
        } else {
            k
        }
    };
    if lbs.extracted(&name) {
        return;
    }
    let value = match kind {
        Kind::String => unescape_string(raw),
        Kind::Boolean => if raw == b"true" { "true" } else { "false" }.to_string(),
        _ => super::text(raw).into_owned(),
    };
    lbs.set_parsed(name, value);
}

/// True when a key part is only whitespace (skipped in nested names, as Loki does).
fn blank(b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(s) => s.trim().is_empty(),
        Err(_) => false,
    }
}

/// A step of a JSON path expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathStep {
    Key(String),
    Index(usize),
}

/// Parses Loki's JSON path expressions: `a.b`, `a[0]`, `["a b"]`, `a["b"].c`.
pub(crate) fn parse_path(expr: &str) -> Result<Vec<PathStep>, String> {
    let err = |m: &str| Err(format!("cannot parse expression [{expr}]: {m}"));
    #[derive(PartialEq, Clone, Copy)]
    enum Tok {
        Dot,
        Lsb,
        Rsb,
    }
    enum T {
        P(Tok),
        Field(String),
        Str(String),
        Index(usize),
    }
    // Lex.
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\0' {
            break;
        }
        if c == ' ' || c == '\t' || c == '\n' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let mut n = String::new();
            while i < chars.len() {
                let d = chars[i];
                if d == '.' && !n.is_empty() {
                    return err("cannot use float as array index");
                }
                if d == ' ' || d == '\t' || d == '\n' || d == '.' || d == ']' {
                    break;
                }
                if !d.is_ascii_digit() {
                    return err(&format!("non-integer value: {d}"));
                }
                n.push(d);
                i += 1;
            }
            match n.parse::<usize>() {
                Ok(v) => toks.push(T::Index(v)),
                Err(_) => {
                    return err(&format!(
                        "strconv.Atoi: parsing {}: value out of range",
                        super::convert::go_quote(&n)
                    ));
                }
            }
            continue;
        }
        match c {
            '[' => toks.push(T::P(Tok::Lsb)),
            ']' => toks.push(T::P(Tok::Rsb)),
            '.' => toks.push(T::P(Tok::Dot)),
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' && chars[i] != ']' && chars[i] != '\0' {
                    s.push(chars[i]);
                    i += 1;
                }
                toks.push(T::Str(s));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::new();
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    s.push(chars[i]);
                    i += 1;
                }
                toks.push(T::Field(s));
                continue;
            }
            c => return err(&format!("unexpected char {c}")),
        }
        i += 1;
    }
    // Parse: values := (field | access) (access | DOT field)*
    let name = |t: &T| match t {
        T::P(Tok::Dot) => "DOT",
        T::P(Tok::Lsb) => "LSB",
        T::P(Tok::Rsb) => "RSB",
        T::Field(_) => "FIELD",
        T::Str(_) => "STRING",
        T::Index(_) => "INDEX",
    };
    let mut out = Vec::new();
    let mut j = 0;
    while j < toks.len() {
        match &toks[j] {
            T::Field(f) if j == 0 => {
                out.push(PathStep::Key(f.clone()));
                j += 1;
            }
            T::P(Tok::Dot) if j > 0 => match toks.get(j + 1) {
                Some(T::Field(f)) => {
                    out.push(PathStep::Key(f.clone()));
                    j += 2;
                }
                Some(t) => {
                    return err(&format!(
                        "syntax error: unexpected {}, expecting FIELD",
                        name(t)
                    ));
                }
                None => return err("syntax error: unexpected $end, expecting FIELD"),
            },
            T::P(Tok::Lsb) => {
                let step = match toks.get(j + 1) {
                    Some(T::Str(s)) => PathStep::Key(s.clone()),
                    Some(T::Index(n)) => PathStep::Index(*n),
                    Some(t) => {
                        return err(&format!(
                            "syntax error: unexpected {}, expecting STRING or INDEX",
                            name(t)
                        ));
                    }
                    None => return err("syntax error: unexpected $end, expecting STRING or INDEX"),
                };
                match toks.get(j + 2) {
                    Some(T::P(Tok::Rsb)) => {}
                    Some(t) => {
                        return err(&format!(
                            "syntax error: unexpected {}, expecting RSB",
                            name(t)
                        ));
                    }
                    None => return err("syntax error: unexpected $end, expecting RSB"),
                }
                out.push(step);
                j += 3;
            }
            t if j == 0 => {
                return err(&format!(
                    "syntax error: unexpected {}, expecting LSB or FIELD",
                    name(t)
                ));
            }
            t => return err(&format!("syntax error: unexpected {}", name(t))),
        }
    }
    if out.len() > MAX_PATH_STEPS {
        return err("path has too many steps");
    }
    Ok(out)
}

/// Longest JSON path accepted (the lookup recurses once per step).
const MAX_PATH_STEPS: usize = 256;

/// Finds the first value at `path` (document order, duplicates searched in turn).
fn lookup(
    data: &[u8],
    start: usize,
    end: usize,
    path: &[PathStep],
) -> Result<Option<(usize, usize, Kind)>, JsonError> {
    // Iterative over path depth; each level scans one container.
    let Some((step, rest)) = path.split_first() else {
        return Ok(None);
    };
    let Some(n) = next_token(&data[start..end]) else {
        return Ok(None);
    };
    let off = start + n;
    match (step, data[off]) {
        (PathStep::Key(k), b'{') => {
            let Ok(Some(mut pos)) = open_object(data, off, end) else {
                return Ok(None);
            };
            loop {
                // Keys and the colon, leniently: a malformed object just ends the search.
                if data[pos] != b'"' {
                    return Ok(None);
                }
                let Some((se, esc)) = string_end(&data[pos + 1..end]) else {
                    return Ok(None);
                };
                let raw_key = &data[pos + 1..pos + se];
                let after_key = pos + 1 + se;
                let Some(n) = next_token(&data[after_key..end]) else {
                    return Ok(None);
                };
                let colon = after_key + n;
                if data[colon] != b':' {
                    return Ok(None);
                }
                let matched = if esc {
                    unescape(raw_key).is_some_and(|u| *u == *k.as_bytes())
                } else {
                    raw_key == k.as_bytes()
                };
                if matched && rest.is_empty() {
                    return get_value(data, colon + 1, end, None)
                        .map(|(s, e, kind, _)| Some((s, e, kind)));
                }
                let Ok((vs, ve, kind, after)) = get_value(data, colon + 1, end, None) else {
                    return Ok(None);
                };
                if matched && matches!(kind, Kind::Object | Kind::Array) {
                    if let Some(found) = lookup(data, vs, ve, rest)? {
                        return Ok(Some(found));
                    }
                }
                match after_member(data, after, end) {
                    Ok(Some(p)) => pos = p,
                    _ => return Ok(None),
                }
            }
        }
        (PathStep::Index(want), b'[') => {
            let mut pos = off + 1;
            let mut idx = 0usize;
            loop {
                let Some(n) = next_token(&data[pos..end]) else {
                    return Ok(None);
                };
                pos += n;
                if data[pos] == b']' {
                    return Ok(None);
                }
                let got = get_type(data, pos, end, None);
                if idx == *want {
                    if rest.is_empty() {
                        return got.map(|(s, e, kind, _)| Some((s, e, kind)));
                    }
                    return match got {
                        Ok((vs, ve, Kind::Object | Kind::Array, _)) => lookup(data, vs, ve, rest),
                        _ => Ok(None),
                    };
                }
                let Ok((_, _, _, after)) = got else {
                    return Ok(None);
                };
                let Some(n) = next_token(&data[after..end]) else {
                    return Ok(None);
                };
                pos = after + n;
                match data[pos] {
                    b',' => pos += 1,
                    _ => return Ok(None),
                }
                idx += 1;
            }
        }
        _ => Ok(None),
    }
}

/// `| json a="path", ...`.
pub(crate) struct JsonExpressionParser {
    /// (label, path) in query order.
    pub(crate) exprs: Vec<(String, Vec<PathStep>)>,
}

impl JsonExpressionParser {
    pub(crate) fn process(&self, line: &str, lbs: &mut LabelsBuilder<'_>) {
        let data = line.as_bytes();
        if data.is_empty() {
            return;
        }
        if !matches!(data[0], b'"' | b'{' | b'[') {
            lbs.add_err(JSON_ERR, None);
            return;
        }
        let mut matches = 0;
        for (id, path) in &self.exprs {
            if path.is_empty() {
                continue;
            }
            match lookup(data, 0, data.len(), path) {
                Err(e) => lbs.add_err(JSON_ERR, Some(e.text().to_string())),
                Ok(None) => {}
                Ok(Some((s, e, kind))) => {
                    let key = if lbs.collides(id) {
                        format!("{id}{DUPLICATE_SUFFIX}")
                    } else {
                        id.clone()
                    };
                    let value = match kind {
                        Kind::Null => String::new(),
                        Kind::Object => super::text(&data[s..e]).into_owned(),
                        _ => unescape_string(&data[s..e]),
                    };
                    lbs.set_parsed(key, value);
                    matches += 1;
                }
            }
        }
        if matches < self.exprs.len() {
            for (id, _) in &self.exprs {
                if lbs.get(id).is_none() {
                    lbs.set_parsed(id.clone(), String::new());
                }
            }
        }
    }
}

/// `| unpack`: the object written by Promtail's `pack`; `_entry` becomes the line and the
/// other string fields labels (only when `_entry` is present). Returns the new line, if any.
pub(crate) fn unpack(line: &str, lbs: &mut LabelsBuilder<'_>) -> Option<String> {
    let data = line.as_bytes();
    if data.is_empty() {
        return None;
    }
    if data[0] != b'{' {
        lbs.add_err(
            JSON_ERR,
            Some("expecting json object(6), but it is not".to_string()),
        );
        return None;
    }
    match unpack_inner(data, lbs) {
        Err(e) => {
            lbs.add_err(JSON_ERR, Some(e.text().to_string()));
            None
        }
        Ok((Some(entry), buffered)) => {
            for (k, v) in buffered {
                lbs.set_parsed(k, v);
            }
            Some(entry)
        }
        Ok((None, _)) => None,
    }
}

type Unpacked = (Option<String>, Vec<(String, String)>);

fn unpack_inner(data: &[u8], lbs: &LabelsBuilder<'_>) -> Result<Unpacked, JsonError> {
    let mut entry = None;
    let mut buf = Vec::new();
    let Some(mut pos) = open_object(data, 0, data.len())? else {
        return Ok((None, buf));
    };
    while let Some((key, vs, ve, kind, after)) = next_member(data, pos, data.len(), None)? {
        if kind == Kind::String {
            if &*key == b"_entry" {
                match unescape(&data[vs..ve]) {
                    Some(v) => entry = Some(super::text(&v).into_owned()),
                    None => return Err(JsonError::MalformedStringEscape),
                }
            } else {
                let mut k = super::text(&key).into_owned();
                if lbs.collides(&k) {
                    k.push_str(DUPLICATE_SUFFIX);
                }
                if !lbs.extracted(&k) {
                    buf.push((sanitize_label_key(&k), unescape_string(&data[vs..ve])));
                }
            }
        }
        match after_member(data, after, data.len())? {
            None => break,
            Some(p) => pos = p,
        }
    }
    Ok((entry, buf))
}
