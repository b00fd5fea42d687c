//! Tokens of LogQL and the lexer that produces them, with byte spans.
//!
//! The rules are Loki's (`pkg/logql/syntax/lex.go` over Go's `text/scanner`): Go strings and
//! raw strings, Go numbers, a number directly followed by a unit is a duration (Prometheus units
//! first, then Go's) or a byte size (humanize units), `[...]` is a range, `#`, `//` and `/* */`
//! are comments, keywords are case-insensitive, and function names (`rate`, `count`, `bytes`,
//! `ip`, ...) are keywords only when a `(` (or `by (`/`without (`) follows, so they stay usable
//! as label names.

use super::ParseError;
use super::ast::Span;
use super::print::quote;

/// Token kinds. They are declared in the order of Loki's grammar, which is the order its error
/// messages list expected tokens in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tok {
    /// End of input (`$end`).
    Eof,
    /// A byte size such as `10KB`.
    Bytes,
    /// A name.
    Identifier,
    /// A quoted or raw string.
    String,
    /// A number.
    Number,
    /// `--strict` or `--keep-empty`.
    FunctionFlag,
    /// A duration such as `5m` or `1.5s`.
    Duration,
    /// `[5m]`.
    Range,
    /// `=`
    Eq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `!>`
    Npa,
    /// `{`
    OpenBrace,
    /// `}`
    CloseBrace,
    /// `[` (only in messages: a `[` always starts a range).
    OpenBracket,
    /// `]`
    CloseBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `|~`
    PipeMatch,
    /// `|=`
    PipeExact,
    /// `|>`
    PipePattern,
    /// `(`
    OpenParen,
    /// `)`
    CloseParen,
    /// `by`
    By,
    /// `without`
    Without,
    /// `count_over_time`
    CountOverTime,
    /// `rate`
    Rate,
    /// `rate_counter`
    RateCounter,
    /// `sum`
    Sum,
    /// `sort`
    Sort,
    /// `sort_desc`
    SortDesc,
    /// `avg`
    Avg,
    /// `max`
    Max,
    /// `min`
    Min,
    /// `count`
    Count,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `bottomk`
    Bottomk,
    /// `topk`
    Topk,
    /// `approx_topk`
    ApproxTopk,
    /// `bytes_over_time`
    BytesOverTime,
    /// `bytes_rate`
    BytesRate,
    /// `bool`
    Bool,
    /// `json`
    Json,
    /// `regexp`
    Regexp,
    /// `logfmt`
    Logfmt,
    /// `|`
    Pipe,
    /// `line_format`
    LineFmt,
    /// `label_format`
    LabelFmt,
    /// `unwrap`
    Unwrap,
    /// `avg_over_time`
    AvgOverTime,
    /// `sum_over_time`
    SumOverTime,
    /// `min_over_time`
    MinOverTime,
    /// `max_over_time`
    MaxOverTime,
    /// `stdvar_over_time`
    StdvarOverTime,
    /// `stddev_over_time`
    StddevOverTime,
    /// `quantile_over_time`
    QuantileOverTime,
    /// `bytes` (unwrap conversion)
    BytesConv,
    /// `duration` (unwrap conversion)
    DurationConv,
    /// `duration_seconds` (unwrap conversion)
    DurationSecondsConv,
    /// `first_over_time`
    FirstOverTime,
    /// `last_over_time`
    LastOverTime,
    /// `absent_over_time`
    AbsentOverTime,
    /// `vector`
    Vector,
    /// `label_replace`
    LabelReplace,
    /// `unpack`
    Unpack,
    /// `offset`
    Offset,
    /// `pattern`
    Pattern,
    /// `ip`
    Ip,
    /// `on`
    On,
    /// `ignoring`
    Ignoring,
    /// `group_left`
    GroupLeft,
    /// `group_right`
    GroupRight,
    /// `decolorize`
    Decolorize,
    /// `drop`
    Drop,
    /// `keep`
    Keep,
    /// `or`
    Or,
    /// `and`
    And,
    /// `unless`
    Unless,
    /// `==`
    CmpEq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// Where the lexer failed; the parser reports the lexer's error when it reaches this token.
    Error,
}

