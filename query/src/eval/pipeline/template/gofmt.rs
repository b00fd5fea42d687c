//! Go's `fmt` and `strconv.FormatFloat` for template output: `%v` of floats ("3e+06"),
//! `printf` verbs with flags, width and precision, and `print`/`println`.

use std::fmt::Write as _;

use super::value::{Value, print_inner};
use crate::eval::pipeline::convert::go_quote;

/// Decimal digits of a float: `0.d1d2d3... × 10^dp`, no trailing zeros (empty for zero).
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

fn parse_exp_form(s: &str) -> Digits {
    // Rust's `{:e}`: "1.2345e-7", "3e6", "0e0".
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

fn shortest_digits(f: f64) -> Digits {
    parse_exp_form(&format!("{:e}", f.abs()))
}

/// A double's exact decimal expansion never has more significant digits than this, so
/// higher precisions only add zeros (and Rust's formatter refuses very large precisions).
const MAX_EXACT_DIGITS: usize = 1100;

fn rounded_digits(f: f64, sig: usize) -> Digits {
    parse_exp_form(&format!(
        "{:.*e}",
        sig.clamp(1, MAX_EXACT_DIGITS) - 1,
        f.abs()
    ))
}

fn fmt_e(out: &mut String, digs: &Digits, prec: usize, upper: bool) {
    out.push(if digs.d.is_empty() {
        '0'
    } else {
        digs.d[0] as char
    });
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(digs.d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if digs.d.is_empty() { 0 } else { digs.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    let _ = write!(out, "{e}");
}

fn fmt_f(out: &mut String, digs: &Digits, prec: usize) {
    if digs.dp > 0 {
        let dp = digs.dp as usize;
        for i in 0..dp {
            out.push(digs.d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let idx = digs.dp + i as i32 - 1;
            let c = if idx >= 0 {
                digs.d.get(idx as usize).map_or('0', |&c| c as char)
            } else {
                '0'
            };
            out.push(c);
        }
    }
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `strconv.FormatFloat(f, 'g', prec, 64)` (`None` = shortest), as `%v` prints floats.
pub(crate) fn format_float_g(f: f64, prec: Option<usize>) -> String {
    format_float(f, 'g', prec)
}

/// `strconv.FormatFloat(f, verb, prec, 64)` for `e`, `E`, `f`, `F`, `g`, `G`.
pub(crate) fn format_float(f: f64, verb: char, prec: Option<usize>) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let mut out = String::new();
    if f.is_sign_negative() {
        out.push('-');
    }
    let upper = verb.is_ascii_uppercase();
    match verb.to_ascii_lowercase() {
        'e' => {
            let digs = match prec {
                None => shortest_digits(f),
                Some(p) => rounded_digits(f, p + 1),
            };
            let p = prec.unwrap_or(digs.d.len().saturating_sub(1));
            fmt_e(&mut out, &digs, p, upper);
        }
        'f' => match prec {
            None => {
                let digs = shortest_digits(f);
                let p = (digs.d.len() as i32 - digs.dp).max(0) as usize;
                fmt_f(&mut out, &digs, p);
            }
            Some(p) => {
                let _ = write!(out, "{:.*}", p.min(MAX_EXACT_DIGITS), f.abs());
                if p > MAX_EXACT_DIGITS {
                    out.extend(std::iter::repeat_n('0', p - MAX_EXACT_DIGITS));
                }
            }
        },
        _ => {
            let shortest = prec.is_none();
            let (digs, mut p) = match prec {
                None => {
                    let d = shortest_digits(f);
                    let n = d.d.len();
                    (d, n)
                }
                Some(p) => {
                    let p = p.max(1);
                    (rounded_digits(f, p), p)
                }
            };
            let nd = digs.d.len();
            let mut eprec = p as i32;
            if eprec > nd as i32 && nd as i32 >= digs.dp {
                eprec = nd as i32;
            }
            if shortest {
                eprec = 6;
            }
            let exp = digs.dp - 1;
            if !digs.d.is_empty() && (exp < -4 || exp >= eprec) {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &digs, p.saturating_sub(1), upper);
            } else {
                if p as i32 > digs.dp {
                    p = nd;
                }
                fmt_f(&mut out, &digs, (p as i32 - digs.dp).max(0) as usize);
            }
        }
    }
    out
}

/// Go's limit on widths and precisions.
const MAX_WIDTH: usize = 1_000_000;

/// Parsed `%` directive flags.
#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut String, s: &str, spec: &Spec) {
    let Some(w) = spec.width else {
        out.push_str(s);
        return;
    };
    let n = s.chars().count();
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero {
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(s);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// `pad` for numbers: zero padding goes after the sign.
fn pad_number(out: &mut String, s: &str, spec: &Spec) {
    if spec.zero
        && !spec.minus
        && let Some(w) = spec.width
        && s.len() < w
        && (s.starts_with('-') || s.starts_with('+') || s.starts_with(' '))
    {
        out.push_str(&s[..1]);
        out.extend(std::iter::repeat_n('0', w - s.len()));
        out.push_str(&s[1..]);
        return;
    }
    pad(out, s, spec);
}

fn v_string(v: &Value<'_>, labels: &dyn Fn() -> Vec<(String, String)>) -> String {
    let mut s = String::new();
    print_inner(v, &mut s, labels);
    s
}

fn bad_verb(
    out: &mut String,
    verb: char,
    v: &Value<'_>,
    labels: &dyn Fn() -> Vec<(String, String)>,
) {
    match v {
        Value::Missing | Value::Nil => {
            let _ = write!(out, "%!{verb}(<nil>)");
        }
        _ => {
            let _ = write!(out, "%!{verb}({}={})", v.type_name(), v_string(v, labels));
        }
    }
}

fn fmt_integer(out: &mut String, n: i128, verb: char, spec: &Spec) {
    let neg = n < 0;
    let u = n.unsigned_abs();
    let mut digits = match verb {
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        _ => format!("{u}"),
    };
    if let Some(p) = spec.prec {
        if p == 0 && u == 0 {
            digits.clear();
        }
        if digits.len() < p {
            digits = "0".repeat(p - digits.len()) + &digits;
        }
    }
    let mut prefix = String::new();
    if neg {
        prefix.push('-');
    } else if spec.plus {
        prefix.push('+');
    } else if spec.space {
        prefix.push(' ');
    }
    if spec.sharp {
        match verb {
            'b' => prefix.push_str("0b"),
            'o' if !digits.starts_with('0') => prefix.push('0'),
            'x' => prefix.push_str("0x"),
            'X' => prefix.push_str("0X"),
            _ => {}
        }
    }
    if verb == 'O' {
        prefix.push_str("0o");
    }
    let zero = spec.zero && spec.prec.is_none() && !spec.minus;
    if zero && let Some(w) = spec.width {
        let len = prefix.chars().count() + digits.len();
        if len < w {
            out.push_str(&prefix);
            out.extend(std::iter::repeat_n('0', w - len));
            out.push_str(&digits);
            return;
        }
    }
    let s = prefix + &digits;
    let sp = Spec {
        zero: false,
        ..*spec
    };
    pad(out, &s, &sp);
}

fn fmt_int_value(out: &mut String, n: i128, verb: char, spec: &Spec) -> bool {
    match verb {
        'b' | 'd' | 'o' | 'O' | 'x' | 'X' | 'v' => {
            fmt_integer(out, n, if verb == 'v' { 'd' } else { verb }, spec)
        }
        'c' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec);
        }
        'q' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let q = match c {
                '\'' => "'\\''".to_string(),
                '"' => "'\"'".to_string(),
                c => {
                    let s = go_quote(&c.to_string());
                    format!("'{}'", &s[1..s.len() - 1])
                }
            };
            pad(out, &q, spec);
        }
        'U' => {
            let mut s = format!("U+{:04X}", n.max(0));
            if spec.sharp
                && let Some(c) = u32::try_from(n).ok().and_then(char::from_u32)
            {
                let _ = write!(s, " '{c}'");
            }
            pad(out, &s, spec);
        }
        _ => return false,
    }
    true
}

fn fmt_float_value(out: &mut String, f: f64, verb: char, spec: &Spec) -> bool {
    let (v, prec) = match verb {
        'v' => ('g', spec.prec),
        'e' | 'E' | 'f' | 'F' => (verb, Some(spec.prec.unwrap_or(6))),
        'g' | 'G' => (verb, spec.prec),
        _ => return false,
    };
    let mut num = format_float(f, if v == 'F' { 'f' } else { v }, prec);
    if f.is_nan() {
        if spec.plus {
            num = "+NaN".to_string();
        } else if spec.space {
            num = " NaN".to_string();
        }
        let sp = Spec {
            zero: false,
            ..*spec
        };
        pad(out, &num, &sp);
        return true;
    }
    if f.is_infinite() {
        // Go always signs infinities ("+Inf"), a space flag replaces the plus.
        if f > 0.0 {
            num = if spec.space && !spec.plus {
                " Inf"
            } else {
                "+Inf"
            }
            .to_string();
        }
        let sp = Spec {
            zero: false,
            ..*spec
        };
        pad(out, &num, &sp);
        return true;
    }
    if spec.sharp && (v == 'g' || v == 'G') && !num.contains(['.', 'e', 'E']) {
        num.push('.');
    }
    if !num.starts_with('-') {
        if spec.plus {
            num.insert(0, '+');
        } else if spec.space {
            num.insert(0, ' ');
        }
    }
    pad_number(out, &num, spec);
    true
}

fn fmt_string_value(out: &mut String, s: &str, verb: char, spec: &Spec) -> bool {
    let truncated: String;
    let s = match spec.prec {
        Some(p) if verb != 'x' && verb != 'X' => {
            truncated = s.chars().take(p).collect();
            truncated.as_str()
        }
        _ => s,
    };
    match verb {
        's' | 'v' => pad(out, s, spec),
        'q' => {
            if spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || !c.is_control()) {
                pad(out, &format!("`{s}`"), spec);
            } else {
                pad(out, &go_quote(s), spec);
            }
        }
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = match spec.prec {
                Some(p) => &bytes[..p.min(bytes.len())],
                None => bytes,
            };
            let mut h = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, spec);
        }
        _ => return false,
    }
    true
}

