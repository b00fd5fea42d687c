//! The functions Loki's templates can call: Loki's own (`fmt.go`), the sprig subset Loki
//! registers, and text/template's builtins, each with its Go signature so argument counts and
//! types fail the way Go's do.

use std::borrow::Cow;
use std::rc::Rc;

use regex::Regex;

use super::decimal::Decimal;
use super::gotime::GoTime;
use super::value::{Value, from_json};
use crate::eval::pipeline::convert;

/// Go parameter types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Int,
    F64,
    Time,
    Any,
}

impl Ty {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::F64 => "float64",
            Ty::Time => "time.Time",
            Ty::Any => "interface {}",
        }
    }
}

/// Builtins evaluated by the executor itself (they need lazy arguments or the data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    And,
    Or,
    Call,
}

/// What calling a function needs besides its arguments.
pub(crate) struct CallCtx<'c, 'a> {
    pub(crate) line: &'a str,
    pub(crate) ts: i64,
    /// The command's constant pattern and its compiled form.
    pub(crate) regex: Option<(&'c str, &'c Regex)>,
    pub(crate) labels: &'c dyn Fn() -> Vec<(String, String)>,
}

type Imp = for<'a> fn(&CallCtx<'_, 'a>, Vec<Value<'a>>) -> Result<Value<'a>, String>;

/// A function's signature and implementation.
pub(crate) struct Func {
    pub(crate) params: &'static [Ty],
    pub(crate) variadic: Option<Ty>,
    pub(crate) imp: Result<Imp, Special>,
}

const S: Ty = Ty::Str;
const I: Ty = Ty::Int;
const A: Ty = Ty::Any;

fn f(params: &'static [Ty], variadic: Option<Ty>, imp: Imp) -> Func {
    Func {
        params,
        variadic,
        imp: Ok(imp),
    }
}