impl Tok {
    /// The token's name in error messages, as Loki's parser names it.
    pub fn name(self) -> &'static str {
        use Tok::*;
        match self {
            Eof => "$end",
            Bytes => "BYTES",
            Identifier => "IDENTIFIER",
            String => "STRING",
            Number => "NUMBER",
            FunctionFlag => "FUNCTION_FLAG",
            Duration => "DURATION",
            Range => "RANGE",
            Eq => "=",
            Re => "=~",
            Nre => "!~",
            Npa => "!>",
            OpenBrace => "{",
            CloseBrace => "}",
            OpenBracket => "[",
            CloseBracket => "]",
            Comma => ",",
            Dot => ".",
            PipeMatch => "|~",
            PipeExact => "|=",
            PipePattern => "|>",
            OpenParen => "(",
            CloseParen => ")",
            By => "by",
            Without => "without",
            CountOverTime => "COUNT_OVER_TIME",
            Rate => "RATE",
            RateCounter => "RATE_COUNTER",
            Sum => "SUM",
            Sort => "SORT",
            SortDesc => "SORT_DESC",
            Avg => "AVG",
            Max => "MAX",
            Min => "MIN",
            Count => "COUNT",
            Stddev => "STDDEV",
            Stdvar => "STDVAR",
            Bottomk => "BOTTOMK",
            Topk => "TOPK",
            ApproxTopk => "APPROX_TOPK",
            BytesOverTime => "BYTES_OVER_TIME",
            BytesRate => "BYTES_RATE",
            Bool => "bool",
            Json => "json",
            Regexp => "regexp",
            Logfmt => "logfmt",
            Pipe => "|",
            LineFmt => "line_format",
            LabelFmt => "label_format",
            Unwrap => "unwrap",
            AvgOverTime => "AVG_OVER_TIME",
            SumOverTime => "SUM_OVER_TIME",
            MinOverTime => "MIN_OVER_TIME",
            MaxOverTime => "MAX_OVER_TIME",
            StdvarOverTime => "STDVAR_OVER_TIME",
            StddevOverTime => "STDDEV_OVER_TIME",
            QuantileOverTime => "QUANTILE_OVER_TIME",
            BytesConv => "BYTES_CONV",
            DurationConv => "DURATION_CONV",
            DurationSecondsConv => "DURATION_SECONDS_CONV",
            FirstOverTime => "FIRST_OVER_TIME",
            LastOverTime => "LAST_OVER_TIME",
            AbsentOverTime => "ABSENT_OVER_TIME",
            Vector => "VECTOR",
            LabelReplace => "label_replace",
            Unpack => "unpack",
            Offset => "offset",
            Pattern => "pattern",
            Ip => "ip",
            On => "on",
            Ignoring => "ignoring",
            GroupLeft => "group_left",
            GroupRight => "group_right",
            Decolorize => "decolorize",
            Drop => "drop",
            Keep => "keep",
            Or => "or",
            And => "and",
            Unless => "unless",
            CmpEq => "==",
            Neq => "!=",
            Lt => "<",
            Lte => "<=",
            Gt => ">",
            Gte => ">=",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Error => "error",
        }
    }
}

/// What a token carries besides its kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// Punctuation and keywords.
    #[default]
    None,
    /// An identifier or flag as written, a string's unescaped value, or a number's text.
    Text(String),
    /// A duration or range, in nanoseconds.
    Nanos(i64),
    /// A byte size.
    Bytes(u64),
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// Its kind.
    pub tok: Tok,
    /// Where it is in the query.
    pub span: Span,
    /// Its payload.
    pub value: Value,
}

/// The lexer's output: the tokens up to the end of the input (a final [`Tok::Eof`]) or up to the
/// first lexical error (a final [`Tok::Error`], with the error in `error`).
#[derive(Clone, Debug, PartialEq)]
pub struct Lexed {
    /// The tokens; never empty.
    pub tokens: Vec<Token>,
    /// The lexical error the last token stands for, if any.
    pub error: Option<ParseError>,
}

