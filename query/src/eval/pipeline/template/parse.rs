//! Lexer and parser of Go's `text/template` syntax (the subset Loki users write: actions,
//! pipelines, variables, if/else/with/range/break/continue, define/template/block, comments and
//! trim markers), producing the tree `exec` walks. Errors read like Go's.

use std::sync::Arc;

use regex::Regex;

/// A parsed template body.
pub(crate) type List = Vec<Node>;

/// Template nodes.
#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    /// `{{template "name" pipeline}}`.
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: usize,
    },
}

/// `if`, `with` and `range`: a pipeline, its body and the `else` body.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: List,
    pub(crate) else_list: Option<List>,
}

/// A pipeline with optional variable declarations.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

/// One stage of a pipeline: a function or value and its arguments.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) args: Vec<Arg>,
    /// Pre-compiled regular expression when this calls a regex function with a constant pattern.
    pub(crate) regex: Option<(String, Arc<Regex>)>,
}

/// Operands.
#[derive(Debug)]
pub(crate) enum Arg {
    /// `.a.b`.
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.a.b` (`$` is the root).
    Variable {
        pos: usize,
        name: String,
        fields: Vec<String>,
    },
    /// `(...)` or a function name followed by `.field`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    /// `.`.
    Dot {
        pos: usize,
    },
    /// `nil`.
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        value: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    Str {
        pos: usize,
        value: String,
        text: String,
    },
    /// A function name.
    Ident {
        pos: usize,
        name: String,
    },
    /// A parenthesized pipeline.
    Pipe {
        pos: usize,
        pipe: Box<Pipe>,
    },
}

/// A numeric constant with the interpretations Go allows.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
    /// The constant reads as a float (`1.5`, `1e3`) rather than an integer.
    pub(crate) is_float_text: bool,
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Ident { pos, .. }
            | Arg::Pipe { pos, .. } => *pos,
        }
    }

    /// Go's `String()` of the node, used in error contexts.
    pub(crate) fn text(&self) -> String {
        match self {
            Arg::Field { idents, .. } => idents.iter().map(|i| format!(".{i}")).collect(),
            Arg::Variable { name, fields, .. } => {
                let mut s = name.clone();
                for f in fields {
                    s.push('.');
                    s.push_str(f);
                }
                s
            }
            Arg::Chain { node, fields, .. } => {
                let mut s = match node.as_ref() {
                    Arg::Pipe { .. } => node.text(),
                    n => n.text(),
                };
                for f in fields {
                    s.push('.');
                    s.push_str(f);
                }
                s
            }
            Arg::Dot { .. } => ".".to_string(),
            Arg::Nil { .. } => "nil".to_string(),
            Arg::Bool { value, .. } => value.to_string(),
            Arg::Number { num, .. } => num.text.clone(),
            Arg::Str { text, .. } => text.clone(),
            Arg::Ident { name, .. } => name.clone(),
            Arg::Pipe { pipe, .. } => format!("({})", pipe_text(pipe)),
        }
    }
}

fn pipe_text(p: &Pipe) -> String {
    let mut s = String::new();
    if !p.decl.is_empty() {
        s.push_str(&p.decl.join(", "));
        s.push_str(if p.is_assign { " = " } else { " := " });
    }
    for (i, c) in p.cmds.iter().enumerate() {
        if i > 0 {
            s.push_str(" | ");
        }
        let parts: Vec<String> = c.args.iter().map(Arg::text).collect();
        s.push_str(&parts.join(" "));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Field(String),
    Variable(String),
    Str { value: String, text: String },
    Char(String),
    Number(String),
    Bool(bool),
    Nil,
    Dot,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
    Keyword(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Item {
    tok: Tok,
    pos: usize,
    line: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line: usize,
    items: Vec<Item>,
    paren_depth: usize,
}

impl<'s> Lexer<'s> {
    fn err(&self, msg: String) -> String {
        format!("{}: {}", self.line, msg)
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.items.push(Item {
            tok,
            pos,
            line: self.line,
        });
    }

    fn run(mut self) -> Result<Vec<Item>, String> {
        let b = self.src.as_bytes();
        loop {
            // Text up to the next action.
            let rest = &self.src[self.pos..];
            let Some(off) = rest.find("{{") else {
                if !rest.is_empty() {
                    let start = self.pos;
                    self.push(Tok::Text(rest.to_string()), start);
                    self.line += rest.matches('\n').count();
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(self.items);
            };
            let delim = self.pos + off;
            let trim_left = b.len() >= delim + 4 && b[delim + 2] == b'-' && is_space(b[delim + 3]);
            let mut text = &self.src[self.pos..delim];
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let start = self.pos;
                self.push(Tok::Text(text.to_string()), start);
            }
            self.line += self.src[self.pos..delim].matches('\n').count();
            self.pos = delim + 2;
            if trim_left {
                self.pos += 2;
            }
            // Comment.
            if self.src[self.pos..].starts_with("/*") {
                let Some(end) = self.src[self.pos..].find("*/") else {
                    return Err(self.err("unclosed comment".to_string()));
                };
                let after = self.pos + end + 2;
                self.line += self.src[self.pos..after].matches('\n').count();
                self.pos = after;
                let (is_delim, trim) = self.at_right_delim();
                if !is_delim {
                    return Err(self.err("comment ends before closing delimiter".to_string()));
                }
                self.pos += if trim { 4 } else { 2 };
                if trim {
                    self.skip_leading_space();
                }
                continue;
            }
            self.push(Tok::LeftDelim, delim);
            self.inside_action()?;
        }
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.src.as_bytes()[self.pos..];
        if rest.len() >= 4 && is_space(rest[0]) && rest[1] == b'-' && &rest[2..4] == b"}}" {
            return (true, true);
        }
        (rest.starts_with(b"}}"), false)
    }

    fn skip_leading_space(&mut self) {
        while self.pos < self.src.len() && is_space(self.src.as_bytes()[self.pos]) {
            if self.src.as_bytes()[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
    }

    fn inside_action(&mut self) -> Result<(), String> {
        loop {
            let (is_delim, trim) = self.at_right_delim();
            if is_delim {
                if self.paren_depth != 0 {
                    return Err(self.err("unclosed left paren".to_string()));
                }
                let p = if trim { self.pos + 2 } else { self.pos };
                if trim {
                    // The space before the marker is not a token.
                    self.pos += 1;
                }
                self.push(Tok::RightDelim, p);
                self.pos += if trim { 3 } else { 2 };
                if trim {
                    self.skip_leading_space();
                }
                return Ok(());
            }
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.err("unclosed action".to_string()));
            };
            let start = self.pos;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self.pos < self.src.len() {
                        let ch = self.src.as_bytes()[self.pos];
                        if !is_space(ch) {
                            break;
                        }
                        // Stop before " -}}" so the trim marker is seen.
                        if self.src.as_bytes()[self.pos..].starts_with(b" -}}")
                            || (self.src.len() >= self.pos + 4
                                && self.src.as_bytes()[self.pos + 1] == b'-'
                                && &self.src.as_bytes()[self.pos + 2..self.pos + 4] == b"}}")
                        {
                            break;
                        }
                        if ch == b'\n' {
                            self.line += 1;
                        }
                        self.pos += 1;
                    }
                    if self.pos > start {
                        self.push(Tok::Space, start);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                ':' => {
                    if self.src[self.pos + 1..].starts_with('=') {
                        self.pos += 2;
                        self.push(Tok::Declare, start);
                    } else {
                        return Err(self.err("expected :=".to_string()));
                    }
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                '"' => {
                    let (value, len) = self.quoted()?;
                    let text = self.src[start..start + len].to_string();
                    self.pos += len;
                    self.push(Tok::Str { value, text }, start);
                }
                '`' => {
                    let Some(end) = self.src[self.pos + 1..].find('`') else {
                        return Err(self.err("unterminated raw quoted string".to_string()));
                    };
                    let value = self.src[self.pos + 1..self.pos + 1 + end].to_string();
                    let text = self.src[start..self.pos + end + 2].to_string();
                    self.line += value.matches('\n').count();
                    self.pos += end + 2;
                    self.push(Tok::Str { value, text }, start);
                }
                '$' => {
                    self.pos += 1;
                    self.scan_alnum();
                    let name = self.src[start..self.pos].to_string();
                    self.check_terminator()?;
                    self.push(Tok::Variable(name), start);
                }
                '\'' => {
                    let mut i = self.pos + 1;
                    let bytes = self.src.as_bytes();
                    loop {
                        if i >= bytes.len() || bytes[i] == b'\n' {
                            return Err(self.err("unterminated character constant".to_string()));
                        }
                        if bytes[i] == b'\\' {
                            i += 2;
                            continue;
                        }
                        if bytes[i] == b'\'' {
                            break;
                        }
                        i += 1;
                    }
                    let text = self.src[start..=i].to_string();
                    self.pos = i + 1;
                    self.push(Tok::Char(text), start);
                }
                '.' => {
                    let next = self.src[self.pos + 1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.number()?;
                    } else if next.is_some_and(is_alnum) {
                        self.pos += 1;
                        self.scan_alnum();
                        let name = self.src[start + 1..self.pos].to_string();
                        self.check_terminator()?;
                        self.push(Tok::Field(name), start);
                    } else {
                        self.pos += 1;
                        self.push(Tok::Dot, start);
                    }
                }
                '+' | '-' | '0'..='9' => self.number()?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.push(Tok::LeftParen, start);
                }
                ')' => {
                    self.pos += 1;
                    if self.paren_depth == 0 {
                        return Err(self.err("unexpected right paren".to_string()));
                    }
                    self.paren_depth -= 1;
                    self.push(Tok::RightParen, start);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                c if is_alnum(c) => {
                    self.scan_alnum();
                    let word = &self.src[start..self.pos];
                    self.check_terminator()?;
                    let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                        Tok::Keyword(k)
                    } else {
                        match word {
                            "true" => Tok::Bool(true),
                            "false" => Tok::Bool(false),
                            "nil" => Tok::Nil,
                            w => Tok::Ident(w.to_string()),
                        }
                    };
                    self.push(tok, start);
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    return Err(self.err(format!("unexpected \"{c}\" in command")));
                }
                c => {
                    return Err(self.err(format!(
                        "unrecognized character in action: U+{:04X}",
                        c as u32
                    )));
                }
            }
        }
    }

    fn scan_alnum(&mut self) {
        while let Some(c) = self.src[self.pos..].chars().next() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn check_terminator(&self) -> Result<(), String> {
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok(());
        };
        if matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(' | '='
        ) || rest.starts_with("}}")
        {
            return Ok(());
        }
        Err(self.err(format!("bad character U+{:04X} '{c}'", c as u32)))
    }

    fn quoted(&self) -> Result<(String, usize), String> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos + 1;
        loop {
            if i >= bytes.len() || bytes[i] == b'\n' {
                return Err(self.err("unterminated quoted string".to_string()));
            }
            if bytes[i] == b'\\' {
                i += 2;
                continue;
            }
            if bytes[i] == b'"' {
                break;
            }
            i += 1;
        }
        let inner = &self.src[self.pos + 1..i];
        let value = unquote_go(inner).ok_or_else(|| self.err("invalid syntax".to_string()))?;
        Ok((value, i + 1 - self.pos))
    }

    fn number(&mut self) -> Result<(), String> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if i + 1 < b.len() && b[i] == b'0' {
            match b[i + 1] {
                b'x' | b'X' => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                b'o' | b'O' => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                b'b' | b'B' => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && digits.contains(&b[i]) {
                i += 1;
            }
        }
        if !exp.is_empty() && i < b.len() && exp.contains(&b[i]) {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            while i < b.len() && b"0123456789_".contains(&b[i]) {
                i += 1;
            }
        }
        if i < b.len() && b[i] == b'i' {
            i += 1;
        }
        self.pos = i;
        if let Some(c) = self.src[i..].chars().next()
            && is_alnum(c)
        {
            let mut j = i;
            while let Some(c) = self.src[j..].chars().next() {
                if !is_alnum(c) {
                    break;
                }
                j += c.len_utf8();
            }
            return Err(self.err(format!("bad number syntax: \"{}\"", &self.src[start..j])));
        }
        let text = self.src[start..i].to_string();
        self.push(Tok::Number(text), start);
        Ok(())
    }
}