/// Looks a function up by name.
pub(crate) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        // text/template builtins.
        "and" => Func {
            params: &[A],
            variadic: Some(A),
            imp: Err(Special::And),
        },
        "or" => Func {
            params: &[A],
            variadic: Some(A),
            imp: Err(Special::Or),
        },
        "call" => Func {
            params: &[A],
            variadic: Some(A),
            imp: Err(Special::Call),
        },
        "not" => f(&[A], None, |c, a| {
            let n = if matches!(a[0], Value::Labels) {
                (c.labels)().len()
            } else {
                0
            };
            Ok(Value::Bool(!a[0].truth(n)))
        }),
        "len" => f(&[A], None, |c, a| length(c, &a[0])),
        "index" => f(&[A], Some(A), index),
        "slice" => f(&[A], Some(A), |_, a| slice(a)),
        "print" => f(&[], Some(A), |c, a| {
            Ok(Value::str(super::gofmt::sprint(&a, c.labels)))
        }),
        "println" => f(&[], Some(A), |c, a| {
            Ok(Value::str(super::gofmt::sprintln(&a, c.labels)))
        }),
        "printf" => f(&[S], Some(A), |c, a| {
            let fmt = str_of(&a[0]).to_string();
            Ok(Value::str(super::gofmt::sprintf(&fmt, &a[1..], c.labels)))
        }),
        "eq" => f(&[A], Some(A), |_, a| eq(&a[0], &a[1..]).map(Value::Bool)),
        "ne" => f(&[A, A], None, |_, a| {
            eq(&a[0], &a[1..]).map(|b| Value::Bool(!b))
        }),
        "lt" => f(&[A, A], None, |_, a| less(&a[0], &a[1]).map(Value::Bool)),
        "le" => f(&[A, A], None, |_, a| {
            Ok(Value::Bool(less(&a[0], &a[1])? || eq(&a[0], &a[1..])?))
        }),
        "gt" => f(&[A, A], None, |_, a| {
            Ok(Value::Bool(!(less(&a[0], &a[1])? || eq(&a[0], &a[1..])?)))
        }),
        "ge" => f(&[A, A], None, |_, a| {
            less(&a[0], &a[1]).map(|b| Value::Bool(!b))
        }),
        "html" => f(&[], Some(A), |c, a| {
            Ok(Value::str(html_escape(&eval_args(c, &a))))
        }),
        "js" => f(&[], Some(A), |c, a| {
            Ok(Value::str(js_escape(&eval_args(c, &a))))
        }),
        "urlquery" => f(&[], Some(A), |c, a| {
            Ok(Value::str(query_escape(&eval_args(c, &a))))
        }),

        // Loki's functions.
        "__line__" => f(&[], None, |c, _| Ok(Value::Str(Cow::Borrowed(c.line)))),
        "__timestamp__" => f(&[], None, |c, _| {
            Ok(Value::Time(GoTime::from_unix(0, c.ts)))
        }),
        "ToLower" | "lower" => f(&[S], None, |_, a| Ok(Value::str(go_lower(str_of(&a[0]))))),
        "ToUpper" | "upper" => f(&[S], None, |_, a| Ok(Value::str(go_upper(str_of(&a[0]))))),
        "Replace" => f(&[S, S, S, I], None, |_, a| {
            let (s, old, new, n) = (str_of(&a[0]), str_of(&a[1]), str_of(&a[2]), int_of(&a[3]));
            Ok(Value::str(if n < 0 {
                s.replace(old, new)
            } else {
                s.replacen(old, new, usize::try_from(n).unwrap_or(usize::MAX))
            }))
        }),
        "Trim" => f(&[S, S], None, |_, a| {
            let cut: Vec<char> = str_of(&a[1]).chars().collect();
            Ok(Value::str(
                str_of(&a[0]).trim_matches(cut.as_slice()).to_string(),
            ))
        }),
        "TrimLeft" => f(&[S, S], None, |_, a| {
            let cut: Vec<char> = str_of(&a[1]).chars().collect();
            Ok(Value::str(
                str_of(&a[0]).trim_start_matches(cut.as_slice()).to_string(),
            ))
        }),
        "TrimRight" => f(&[S, S], None, |_, a| {
            let cut: Vec<char> = str_of(&a[1]).chars().collect();
            Ok(Value::str(
                str_of(&a[0]).trim_end_matches(cut.as_slice()).to_string(),
            ))
        }),
        "TrimPrefix" => f(&[S, S], None, |_, a| {
            let (s, p) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Value::str(s.strip_prefix(p).unwrap_or(s).to_string()))
        }),
        "TrimSuffix" => f(&[S, S], None, |_, a| {
            let (s, p) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Value::str(s.strip_suffix(p).unwrap_or(s).to_string()))
        }),
        "TrimSpace" | "trim" => f(&[S], None, |_, a| {
            Ok(Value::str(str_of(&a[0]).trim().to_string()))
        }),
        "regexReplaceAll" => f(&[S, S, S], None, |c, a| {
            let re = regex_arg(c, str_of(&a[0]))?;
            Ok(Value::str(
                re.replace_all(str_of(&a[1]), str_of(&a[2])).into_owned(),
            ))
        }),
        "regexReplaceAllLiteral" => f(&[S, S, S], None, |c, a| {
            let re = regex_arg(c, str_of(&a[0]))?;
            Ok(Value::str(
                re.replace_all(str_of(&a[1]), regex::NoExpand(str_of(&a[2])))
                    .into_owned(),
            ))
        }),
        "count" => f(&[S, S], None, |c, a| {
            let re = regex_arg(c, str_of(&a[0]))?;
            Ok(Value::Int(re.find_iter(str_of(&a[1])).count() as i64))
        }),
        "urldecode" => f(&[S], None, |_, a| {
            query_unescape(str_of(&a[0])).map(Value::str)
        }),
        "urlencode" => f(&[S], None, |_, a| {
            Ok(Value::str(query_escape(str_of(&a[0]))))
        }),
        "bytes" => f(&[S], None, |_, a| {
            convert::parse_bytes(str_of(&a[0])).map(|b| Value::F64(b as f64))
        }),
        "duration" | "duration_seconds" => f(&[S], None, |_, a| {
            convert::parse_duration(str_of(&a[0])).map(|d| Value::F64(convert::duration_seconds(d)))
        }),
        "unixEpochMillis" => f(&[Ty::Time], None, |_, a| {
            let t = time_of(&a[0]);
            Ok(Value::str(
                (t.unix_nanos().div_euclid(1_000_000)).to_string(),
            ))
        }),
        "unixEpochNanos" => f(&[Ty::Time], None, |_, a| {
            Ok(Value::str(time_of(&a[0]).unix_nanos().to_string()))
        }),
        "unixEpoch" => f(&[Ty::Time], None, |_, a| {
            Ok(Value::str(time_of(&a[0]).unix().to_string()))
        }),
        "toDateInZone" => f(&[S, S, S], None, |_, a| {
            // Without a zone database every zone is UTC (Loki falls back to UTC for unknown ones).
            Ok(Value::Time(
                GoTime::parse(str_of(&a[0]), str_of(&a[2])).unwrap_or_else(|_| GoTime::zero()),
            ))
        }),
        "toDate" => f(&[S, S], None, |_, a| {
            Ok(Value::Time(
                GoTime::parse(str_of(&a[0]), str_of(&a[1])).unwrap_or_else(|_| GoTime::zero()),
            ))
        }),
        "date" => f(&[S, A], None, |_, a| {
            let t = match &a[1] {
                Value::Time(t) => *t,
                Value::Int(n) | Value::I64(n) => GoTime::from_unix(*n, 0),
                _ => GoTime::now(),
            };
            Ok(Value::str(t.in_utc().format(str_of(&a[0]))))
        }),
        "now" => f(&[], None, |_, _| Ok(Value::Time(GoTime::now()))),
        "unixToTime" => f(&[S], None, |_, a| {
            unix_to_time(str_of(&a[0])).map(Value::Time)
        }),
        "alignLeft" => f(&[I, S], None, |_, a| {
            Ok(Value::str(align(int_of(&a[0]), str_of(&a[1]), true)))
        }),
        "alignRight" => f(&[I, S], None, |_, a| {
            Ok(Value::str(align(int_of(&a[0]), str_of(&a[1]), false)))
        }),
        "b64dec" => f(&[S], None, |_, a| {
            let mut v = str_of(&a[0]).to_string();
            let rem = v.len() % 4;
            if rem != 0 && rem != 1 {
                v.push_str(&"=".repeat(4 - rem));
            }
            Ok(Value::str(match base64_decode(&v) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => e,
            }))
        }),
        "b64enc" => f(&[S], None, |_, a| {
            Ok(Value::str(base64_encode(str_of(&a[0]).as_bytes())))
        }),

        // sprig strings.
        "title" => f(&[S], None, |_, a| Ok(Value::str(title(str_of(&a[0]))))),
        "trunc" => f(&[I, S], None, |_, a| {
            Ok(Value::str(trunc(int_of(&a[0]), str_of(&a[1]))))
        }),
        "substr" => f(&[I, I, S], None, |_, a| {
            substr(int_of(&a[0]), int_of(&a[1]), str_of(&a[2])).map(Value::str)
        }),
        "contains" => f(&[S, S], None, |_, a| {
            Ok(Value::Bool(str_of(&a[1]).contains(str_of(&a[0]))))
        }),
        "hasPrefix" => f(&[S, S], None, |_, a| {
            Ok(Value::Bool(str_of(&a[1]).starts_with(str_of(&a[0]))))
        }),
        "hasSuffix" => f(&[S, S], None, |_, a| {
            Ok(Value::Bool(str_of(&a[1]).ends_with(str_of(&a[0]))))
        }),
        "indent" => f(&[I, S], None, |_, a| {
            indent(int_of(&a[0]), str_of(&a[1])).map(Value::str)
        }),
        "nindent" => f(&[I, S], None, |_, a| {
            indent(int_of(&a[0]), str_of(&a[1])).map(|s| Value::str(format!("\n{s}")))
        }),
        "replace" => f(&[S, S, S], None, |_, a| {
            Ok(Value::str(
                str_of(&a[2]).replace(str_of(&a[0]), str_of(&a[1])),
            ))
        }),
        "repeat" => f(&[I, S], None, |_, a| {
            repeat(str_of(&a[1]), int_of(&a[0])).map(Value::str)
        }),
        "trimAll" => f(&[S, S], None, |_, a| {
            let cut: Vec<char> = str_of(&a[0]).chars().collect();
            Ok(Value::str(
                str_of(&a[1]).trim_matches(cut.as_slice()).to_string(),
            ))
        }),
        "trimSuffix" => f(&[S, S], None, |_, a| {
            let (p, s) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Value::str(s.strip_suffix(p).unwrap_or(s).to_string()))
        }),
        "trimPrefix" => f(&[S, S], None, |_, a| {
            let (p, s) = (str_of(&a[0]), str_of(&a[1]));
            Ok(Value::str(s.strip_prefix(p).unwrap_or(s).to_string()))
        }),

        // sprig conversions and math.
        "int" => f(&[A], None, |_, a| Ok(Value::Int(to_i64(&a[0])))),
        "float64" => f(&[A], None, |_, a| Ok(Value::F64(to_f64(&a[0])))),
        "add" => f(&[], Some(A), |_, a| {
            Ok(Value::I64(
                a.iter().fold(0i64, |s, v| s.wrapping_add(to_i64(v))),
            ))
        }),
        "sub" => f(&[A, A], None, |_, a| {
            Ok(Value::I64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
        }),
        "mul" => f(&[A], Some(A), |_, a| {
            Ok(Value::I64(
                a[1..]
                    .iter()
                    .fold(to_i64(&a[0]), |s, v| s.wrapping_mul(to_i64(v))),
            ))
        }),
        "div" => f(&[A, A], None, |_, a| {
            let d = to_i64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".to_string());
            }
            Ok(Value::I64(to_i64(&a[0]).wrapping_div(d)))
        }),
        "mod" => f(&[A, A], None, |_, a| {
            let d = to_i64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".to_string());
            }
            Ok(Value::I64(to_i64(&a[0]).wrapping_rem(d)))
        }),
        "max" => f(&[A], Some(A), |_, a| {
            Ok(Value::I64(
                a[1..].iter().map(to_i64).fold(to_i64(&a[0]), i64::max),
            ))
        }),
        "min" => f(&[A], Some(A), |_, a| {
            Ok(Value::I64(
                a[1..].iter().map(to_i64).fold(to_i64(&a[0]), i64::min),
            ))
        }),
        "maxf" => f(&[A], Some(A), |_, a| {
            Ok(Value::F64(
                a[1..].iter().map(to_f64).fold(to_f64(&a[0]), go_max),
            ))
        }),
        "minf" => f(&[A], Some(A), |_, a| {
            Ok(Value::F64(
                a[1..].iter().map(to_f64).fold(to_f64(&a[0]), go_min),
            ))
        }),
        "addf" => f(&[], Some(A), |_, a| {
            decimal_op(&Value::F64(0.0), &a, Decimal::add)
        }),
        "subf" => f(&[A], Some(A), |_, a| {
            decimal_op(&a[0], &a[1..], Decimal::sub)
        }),
        "mulf" => f(&[A], Some(A), |_, a| {
            decimal_op(&a[0], &a[1..], Decimal::mul)
        }),
        "divf" => f(&[A], Some(A), |_, a| {
            let mut acc = dec(&a[0])?;
            for v in &a[1..] {
                acc = acc
                    .div(dec(v)?)
                    .ok_or_else(|| "decimal division by 0".to_string())?;
            }
            Ok(Value::F64(acc.to_f64()))
        }),
        "ceil" => f(&[A], None, |_, a| Ok(Value::F64(to_f64(&a[0]).ceil()))),
        "floor" => f(&[A], None, |_, a| Ok(Value::F64(to_f64(&a[0]).floor()))),
        "round" => f(&[A, I], Some(Ty::F64), |_, a| {
            let round_on = a.get(2).map_or(0.5, to_f64);
            let val = to_f64(&a[0]);
            let pow = 10f64.powf(int_of(&a[1]) as f64);
            let digit = pow * val;
            let div = digit.fract();
            let r = if div >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::F64(r / pow))
        }),
        "default" => f(&[A], Some(A), |_, mut a| {
            if a.len() < 2 || empty(&a[1]) {
                Ok(a.swap_remove(0))
            } else {
                Ok(a.swap_remove(1))
            }
        }),
        "fromJson" => f(&[S], None, |_, a| {
            Ok(
                match serde_json::from_str::<serde_json::Value>(str_of(&a[0])) {
                    Ok(v) => from_json(v),
                    Err(_) => Value::Nil,
                },
            )
        }),
        _ => return None,
    })
}