/// Splits a query into tokens.
pub fn tokenize(src: &str) -> Lexed {
    let mut lx = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    // Go's scanner ignores a leading byte order mark.
    if src.starts_with('\u{feff}') {
        lx.pos = '\u{feff}'.len_utf8();
    }
    match lx.run() {
        Ok(()) => {
            let end = src.len();
            lx.tokens.push(Token {
                tok: Tok::Eof,
                span: Span { start: end, end },
                value: Value::None,
            });
            Lexed {
                tokens: lx.tokens,
                error: None,
            }
        }
        Err(e) => {
            lx.tokens.push(Token {
                tok: Tok::Error,
                span: e.span,
                value: Value::None,
            });
            Lexed {
                tokens: lx.tokens,
                error: Some(e),
            }
        }
    }
}

/// A [`ParseError`] at `span` of `src`, with the 1-based line and character column of its start.
pub(crate) fn error_at(src: &str, span: Span, message: impl Into<String>) -> ParseError {
    let start = span.start.min(src.len());
    // Spans always start on a character boundary; fall back to the line start if one did not.
    let before = src.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    ParseError {
        message: message.into(),
        span,
        line,
        col,
    }
}

/// Keywords that are always keywords (Loki's `tokens` table), lower case.
fn keyword(lower: &str) -> Option<Tok> {
    Some(match lower {
        "by" => Tok::By,
        "without" => Tok::Without,
        "bool" => Tok::Bool,
        "offset" => Tok::Offset,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "or" => Tok::Or,
        "and" => Tok::And,
        "unless" => Tok::Unless,
        "json" => Tok::Json,
        "regexp" => Tok::Regexp,
        "logfmt" => Tok::Logfmt,
        "unpack" => Tok::Unpack,
        "pattern" => Tok::Pattern,
        "label_format" => Tok::LabelFmt,
        "line_format" => Tok::LineFmt,
        "decolorize" => Tok::Decolorize,
        "drop" => Tok::Drop,
        "keep" => Tok::Keep,
        "unwrap" => Tok::Unwrap,
        _ => return None,
    })
}

/// Function names (Loki's `functionTokens`): keywords only when a call follows.
fn function(lower: &str) -> Option<Tok> {
    Some(match lower {
        "rate" => Tok::Rate,
        "rate_counter" => Tok::RateCounter,
        "count_over_time" => Tok::CountOverTime,
        "bytes_rate" => Tok::BytesRate,
        "bytes_over_time" => Tok::BytesOverTime,
        "avg_over_time" => Tok::AvgOverTime,
        "sum_over_time" => Tok::SumOverTime,
        "min_over_time" => Tok::MinOverTime,
        "max_over_time" => Tok::MaxOverTime,
        "stdvar_over_time" => Tok::StdvarOverTime,
        "stddev_over_time" => Tok::StddevOverTime,
        "quantile_over_time" => Tok::QuantileOverTime,
        "first_over_time" => Tok::FirstOverTime,
        "last_over_time" => Tok::LastOverTime,
        "absent_over_time" => Tok::AbsentOverTime,
        "vector" => Tok::Vector,
        "sum" => Tok::Sum,
        "avg" => Tok::Avg,
        "max" => Tok::Max,
        "min" => Tok::Min,
        "count" => Tok::Count,
        "stddev" => Tok::Stddev,
        "stdvar" => Tok::Stdvar,
        "bottomk" => Tok::Bottomk,
        "topk" => Tok::Topk,
        "sort" => Tok::Sort,
        "sort_desc" => Tok::SortDesc,
        "label_replace" => Tok::LabelReplace,
        "approx_topk" => Tok::ApproxTopk,
        "bytes" => Tok::BytesConv,
        "duration" => Tok::DurationConv,
        "duration_seconds" => Tok::DurationSecondsConv,
        "ip" => Tok::Ip,
        _ => return None,
    })
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Runes that may follow a number in a duration (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, `w`, `y`).
fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 'u' | 'µ' | 'm' | 's' | 'h' | 'd' | 'w' | 'y')
}