fn print_arg(
    out: &mut String,
    v: &Value<'_>,
    verb: char,
    spec: &Spec,
    labels: &dyn Fn() -> Vec<(String, String)>,
) {
    if verb == 'T' {
        let name = match v {
            Value::Missing | Value::Nil => "<nil>",
            v => v.type_name(),
        };
        pad(out, name, spec);
        return;
    }
    let ok = match v {
        Value::Missing | Value::Nil => {
            if verb == 'v' {
                pad(out, "<nil>", spec);
                true
            } else {
                false
            }
        }
        Value::Bool(b) => match verb {
            't' | 'v' => {
                pad(out, if *b { "true" } else { "false" }, spec);
                true
            }
            _ => false,
        },
        Value::Int(i) | Value::I64(i) => fmt_int_value(out, i128::from(*i), verb, spec),
        Value::U8(u) => fmt_int_value(out, i128::from(*u), verb, spec),
        Value::F64(f) => fmt_float_value(out, *f, verb, spec),
        Value::Str(s) => fmt_string_value(out, s, verb, spec),
        Value::Time(t) => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => fmt_string_value(out, &t.to_go_string(), verb, spec),
            _ => false,
        },
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_arg(out, e, verb, spec, labels);
            }
            out.push(']');
            true
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_string_value(out, k, verb, spec);
                out.push(':');
                print_arg(out, e, verb, spec, labels);
            }
            out.push(']');
            true
        }
        Value::Labels => {
            out.push_str("map[");
            for (i, (k, e)) in labels().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_string_value(out, k, verb, spec);
                out.push(':');
                fmt_string_value(out, e, verb, spec);
            }
            out.push(']');
            true
        }
    };
    if !ok {
        bad_verb(out, verb, v, labels);
    }
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(
    format: &str,
    args: &[Value<'_>],
    labels: &dyn Fn() -> Vec<(String, String)>,
) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argn = 0usize;
    let mut reordered = false;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        // Flags.
        while i < chars.len() {
            match chars[i] {
                '+' => spec.plus = true,
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            i += 1;
        }
        // Argument index.
        let arg_index = |i: &mut usize, argn: &mut usize, reordered: &mut bool| {
            if *i < chars.len() && chars[*i] == '[' {
                let mut j = *i + 1;
                let mut n = 0usize;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    n = n
                        .saturating_mul(10)
                        .saturating_add(chars[j] as usize - '0' as usize);
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' && n >= 1 {
                    *argn = n - 1;
                    *reordered = true;
                    *i = j + 1;
                }
            }
        };
        arg_index(&mut i, &mut argn, &mut reordered);
        // Width.
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            match args.get(argn) {
                Some(Value::Int(n) | Value::I64(n)) if n.unsigned_abs() <= MAX_WIDTH as u64 => {
                    if *n < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(n.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            argn += 1;
        } else {
            let mut w = None;
            while i < chars.len() && chars[i].is_ascii_digit() {
                w = Some(
                    w.unwrap_or(0usize)
                        .saturating_mul(10)
                        .saturating_add(chars[i] as usize - '0' as usize),
                );
                i += 1;
            }
            // Go ignores widths and precisions above a million.
            spec.width = w.filter(|&w| w <= MAX_WIDTH);
        }
        // Precision.
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            arg_index(&mut i, &mut argn, &mut reordered);
            if i < chars.len() && chars[i] == '*' {
                i += 1;
                match args.get(argn) {
                    Some(Value::Int(n) | Value::I64(n))
                        if *n >= 0 && *n as u64 <= MAX_WIDTH as u64 =>
                    {
                        spec.prec = Some(*n as usize)
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                argn += 1;
            } else {
                let mut p = 0usize;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    p = p
                        .saturating_mul(10)
                        .saturating_add(chars[i] as usize - '0' as usize);
                    i += 1;
                }
                spec.prec = Some(p).filter(|&p| p <= MAX_WIDTH);
            }
        }
        arg_index(&mut i, &mut argn, &mut reordered);
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argn) {
            None => {
                let _ = write!(out, "%!{verb}(MISSING)");
            }
            Some(v) => {
                print_arg(&mut out, v, verb, &spec, labels);
                argn += 1;
            }
        }
    }
    if !reordered && argn < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, v) in args[argn..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            match v {
                Value::Missing | Value::Nil => out.push_str("<nil>"),
                v => {
                    let _ = write!(out, "{}={}", v.type_name(), v_string(v, labels));
                }
            }
        }
        out.push(')');
    }
    out
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value<'_>], labels: &dyn Fn() -> Vec<(String, String)>) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        print_inner(a, &mut out, labels);
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a newline.
pub(crate) fn sprintln(args: &[Value<'_>], labels: &dyn Fn() -> Vec<(String, String)>) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_inner(a, &mut out, labels);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_g(3e6, None), "3e+06");
        assert_eq!(format_float_g(123456.0, None), "123456");
        assert_eq!(format_float_g(1234567.0, None), "1.234567e+06");
        assert_eq!(format_float_g(0.0001, None), "0.0001");
        assert_eq!(format_float_g(0.00001, None), "1e-05");
        assert_eq!(format_float_g(0.0, None), "0");
        assert_eq!(format_float_g(-2.5, None), "-2.5");
        assert_eq!(
            format_float_g(3.8476190476190477, None),
            "3.8476190476190477"
        );
        assert_eq!(format_float(1.0 / 3.0, 'f', Some(2)), "0.33");
        assert_eq!(format_float(1500.0, 'e', Some(2)), "1.50e+03");
        assert_eq!(format_float(100.0, 'g', Some(2)), "1e+02");
        assert_eq!(format_float(f64::INFINITY, 'g', None), "+Inf");
    }

    #[test]
    fn printf_like_go() {
        let none = || Vec::new();
        let s = |x: &str| Value::str(x.to_string());
        assert_eq!(sprintf("%-5.5s|", &[s("GETXYZ")], &none), "GETXY|");
        assert_eq!(sprintf("%15.15s", &[s("host")], &none), "           host");
        assert_eq!(
            sprintf(
                "%d %05d %x",
                &[Value::Int(5), Value::Int(-42), Value::Int(255)],
                &none
            ),
            "5 -0042 ff"
        );
        assert_eq!(sprintf("%.2f", &[Value::F64(1.23456)], &none), "1.23");
        assert_eq!(sprintf("%q", &[s("a\"b")], &none), "\"a\\\"b\"");
        assert_eq!(sprintf("%d", &[s("x")], &none), "%!d(string=x)");
        assert_eq!(sprintf("%s %s", &[s("x")], &none), "x %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[s("x"), Value::Int(1)], &none),
            "x%!(EXTRA int=1)"
        );
        assert_eq!(
            sprintf("%v %t", &[Value::F64(1.5), Value::Bool(true)], &none),
            "1.5 true"
        );
        assert_eq!(sprintf("100%%", &[], &none), "100%");
    }
}