fn str_of<'v>(v: &'v Value<'_>) -> &'v str {
    v.as_str().unwrap_or("")
}

fn int_of(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) | Value::I64(i) => *i,
        _ => 0,
    }
}

fn time_of(v: &Value<'_>) -> GoTime {
    match v {
        Value::Time(t) => *t,
        _ => GoTime::zero(),
    }
}

fn regex_arg<'r>(c: &'r CallCtx<'_, '_>, pattern: &str) -> Result<Cow<'r, Regex>, String> {
    if let Some((orig, r)) = c.regex
        && orig == pattern
    {
        return Ok(Cow::Borrowed(r));
    }
    crate::eval::pipeline::re::compile(pattern).map(Cow::Owned)
}

/// Go's simple case mapping: a character whose mapping is several characters is kept.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut it = c.to_lowercase();
            match (it.next(), it.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut it = c.to_uppercase();
            match (it.next(), it.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// `strings.Title`.
fn title(s: &str) -> String {
    let is_sep = |r: char| {
        if r.is_ascii() {
            return !(r.is_ascii_alphanumeric() || r == '_');
        }
        if r.is_alphanumeric() {
            return false;
        }
        r.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|r| {
            let out = if is_sep(prev) {
                go_upper(&r.to_string()).chars().next().unwrap_or(r)
            } else {
                r
            };
            prev = r;
            out
        })
        .collect()
}

/// Byte slice of a string as Go would produce it (invalid UTF-8 shows as U+FFFD).
fn byte_slice(s: &str, from: usize, to: usize) -> String {
    match s.get(from..to) {
        Some(x) => x.to_string(),
        None => String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned(),
    }
}

/// sprig's `trunc` (bytes).
fn trunc(c: i64, s: &str) -> String {
    let len = s.len() as i64;
    if c < 0 && len + c > 0 {
        return byte_slice(s, (len + c) as usize, s.len());
    }
    if c >= 0 && len > c {
        return byte_slice(s, 0, c as usize);
    }
    s.to_string()
}

/// sprig's `substr` (bytes; Go panics on bad bounds, which templates report as errors).
fn substr(start: i64, end: i64, s: &str) -> Result<String, String> {
    let len = s.len() as i64;
    let oob = |a: String| {
        Err(format!(
            "runtime error: slice bounds out of range {a} with length {len}"
        ))
    };
    if start < 0 {
        if end < 0 || end > len {
            return oob(format!("[:{end}]"));
        }
        return Ok(byte_slice(s, 0, end as usize));
    }
    if end < 0 || end > len {
        if start > len {
            return oob(format!("[{start}:]"));
        }
        return Ok(byte_slice(s, start as usize, s.len()));
    }
    if start > end {
        return Err(format!(
            "runtime error: slice bounds out of range [{start}:{end}]"
        ));
    }
    Ok(byte_slice(s, start as usize, end as usize))
}

/// Largest string a template function may build (Go would try to allocate anything).
const MAX_BUILD: usize = 16 << 20;

fn repeat(s: &str, n: i64) -> Result<String, String> {
    if n < 0 {
        return Err("strings: negative Repeat count".to_string());
    }
    let total = (s.len() as u128) * (n as u128);
    if total > MAX_BUILD as u128 {
        return Err("strings: Repeat output length too large".to_string());
    }
    Ok(s.repeat(n as usize))
}

fn indent(n: i64, s: &str) -> Result<String, String> {
    let pad = repeat(" ", n)?;
    if (s.len() as u128) * (pad.len() as u128 + 1) > MAX_BUILD as u128 {
        return Err("strings: Repeat output length too large".to_string());
    }
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// Loki's `alignLeft`/`alignRight` (characters).
fn align(count: i64, src: &str, left: bool) -> String {
    let runes: Vec<char> = src.chars().collect();
    let l = runes.len() as i64;
    if count < 0 || count == l {
        return src.to_string();
    }
    let pad = count - l;
    if pad > 0 {
        let p = " ".repeat(pad.min(MAX_BUILD as i64) as usize);
        return if left {
            format!("{src}{p}")
        } else {
            format!("{p}{src}")
        };
    }
    if left {
        runes[..count as usize].iter().collect()
    } else {
        runes[(l - count) as usize..].iter().collect()
    }
}

fn unix_to_time(epoch: &str) -> Result<GoTime, String> {
    let i: i64 = match epoch.parse::<i64>() {
        Ok(i) if !epoch.starts_with('+') || epoch.len() > 1 => i,
        _ => {
            return Err(format!(
                "unable to parse time '{epoch}': strconv.ParseInt: parsing {}: invalid syntax",
                convert::go_quote(epoch)
            ));
        }
    };
    match epoch.len() {
        5 => Ok(GoTime::from_unix(i.saturating_mul(86_400), 0)),
        10 => Ok(GoTime::from_unix(i, 0)),
        13 => Ok(GoTime::from_unix(0, i.saturating_mul(1_000_000))),
        16 => Ok(GoTime::from_unix(0, i.saturating_mul(1_000))),
        19 => Ok(GoTime::from_unix(0, i)),
        _ => Err(format!("unable to parse time '{epoch}': %!w(<nil>)")),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base64.StdEncoding.DecodeString`; the error text is Go's.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let mut i = 0;
    while i < b.len() {
        let mut quad = [0u32; 4];
        let mut n = 0;
        let mut j = i;
        while n < 4 {
            if j >= b.len() {
                if n == 0 {
                    return Ok(out);
                }
                return Err(format!(
                    "illegal base64 data at input byte {}",
                    j - n.min(j)
                ));
            }
            let c = b[j];
            if c == b'\n' || c == b'\r' {
                j += 1;
                continue;
            }
            if c == b'=' {
                // Padding: valid only as the last 1 or 2 characters of a quad.
                if n < 2 {
                    return Err(format!("illegal base64 data at input byte {j}"));
                }
                let need = 4 - n;
                let pads = b[j..].iter().take(need).filter(|&&c| c == b'=').count();
                if pads != need || j + need != b.len() {
                    return Err(format!(
                        "illegal base64 data at input byte {}",
                        j + pads.min(need)
                    ));
                }
                let v = (quad[0] << 18) | (quad[1] << 12) | (quad[2] << 6);
                out.push((v >> 16) as u8);
                if n == 3 {
                    out.push((v >> 8) as u8);
                }
                return Ok(out);
            }
            match val(c) {
                Some(v) => quad[n] = v,
                None => return Err(format!("illegal base64 data at input byte {j}")),
            }
            n += 1;
            j += 1;
        }
        let v = (quad[0] << 18) | (quad[1] << 12) | (quad[2] << 6) | quad[3];
        out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        i = j;
    }
    Ok(out)
}

/// `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
                out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
            }
        }
    }
    out
}

/// `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(b.len());
                        let bad = String::from_utf8_lossy(&b[i..end]);
                        return Err(format!("invalid URL escape {}", convert::go_quote(&bad)));
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// text/template's `evalArgs` for html/js/urlquery: one string as is, else `fmt.Sprint`.
fn eval_args(c: &CallCtx<'_, '_>, a: &[Value<'_>]) -> String {
    if let [Value::Str(s)] = a {
        return s.to_string();
    }
    super::gofmt::sprint(a, c.labels)
}

/// cast's `trimDecimal`: "12.7" reads as "12" for integer conversions.
fn trim_decimal(s: &str) -> Cow<'_, str> {
    if !s.contains('.') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i != b.len() {
        return Cow::Borrowed(s);
    }
    let int_part = &s[..int_end];
    Cow::Owned(match int_part {
        "-" | "+" => format!("{int_part}0"),
        "" => "0".to_string(),
        p if int_start == int_end => format!("{p}0"),
        p => p.to_string(),
    })
}

/// cast's `ToInt64` (0 when it cannot convert).
pub(crate) fn to_i64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) | Value::I64(i) => *i,
        Value::U8(u) => i64::from(*u),
        Value::F64(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) if s.is_empty() => 0,
        Value::Str(s) => convert::parse_int_base0(&trim_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// cast's `ToFloat64` (0 when it cannot convert).
pub(crate) fn to_f64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) | Value::I64(i) => *i as f64,
        Value::U8(u) => f64::from(*u),
        Value::F64(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) if s.is_empty() => 0.0,
        Value::Str(s) => convert::parse_float_ok(s).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Go's `math.Max`.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a > 0.0 || b.is_infinite() && b > 0.0 {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_infinite() && a < 0.0 || b.is_infinite() && b < 0.0 {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