/// Runes that may follow a number in a byte size (`B`, `kB`, `KiB`, `MB`, ... `PiB`).
fn is_bytes_rune(c: char) -> bool {
    matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn peek_char(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.src.get(pos..).and_then(|s| s.chars().next())
    }

    fn err(&self, start: usize, end: usize, message: impl Into<String>) -> ParseError {
        error_at(self.src, Span { start, end }, message)
    }

    fn push(&mut self, tok: Tok, start: usize, end: usize, value: Value) {
        self.tokens.push(Token {
            tok,
            span: Span { start, end },
            value,
        });
        self.pos = end;
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(c) = self.peek_char() {
            let start = self.pos;
            let next = self.char_at(start + c.len_utf8());
            match c {
                // Go's scanner skips only these as white space.
                ' ' | '\t' | '\n' | '\r' => self.pos += 1,
                '#' => self.skip_line(),
                '/' if next == Some('/') => self.skip_line(),
                '/' if next == Some('*') => self.skip_block_comment()?,
                '"' => self.string()?,
                '`' => self.raw_string()?,
                '[' => self.range()?,
                '0'..='9' => self.number()?,
                '.' if next.is_some_and(|n| n.is_ascii_digit()) => self.number()?,
                '-' => self.minus(),
                '\0' => return Err(self.err(start, start + 1, "invalid character NUL")),
                c if is_ident_start(c) => self.identifier(),
                _ => self.punctuation(c, next)?,
            }
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.find('\n').unwrap_or(rest.len());
    }

    fn skip_block_comment(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        match self.src[start + 2..].find("*/") {
            Some(i) => {
                self.pos = start + 2 + i + 2;
                Ok(())
            }
            None => Err(self.err(start, self.src.len(), "comment not terminated")),
        }
    }

    fn punctuation(&mut self, c: char, next: Option<char>) -> Result<(), ParseError> {
        let start = self.pos;
        let two = match (c, next) {
            ('!', Some('=')) => Some(Tok::Neq),
            ('=', Some('~')) => Some(Tok::Re),
            ('!', Some('~')) => Some(Tok::Nre),
            ('!', Some('>')) => Some(Tok::Npa),
            ('|', Some('=')) => Some(Tok::PipeExact),
            ('|', Some('~')) => Some(Tok::PipeMatch),
            ('|', Some('>')) => Some(Tok::PipePattern),
            ('=', Some('=')) => Some(Tok::CmpEq),
            ('>', Some('=')) => Some(Tok::Gte),
            ('<', Some('=')) => Some(Tok::Lte),
            _ => None,
        };
        if let Some(tok) = two {
            self.push(tok, start, start + 2, Value::None);
            return Ok(());
        }
        let one = match c {
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '{' => Tok::OpenBrace,
            '}' => Tok::CloseBrace,
            '=' => Tok::Eq,
            '|' => Tok::Pipe,
            '(' => Tok::OpenParen,
            ')' => Tok::CloseParen,
            ']' => Tok::CloseBracket,
            '+' => Tok::Add,
            '*' => Tok::Mul,
            '/' => Tok::Div,
            '%' => Tok::Mod,
            '^' => Tok::Pow,
            '>' => Tok::Gt,
            '<' => Tok::Lt,
            // Loki turns any other character into an IDENTIFIER that only a later syntax error
            // catches (or, as a label name, silently accepts); refuse it where it stands.
            _ => {
                let end = start + c.len_utf8();
                return Err(self.err(
                    start,
                    end,
                    format!(
                        "syntax error: unexpected character {}",
                        quote(&c.to_string())
                    ),
                ));
            }
        };
        self.push(one, start, start + 1, Value::None);
        Ok(())
    }

    /// `-`: a parser flag (`--strict`), a negative duration (`-5m`) or the minus operator.
    fn minus(&mut self) {
        let start = self.pos;
        let after = start + 1;
        if self.char_at(after) == Some('-') {
            let rest = &self.src[after..];
            let len = rest
                .find(|c: char| !(c.is_alphabetic() || c == '-'))
                .unwrap_or(rest.len());
            let flag = &self.src[start..after + len];
            if flag == "--strict" || flag == "--keep-empty" {
                self.push(
                    Tok::FunctionFlag,
                    start,
                    after + len,
                    Value::Text(flag.to_string()),
                );
                return;
            }
        }
        if let Some((end, ns)) = self.try_duration(start, after) {
            self.push(Tok::Duration, start, end, Value::Nanos(ns));
            return;
        }
        self.push(Tok::Sub, start, after, Value::None);
    }

    fn identifier(&mut self) {
        let start = self.pos;
        let rest = &self.src[start..];
        let len = rest
            .find(|c: char| !is_ident_continue(c))
            .unwrap_or(rest.len());
        let end = start + len;
        let text = &self.src[start..end];
        let lower = text.to_lowercase();
        let tok = match function(&lower) {
            Some(tok) if self.is_call(end) => tok,
            Some(_) => Tok::Identifier,
            None => keyword(&lower).unwrap_or(Tok::Identifier),
        };
        let value = if tok == Tok::Identifier {
            Value::Text(text.to_string())
        } else {
            Value::None
        };
        self.push(tok, start, end, value);
    }

    /// Whether a function name at `pos` is a call: `(`, `by (` or `without (` follows.
    fn is_call(&self, pos: usize) -> bool {
        let rest = self.src[pos..].trim_start();
        if rest.starts_with('(') {
            return true;
        }
        for kw in ["by", "without"] {
            let bytes = rest.as_bytes();
            if bytes.len() >= kw.len() && bytes[..kw.len()].eq_ignore_ascii_case(kw.as_bytes()) {
                return rest[kw.len()..].trim_start().starts_with('(');
            }
        }
        false
    }

    /// A Go string literal.
    fn string(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut buf: Vec<u8> = Vec::new();
        let mut i = start + 1;
        loop {
            let Some(c) = self.char_at(i) else {
                return Err(self.err(start, i, "literal not terminated"));
            };
            match c {
                '"' => break,
                '\n' => return Err(self.err(start, i, "literal not terminated")),
                '\0' => return Err(self.err(i, i + 1, "invalid character NUL")),
                '\\' => i = self.escape(i, &mut buf)?,
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                    i += c.len_utf8();
                }
            }
        }
        let end = i + 1;
        // `\xNN` and octal escapes may produce bytes that are not UTF-8; Go keeps them, but a
        // Rust `String` cannot hold them.
        let value =
            String::from_utf8(buf).map_err(|_| self.err(start, end, "invalid UTF-8 encoding"))?;
        self.push(Tok::String, start, end, Value::Text(value));
        Ok(())
    }

    /// One escape sequence starting with the backslash at `at`; returns the position after it.
    fn escape(&self, at: usize, buf: &mut Vec<u8>) -> Result<usize, ParseError> {
        let bytes = self.src.as_bytes();
        let invalid = |end: usize| {
            self.err(
                at,
                end.min(self.src.len()).max(at + 1),
                "invalid char escape",
            )
        };
        let Some(&e) = bytes.get(at + 1) else {
            return Err(invalid(at + 1));
        };
        let simple = match e {
            b'a' => Some(7u8),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            buf.push(b);
            return Ok(at + 2);
        }
        // Counts and parses `n` digits of `radix` after the escape letter.
        let digits = |from: usize, n: usize, radix: u32| -> Result<u32, ParseError> {
            let mut v: u32 = 0;
            for k in 0..n {
                let d = bytes
                    .get(from + k)
                    .and_then(|&b| (b as char).to_digit(radix));
                match d {
                    Some(d) => v = v * radix + d,
                    None => {
                        let bad = from + k;
                        return Err(invalid(bad + self.char_at(bad).map_or(0, char::len_utf8)));
                    }
                }
            }
            Ok(v)
        };
        match e {
            b'0'..=b'7' => {
                let v = digits(at + 1, 3, 8)?;
                if v > 255 {
                    return Err(self.err(at, at + 4, "invalid syntax"));
                }
                buf.push(v as u8);
                Ok(at + 4)
            }
            b'x' => {
                let v = digits(at + 2, 2, 16)?;
                buf.push(v as u8);
                Ok(at + 4)
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = digits(at + 2, n, 16)?;
                if v > 0x10ffff {
                    return Err(self.err(at, at + 2 + n, "invalid syntax"));
                }
                // Go encodes a surrogate half as U+FFFD.
                let c = char::from_u32(v).unwrap_or('\u{fffd}');
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                Ok(at + 2 + n)
            }
            _ => {
                let len = self.char_at(at + 1).map_or(1, char::len_utf8);
                Err(invalid(at + 1 + len))
            }
        }
    }

    fn raw_string(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let body = &self.src[start + 1..];
        match body.find('`') {
            Some(len) => {
                let content = &body[..len];
                if let Some(nul) = content.find('\0') {
                    let at = start + 1 + nul;
                    return Err(self.err(at, at + 1, "invalid character NUL"));
                }
                self.push(
                    Tok::String,
                    start,
                    start + 1 + len + 1,
                    Value::Text(content.to_string()),
                );
                Ok(())
            }
            None => Err(self.err(start, self.src.len(), "literal not terminated")),
        }
    }

    /// `[duration]`, a Prometheus duration.
    fn range(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let Some(len) = self.src[start + 1..].find(']') else {
            return Err(self.err(start, self.src.len(), "missing closing ']' in duration"));
        };
        let end = start + 1 + len + 1;
        match prom_parse_duration(&self.src[start + 1..start + 1 + len]) {
            Ok(ns) => {
                self.push(Tok::Range, start, end, Value::Nanos(ns));
                Ok(())
            }
            Err(message) => Err(self.err(start, end, message)),
        }
    }

    /// A Go number, then a duration or byte-size unit if one follows directly.
    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let end = scan_go_number(self.src, start)
            .map_err(|(end, message)| self.err(start, end, message))?;
        if let Some((dend, ns)) = self.try_duration(start, end) {
            self.push(Tok::Duration, start, dend, Value::Nanos(ns));
        } else if let Some((bend, b)) = self.try_bytes(start, end) {
            self.push(Tok::Bytes, start, bend, Value::Bytes(b));
        } else {
            self.push(
                Tok::Number,
                start,
                end,
                Value::Text(self.src[start..end].to_string()),
            );
        }
        Ok(())
    }

    /// Loki's `tryScanDuration`: the text from `start` extended over the unit-like runes from
    /// `from`, if it reads as a duration.
    fn try_duration(&self, start: usize, from: usize) -> Option<(usize, i64)> {
        let end = self.extend(from, |c| c.is_numeric() || is_duration_rune(c) || c == '.');
        if end == from {
            return None;
        }
        parse_loki_duration(&self.src[start..end]).map(|ns| (end, ns))
    }

    /// Loki's `tryScanBytes`.
    fn try_bytes(&self, start: usize, from: usize) -> Option<(usize, u64)> {
        let end = self.extend(from, |c| c.is_numeric() || is_bytes_rune(c) || c == '.');
        if end == from {
            return None;
        }
        crate::goconv::parse_bytes(&self.src[start..end])
            .ok()
            .map(|b| (end, b))
    }

    fn extend(&self, from: usize, accept: impl Fn(char) -> bool) -> usize {
        let rest = &self.src[from..];
        from + rest
            .find(|c: char| c.is_whitespace() || !accept(c))
            .unwrap_or(rest.len())
    }
}