/// Unquotes the inside of a Go double-quoted string literal.
pub(crate) fn unquote_go(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => return None,
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v = 0u32;
                for _ in 0..n {
                    v = v * 16 + chars.next()?.to_digit(16)?;
                }
                if e == 'x' {
                    // A byte; only ASCII keeps the string valid UTF-8.
                    out.push(char::from_u32(v).filter(|_| v < 0x80).unwrap_or('\u{FFFD}'));
                } else {
                    out.push(char::from_u32(v)?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                if v > 255 {
                    return None;
                }
                out.push(char::from_u32(v).filter(|_| v < 0x80).unwrap_or('\u{FFFD}'));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Value of a Go character constant like `'a'` or `'\n'`.
fn char_value(text: &str) -> Option<i64> {
    let inner = &text[1..text.len() - 1];
    if inner == "\\'" {
        return Some('\'' as i64);
    }
    if inner == "\"" {
        return Some('"' as i64);
    }
    let s = unquote_go(inner)?;
    let mut it = s.chars();
    let c = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some(c as i64)
}

fn parse_number(text: &str) -> Option<Number> {
    if text.starts_with('\'') {
        let v = char_value(text)?;
        return Some(Number {
            text: text.to_string(),
            int: Some(v),
            float: Some(v as f64),
            is_float_text: false,
        });
    }
    if text.ends_with('i') {
        // Complex constants are valid Go but useless here.
        return None;
    }
    let int = super::super::convert::parse_int_base0(text);
    let is_hex = {
        let t = text.trim_start_matches(['+', '-']);
        t.len() > 1 && (t.as_bytes()[1] | 0x20) == b'x'
    };
    let float = super::super::convert::parse_float_ok(text);
    if int.is_none() && float.is_none() {
        return None;
    }
    let is_float_text =
        !is_hex && text.contains(['.', 'e', 'E']) || (is_hex && text.contains(['p', 'P']));
    let mut int = int;
    if int.is_none()
        && let Some(f) = float
        && f.fract() == 0.0
        && f.abs() < 9.2e18
    {
        int = Some(f as i64);
    }
    Some(Number {
        text: text.to_string(),
        int,
        float: float.or(int.map(|i| i as f64)),
        is_float_text,
    })
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Deepest nesting of parentheses and control structures a template may have.
const MAX_NESTING: usize = 100;

/// What the parser needs to know about functions.
pub(crate) trait FuncCheck {
    fn exists(&self, name: &str) -> bool;
}

struct Parser<'s, 'f> {
    items: Vec<Item>,
    i: usize,
    vars: Vec<String>,
    funcs: &'f dyn FuncCheck,
    range_depth: usize,
    /// Nesting of pipelines and control structures, bounded so deep input cannot exhaust the
    /// stack.
    depth: usize,
    defines: Vec<(String, List)>,
    _src: std::marker::PhantomData<&'s ()>,
}

/// A parsed template: its body and `{{define}}`d templates.
pub(crate) struct Parsed {
    pub(crate) root: List,
    pub(crate) defines: Vec<(String, List)>,
}

/// Parses template text. The error is "line: message" (the caller adds the template name).
pub(crate) fn parse(src: &str, funcs: &dyn FuncCheck) -> Result<Parsed, String> {
    let items = Lexer {
        src,
        pos: 0,
        line: 1,
        items: Vec::new(),
        paren_depth: 0,
    }
    .run()?;
    let mut p = Parser {
        items,
        i: 0,
        vars: vec!["$".to_string()],
        funcs,
        range_depth: 0,
        depth: 0,
        defines: Vec::new(),
        _src: std::marker::PhantomData,
    };
    let root = p.top()?;
    Ok(Parsed {
        root,
        defines: p.defines,
    })
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else,
}

impl Parser<'_, '_> {
    fn peek(&self) -> &Item {
        &self.items[self.i.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let it = self.peek().clone();
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let save = self.i;
        let it = self.next_non_space();
        self.i = save;
        it
    }

    fn err(&self, line: usize, msg: impl Into<String>) -> String {
        format!("{}: {}", line, msg.into())
    }

    fn top(&mut self) -> Result<List, String> {
        let (list, end) = self.list()?;
        match end {
            Stop::Eof => Ok(list),
            Stop::End => Err(self.err(self.peek().line, "unexpected {{end}}")),
            Stop::Else => Err(self.err(self.peek().line, "unexpected {{else}}")),
        }
    }

    /// Nodes until EOF, `{{end}}` or `{{else}}` (the keyword consumed, not its delimiter).
    fn list(&mut self) -> Result<(List, Stop), String> {
        let mut out = Vec::new();
        loop {
            let it = self.next();
            match it.tok {
                Tok::Eof => return Ok((out, Stop::Eof)),
                Tok::Text(t) => out.push(Node::Text(t)),
                Tok::LeftDelim => {
                    let kw = self.peek_non_space();
                    match kw.tok {
                        Tok::Keyword("end") => {
                            self.next_non_space();
                            return Ok((out, Stop::End));
                        }
                        Tok::Keyword("else") => {
                            self.next_non_space();
                            return Ok((out, Stop::Else));
                        }
                        Tok::Keyword("define") => {
                            self.next_non_space();
                            self.define()?;
                        }
                        _ => {
                            if let Some(n) = self.action()? {
                                out.push(n);
                            }
                        }
                    }
                }
                _ => return Err(self.err(it.line, format!("unexpected {:?}", it.tok))),
            }
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), String> {
        let it = self.next_non_space();
        if it.tok != Tok::RightDelim {
            return Err(self.err(
                it.line,
                format!("unexpected {} in {context}", tok_desc(&it.tok)),
            ));
        }
        Ok(())
    }

    fn action(&mut self) -> Result<Option<Node>, String> {
        let it = self.next_non_space();
        match it.tok {
            Tok::Keyword("if") => Ok(Some(Node::If(self.control("if")?))),
            Tok::Keyword("with") => Ok(Some(Node::With(self.control("with")?))),
            Tok::Keyword("range") => {
                self.range_depth += 1;
                let b = self.control("range");
                self.range_depth -= 1;
                Ok(Some(Node::Range(b?)))
            }
            Tok::Keyword("break") => {
                if self.range_depth == 0 {
                    return Err(self.err(it.line, "{{break}} outside {{range}}"));
                }
                self.expect_right_delim("{{break}}")?;
                Ok(Some(Node::Break))
            }
            Tok::Keyword("continue") => {
                if self.range_depth == 0 {
                    return Err(self.err(it.line, "{{continue}} outside {{range}}"));
                }
                self.expect_right_delim("{{continue}}")?;
                Ok(Some(Node::Continue))
            }
            Tok::Keyword("template") => self.template_call("template").map(Some),
            Tok::Keyword("block") => {
                // {{block "name" pipeline}} T {{end}} = define + template.
                let node = self.template_call("block")?;
                let Node::Template { name, .. } = &node else {
                    return Ok(Some(node));
                };
                let name = name.clone();
                let (list, end) = self.list()?;
                if !matches!(end, Stop::End) {
                    return Err(self.err(self.peek().line, "unexpected EOF"));
                }
                self.expect_right_delim("end")?;
                self.defines.push((name, list));
                Ok(Some(node))
            }
            Tok::Keyword(k) => Err(self.err(it.line, format!("unexpected {{{{{k}}}}}"))),
            _ => {
                self.i -= 1;
                let pipe = self.pipeline("command", Tok::RightDelim, false)?;
                Ok(Some(Node::Action(pipe)))
            }
        }
    }

    fn define(&mut self) -> Result<(), String> {
        let it = self.next_non_space();
        let Tok::Str { value: name, .. } = it.tok else {
            return Err(self.err(it.line, "define: expected string"));
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (list, end) = self.list()?;
        self.vars = saved_vars;
        if !matches!(end, Stop::End) {
            return Err(self.err(self.peek().line, "unexpected EOF"));
        }
        self.expect_right_delim("end")?;
        self.defines.push((name, list));
        Ok(())
    }

    fn template_call(&mut self, context: &str) -> Result<Node, String> {
        let it = self.next_non_space();
        let Tok::Str { value: name, .. } = it.tok else {
            return Err(self.err(
                it.line,
                format!("unexpected {} in {context} clause", tok_desc(&it.tok)),
            ));
        };
        let next = self.peek_non_space();
        let pipe = if next.tok == Tok::RightDelim {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline(context, Tok::RightDelim, false)?)
        };
        Ok(Node::Template {
            name,
            pipe,
            pos: it.pos,
        })
    }

    fn control(&mut self, context: &'static str) -> Result<Branch, String> {
        self.depth += 1;
        let r = if self.depth > MAX_NESTING {
            Err(self.err(self.peek().line, "template nesting too deep"))
        } else {
            self.control_inner(context)
        };
        self.depth -= 1;
        r
    }

    fn control_inner(&mut self, context: &'static str) -> Result<Branch, String> {
        let mark = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim, context == "range")?;
        let (list, end) = self.list()?;
        let else_list = match end {
            Stop::Eof => return Err(self.err(self.peek().line, "unexpected EOF")),
            Stop::End => {
                self.expect_right_delim("end")?;
                None
            }
            Stop::Else => {
                // `{{else if ...}}` / `{{else with ...}}` chain into a nested node.
                let nx = self.peek_non_space();
                if (context == "if" && nx.tok == Tok::Keyword("if"))
                    || (context == "with" && nx.tok == Tok::Keyword("with"))
                {
                    self.next_non_space();
                    let inner = self.control(context)?;
                    Some(vec![if context == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }])
                } else {
                    self.expect_right_delim("else")?;
                    let (else_list, end) = self.list()?;
                    match end {
                        Stop::End => self.expect_right_delim("end")?,
                        Stop::Else => {
                            return Err(self.err(self.peek().line, "expected end; found {{else}}"));
                        }
                        Stop::Eof => return Err(self.err(self.peek().line, "unexpected EOF")),
                    }
                    Some(else_list)
                }
            }
        };
        self.vars.truncate(mark);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok, allow_two: bool) -> Result<Pipe, String> {
        self.depth += 1;
        let r = if self.depth > MAX_NESTING {
            Err(self.err(self.peek().line, "template nesting too deep"))
        } else {
            self.pipeline_inner(context, end, allow_two)
        };
        self.depth -= 1;
        r
    }

    fn pipeline_inner(&mut self, context: &str, end: Tok, allow_two: bool) -> Result<Pipe, String> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=`.
        let save = self.i;
        if let Tok::Variable(v) = self.next_non_space().tok {
            let after = self.next_non_space();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = after.tok == Tok::Assign;
                    if pipe.is_assign && !self.vars.contains(&v) {
                        return Err(self.err(after.line, format!("undefined variable \"{v}\"")));
                    }
                    pipe.decl.push(v);
                }
                Tok::Comma if allow_two => {
                    let v2 = self.next_non_space();
                    let Tok::Variable(v2) = v2.tok else {
                        return Err(self.err(v2.line, "range can only initialize variables"));
                    };
                    let op = self.next_non_space();
                    if !matches!(op.tok, Tok::Declare | Tok::Assign) {
                        return Err(self.err(op.line, "range can only initialize variables"));
                    }
                    pipe.is_assign = op.tok == Tok::Assign;
                    pipe.decl.push(v);
                    pipe.decl.push(v2);
                }
                _ => self.i = save,
            }
        } else {
            self.i = save;
        }
        loop {
            let it = self.next_non_space();
            if it.tok == end {
                if pipe.cmds.is_empty() {
                    return Err(self.err(it.line, format!("missing value for {context}")));
                }
                for (n, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args[0],
                        Arg::Bool { .. }
                            | Arg::Dot { .. }
                            | Arg::Nil { .. }
                            | Arg::Number { .. }
                            | Arg::Str { .. }
                    ) {
                        return Err(self.err(
                            it.line,
                            format!("non executable command in pipeline stage {}", n + 1),
                        ));
                    }
                }
                if !pipe.is_assign {
                    for d in &pipe.decl {
                        self.vars.push(d.clone());
                    }
                }
                return Ok(pipe);
            }
            match it.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str { .. }
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                t => {
                    return Err(
                        self.err(it.line, format!("unexpected {} in {context}", tok_desc(&t)))
                    );
                }
            }
        }
    }

    fn command(&mut self) -> Result<Command, String> {
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            let arg = self.operand()?;
            match arg {
                Some(a) => args.push(a),
                None => {
                    let it = self.peek();
                    return Err(self.err(
                        it.line,
                        format!("unexpected {} in operand", tok_desc(&it.tok)),
                    ));
                }
            }
            let it = self.next();
            match it.tok {
                Tok::Space => {
                    let nx = self.peek_non_space();
                    match nx.tok {
                        Tok::RightDelim | Tok::RightParen => {
                            break;
                        }
                        Tok::Pipe => {
                            self.next_non_space();
                            break;
                        }
                        _ => continue,
                    }
                }
                Tok::RightDelim | Tok::RightParen => {
                    self.i -= 1;
                    break;
                }
                Tok::Pipe => break,
                t => {
                    return Err(
                        self.err(it.line, format!("unexpected {} in operand", tok_desc(&t)))
                    );
                }
            }
        }
        if args.is_empty() {
            return Err(self.err(self.peek().line, "empty command"));
        }
        let regex = match (&args[0], args.get(1)) {
            (Arg::Ident { name, .. }, Some(Arg::Str { value, .. }))
                if matches!(
                    name.as_str(),
                    "regexReplaceAll" | "regexReplaceAllLiteral" | "count"
                ) =>
            {
                super::super::re::compile(value)
                    .ok()
                    .map(|r| (value.clone(), Arc::new(r)))
            }
            _ => None,
        };
        Ok(Command { args, regex })
    }

    fn skip_spaces(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn operand(&mut self) -> Result<Option<Arg>, String> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek().tok, Tok::Field(_)) {
            return Ok(Some(node));
        }
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.i += 1;
        }
        let node = match node {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                pos,
                name,
                fields: mut f,
            } => {
                f.extend(fields);
                Arg::Variable {
                    pos,
                    name,
                    fields: f,
                }
            }
            Arg::Bool { .. }
            | Arg::Str { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.err(
                    self.peek().line,
                    format!("unexpected . after term \"{}\"", node.text()),
                ));
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                fields,
            },
        };
        Ok(Some(node))
    }

    fn term(&mut self) -> Result<Option<Arg>, String> {
        let it = self.next_non_space();
        let pos = it.pos;
        Ok(Some(match it.tok {
            Tok::Ident(name) => {
                if !self.funcs.exists(&name) {
                    return Err(self.err(it.line, format!("function \"{name}\" not defined")));
                }
                Arg::Ident { pos, name }
            }
            Tok::Dot => Arg::Dot { pos },
            Tok::Nil => Arg::Nil { pos },
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(it.line, format!("undefined variable \"{v}\"")));
                }
                Arg::Variable {
                    pos,
                    name: v,
                    fields: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: vec![f],
            },
            Tok::Bool(b) => Arg::Bool { pos, value: b },
            Tok::Number(t) | Tok::Char(t) => match parse_number(&t) {
                Some(num) => Arg::Number { pos, num },
                None => return Err(self.err(it.line, format!("illegal number syntax: \"{t}\""))),
            },
            Tok::Str { value, text } => Arg::Str { pos, value, text },
            Tok::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", Tok::RightParen, false)?;
                Arg::Pipe {
                    pos,
                    pipe: Box::new(pipe),
                }
            }
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

fn tok_desc(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Ident(s) | Tok::Field(s) | Tok::Variable(s) | Tok::Number(s) | Tok::Char(s) => {
            format!("<{s}>")
        }
        Tok::Str { text, .. } => format!("<{text}>"),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Dot => "<.>".into(),
        Tok::Pipe => "<|>".into(),
        Tok::LeftParen => "<(>".into(),
        Tok::RightParen => "<)>".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "<,>".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Eof => "EOF".into(),
    }
}