fn dec(v: &Value<'_>) -> Result<Decimal, String> {
    let f = to_f64(v);
    Decimal::from_f64(f).ok_or_else(|| {
        format!(
            "Cannot create a Decimal from {}",
            super::gofmt::format_float_g(f, None)
        )
    })
}

fn decimal_op<'a>(
    a: &Value<'_>,
    rest: &[Value<'_>],
    op: fn(Decimal, Decimal) -> Decimal,
) -> Result<Value<'a>, String> {
    let mut acc = dec(a)?;
    for v in rest {
        acc = op(acc, dec(v)?);
    }
    Ok(Value::F64(acc.to_f64()))
}

/// sprig's `empty`.
fn empty(v: &Value<'_>) -> bool {
    match v {
        Value::Missing | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::I64(i) => *i == 0,
        Value::U8(u) => *u == 0,
        Value::F64(f) => *f == 0.0,
        Value::Str(s) => s.is_empty(),
        Value::Time(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        // The label map of a template is never used as a default's subject in practice.
        Value::Labels => false,
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

fn basic_kind(v: &Value<'_>) -> Kind {
    match v {
        Value::Missing | Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::I64(_) => Kind::Int,
        Value::U8(_) => Kind::Uint,
        Value::F64(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn int_val(v: &Value<'_>) -> i128 {
    match v {
        Value::Int(i) | Value::I64(i) => i128::from(*i),
        Value::U8(u) => i128::from(*u),
        _ => 0,
    }
}

/// text/template's `eq`: true when `a` equals any of `bs`.
fn eq(a: &Value<'_>, bs: &[Value<'_>]) -> Result<bool, String> {
    if bs.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = basic_kind(a);
    for b in bs {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => int_val(a) == int_val(b),
                _ => {
                    if k1 != Kind::Invalid && k2 != Kind::Invalid {
                        return Err("incompatible types for comparison".to_string());
                    }
                    false
                }
            }
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::F64(x), Value::F64(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                _ if k1 == Kind::Int || k1 == Kind::Uint => int_val(a) == int_val(b),
                (Value::Time(x), Value::Time(y)) => x == y,
                _ if k1 == Kind::Invalid => true,
                _ => return Err(format!("non-comparable type {}", b.type_name())),
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// text/template's `lt`.
fn less(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(int_val(a) < int_val(b)),
            _ => Err("incompatible types for comparison".to_string()),
        };
    }
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ if k1 == Kind::Int || k1 == Kind::Uint => Ok(int_val(a) < int_val(b)),
        _ => Err("invalid type for comparison".to_string()),
    }
}

fn length<'a>(c: &CallCtx<'_, 'a>, v: &Value<'a>) -> Result<Value<'a>, String> {
    Ok(Value::Int(match v {
        Value::Str(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.len() as i64,
        Value::Labels => (c.labels)().len() as i64,
        Value::Missing | Value::Nil => return Err("len of nil pointer".to_string()),
        v => return Err(format!("len of type {}", v.type_name())),
    }))
}

fn index_arg(v: &Value<'_>, len: usize) -> Result<usize, String> {
    let i = match v {
        Value::Int(i) | Value::I64(i) => *i,
        Value::U8(u) => i64::from(*u),
        Value::Missing | Value::Nil => return Err("cannot index slice/array with nil".to_string()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ));
        }
    };
    if i < 0 || i as u64 >= len as u64 {
        return Err(format!("index out of range: {i}"));
    }
    Ok(i as usize)
}

fn index<'a>(c: &CallCtx<'_, 'a>, a: Vec<Value<'a>>) -> Result<Value<'a>, String> {
    let mut it = a.into_iter();
    let mut item = it.next().unwrap_or(Value::Missing);
    if matches!(item, Value::Missing | Value::Nil) {
        return Err("index of untyped nil".to_string());
    }
    for idx in it {
        item = match &item {
            Value::Str(s) => Value::U8(s.as_bytes()[index_arg(&idx, s.len())?]),
            Value::List(l) => l[index_arg(&idx, l.len())?].clone(),
            Value::Map(m) => match &idx {
                Value::Str(k) => m.get(k.as_ref()).cloned().unwrap_or(Value::Nil),
                v => {
                    return Err(format!(
                        "value has type {}; should be string",
                        v.type_name()
                    ));
                }
            },
            Value::Labels => match &idx {
                Value::Str(k) => {
                    let v = (c.labels)()
                        .into_iter()
                        .find(|(n, _)| n == k.as_ref())
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    Value::str(v)
                }
                v => {
                    return Err(format!(
                        "value has type {}; should be string",
                        v.type_name()
                    ));
                }
            },
            Value::Missing | Value::Nil => return Err("index of nil pointer".to_string()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn slice<'a>(a: Vec<Value<'a>>) -> Result<Value<'a>, String> {
    let mut it = a.into_iter();
    let item = it.next().unwrap_or(Value::Missing);
    let idx: Vec<Value<'a>> = it.collect();
    if matches!(item, Value::Missing | Value::Nil) {
        return Err("slice of untyped nil".to_string());
    }
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match &item {
        Value::Str(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".to_string());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut bounds = [0usize, len, len];
    for (i, v) in idx.iter().enumerate() {
        bounds[i] = index_arg(v, len + 1)?;
    }
    if idx.len() < 3 {
        bounds[2] = len;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    Ok(match item {
        Value::Str(s) => Value::str(byte_slice(&s, bounds[0], bounds[1])),
        Value::List(l) => Value::List(Rc::new(l[bounds[0]..bounds[1]].to_vec())),
        _ => Value::Missing,
    })
}