/// Scans a Go number literal (Go's `text/scanner` rules) starting at `start` (a digit, or a `.`
/// before a digit); returns its end, or the end and the scanner's error.
fn scan_go_number(src: &str, start: usize) -> Result<usize, (usize, String)> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut i = start;
    let mut base = 10u32;
    let mut prefix = 0u8; // 0 decimal, b'0' octal, b'x', b'o', b'b'
    let mut digsep = 0u8; // bit 0: digits seen, bit 1: '_' seen
    let mut invalid: Option<u8> = None;
    let mut is_float = false;
    let digits = |i: &mut usize, base: u32, invalid: &mut Option<u8>, digsep: &mut u8| {
        loop {
            let c = at(*i);
            let ok = if base <= 10 {
                c.is_ascii_digit() || c == b'_'
            } else {
                c.is_ascii_hexdigit() || c == b'_'
            };
            if !ok {
                break;
            }
            if c == b'_' {
                *digsep |= 2;
            } else {
                *digsep |= 1;
                if base <= 10 && u32::from(c - b'0') >= base && invalid.is_none() {
                    *invalid = Some(c);
                }
            }
            *i += 1;
        }
    };
    let litname = |prefix: u8| match prefix {
        b'x' => "hexadecimal literal",
        b'o' | b'0' => "octal literal",
        b'b' => "binary literal",
        _ => "decimal literal",
    };
    if at(i) == b'.' {
        is_float = true;
        i += 1;
    } else {
        if at(i) == b'0' {
            i += 1;
            match at(i).to_ascii_lowercase() {
                b'x' => {
                    i += 1;
                    base = 16;
                    prefix = b'x';
                }
                b'o' => {
                    i += 1;
                    base = 8;
                    prefix = b'o';
                }
                // Only a binary prefix when a binary digit follows, so `0B` stays zero bytes.
                b'b' if matches!(at(i + 1), b'0' | b'1') => {
                    i += 1;
                    base = 2;
                    prefix = b'b';
                }
                _ => {
                    base = 8;
                    prefix = b'0';
                    digsep = 1;
                }
            }
        }
        digits(&mut i, base, &mut invalid, &mut digsep);
        if at(i) == b'.' {
            is_float = true;
            i += 1;
        }
    }
    if is_float {
        if prefix == b'o' || prefix == b'b' {
            return Err((i, format!("invalid radix point in {}", litname(prefix))));
        }
        digits(&mut i, base, &mut invalid, &mut digsep);
    }
    if digsep & 1 == 0 {
        return Err((i, format!("{} has no digits", litname(prefix))));
    }
    let e = at(i).to_ascii_lowercase();
    if e == b'e' || (e == b'p' && prefix == b'x') {
        if e == b'e' && prefix != 0 && prefix != b'0' {
            return Err((
                i + 1,
                format!("'{}' exponent requires decimal mantissa", at(i) as char),
            ));
        }
        i += 1;
        is_float = true;
        if matches!(at(i), b'+' | b'-') {
            i += 1;
        }
        let mut exp_digsep = 0u8;
        let mut none = None;
        digits(&mut i, 10, &mut none, &mut exp_digsep);
        digsep |= exp_digsep;
        if exp_digsep & 1 == 0 {
            return Err((i, "exponent has no digits".to_string()));
        }
    } else if prefix == b'x' && is_float {
        return Err((
            i,
            "hexadecimal mantissa requires a 'p' exponent".to_string(),
        ));
    }
    if let (false, Some(c)) = (is_float, invalid) {
        return Err((
            i,
            format!("invalid digit '{}' in {}", c as char, litname(prefix)),
        ));
    }
    if digsep & 2 != 0 && !underscore_ok(&src[start..i]) {
        return Err((i, "'_' must separate successive digits".to_string()));
    }
    Ok(i)
}

/// Go's rule for `_` in number literals: only between digits (or after a base prefix).
pub(crate) fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Loki's duration rule for `offset` and label filters: Prometheus first, then Go.
pub(crate) fn parse_loki_duration(s: &str) -> Option<i64> {
    prom_parse_duration(s)
        .ok()
        .or_else(|| crate::goconv::parse_duration(s).ok())
}

/// Prometheus' `model.ParseDuration` (units `ms s m h d w y`, largest first, non-negative),
/// in nanoseconds, with its error messages.
pub(crate) fn prom_parse_duration(orig: &str) -> Result<i64, String> {
    match orig {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", quote(orig));
    let mut s = orig.as_bytes();
    let mut dur: u64 = 0;
    let mut last_pos = 0;
    while !s.is_empty() {
        if !s[0].is_ascii_digit() {
            return Err(invalid());
        }
        let i = s
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(s.len());
        let v: u64 = std::str::from_utf8(&s[..i])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(invalid)?;
        s = &s[i..];
        let j = s.iter().position(|c| c.is_ascii_digit()).unwrap_or(s.len());
        if j == 0 {
            return Err(invalid());
        }
        let unit = String::from_utf8_lossy(&s[..j]).into_owned();
        s = &s[j..];
        let (pos, mult): (u32, u64) = match unit.as_str() {
            "ms" => (7, 1_000_000),
            "s" => (6, 1_000_000_000),
            "m" => (5, 60_000_000_000),
            "h" => (4, 3_600_000_000_000),
            "d" => (3, 86_400_000_000_000),
            "w" => (2, 604_800_000_000_000),
            "y" => (1, 31_536_000_000_000_000),
            _ => {
                return Err(format!(
                    "unknown unit {} in duration {}",
                    quote(&unit),
                    quote(orig)
                ));
            }
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".to_string());
        }
        dur += v * mult;
        if dur > i64::MAX as u64 {
            return Err("duration out of range".to_string());
        }
    }
    i64::try_from(dur).map_err(|_| "duration out of range".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).tokens.iter().map(|t| t.tok).collect()
    }

    #[test]
    fn function_names_are_contextual() {
        assert_eq!(
            toks("count(x)"),
            [
                Tok::Count,
                Tok::OpenParen,
                Tok::Identifier,
                Tok::CloseParen,
                Tok::Eof
            ]
        );
        assert_eq!(toks("count"), [Tok::Identifier, Tok::Eof]);
        assert_eq!(
            toks("sum by (a)"),
            [
                Tok::Sum,
                Tok::By,
                Tok::OpenParen,
                Tok::Identifier,
                Tok::CloseParen,
                Tok::Eof
            ]
        );
        assert_eq!(toks("JSON"), [Tok::Json, Tok::Eof]);
    }

    #[test]
    fn numbers_durations_bytes() {
        let t = tokenize("5m 1.5s 10KB 1.5MiB 5B 7 -5m --strict 0x10 1e3 100µs");
        let kinds: Vec<Tok> = t.tokens.iter().map(|t| t.tok).collect();
        use Tok::*;
        assert_eq!(
            kinds,
            [
                Duration,
                Duration,
                Bytes,
                Bytes,
                Bytes,
                Number,
                Duration,
                FunctionFlag,
                Number,
                Number,
                Duration,
                Eof
            ]
        );
        assert_eq!(t.tokens[0].value, Value::Nanos(300_000_000_000));
        assert_eq!(t.tokens[1].value, Value::Nanos(1_500_000_000));
        assert_eq!(t.tokens[2].value, Value::Bytes(10_000));
        assert_eq!(t.tokens[3].value, Value::Bytes(1_572_864));
        assert_eq!(t.tokens[6].value, Value::Nanos(-300_000_000_000));
        assert_eq!(t.tokens[10].value, Value::Nanos(100_000));
    }

    #[test]
    fn durations() {
        assert_eq!(prom_parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(
            prom_parse_duration("5minutes"),
            Err(r#"unknown unit "minutes" in duration "5minutes""#.to_string())
        );
        assert_eq!(
            prom_parse_duration("1.5h"),
            Err(r#"unknown unit "." in duration "1.5h""#.to_string())
        );
        assert_eq!(
            prom_parse_duration("1m1h"),
            Err(r#"not a valid duration string: "1m1h""#.to_string())
        );
        assert_eq!(
            crate::goconv::parse_duration("1h0m0.5s").ok(),
            Some(3_600_500_000_000)
        );
        assert_eq!(
            crate::goconv::parse_duration("-9223372036854775808ns").ok(),
            Some(i64::MIN)
        );
        assert_eq!(
            crate::goconv::parse_duration("9223372036854775808ns").ok(),
            None
        );
        assert_eq!(crate::goconv::parse_duration("1.5").ok(), None);
    }

    #[test]
    fn strings() {
        let t = tokenize(r#""a\tb\x41\101\u00e9\U0001F600\"" `raw\n`"#);
        assert_eq!(t.tokens[0].value, Value::Text("a\tbAAé😀\"".to_string()));
        assert_eq!(t.tokens[1].value, Value::Text("raw\\n".to_string()));
        assert!(tokenize(r#""\q""#).error.is_some());
        assert!(tokenize(r#""\xff""#).error.is_some());
    }
}
