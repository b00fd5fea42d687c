//! Template values: the dynamic types a Loki template handles (Go's strings, ints, int64s,
//! floats, bools, `time.Time`, and what `fromJson` returns), with Go's printing and truth.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::gofmt;
use super::gotime::GoTime;

/// A value during template execution.
#[derive(Clone, Debug)]
pub(crate) enum Value<'a> {
    /// Go's invalid `reflect.Value` ("<no value>").
    Missing,
    /// A nil interface (JSON `null`, the `nil` constant).
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (what sprig's integer math returns).
    I64(i64),
    /// Go `uint8` (a byte from `index` on a string).
    U8(u8),
    F64(f64),
    Str(Cow<'a, str>),
    Time(GoTime),
    List(Rc<Vec<Value<'a>>>),
    Map(Rc<BTreeMap<String, Value<'a>>>),
    /// The template's data: the entry's labels (`map[string]string`).
    Labels,
}

impl<'a> Value<'a> {
    pub(crate) fn str(s: impl Into<Cow<'a, str>>) -> Self {
        Value::Str(s.into())
    }

    /// Go's type name, for error texts.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<nil>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::I64(_) => "int64",
            Value::U8(_) => "uint8",
            Value::F64(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Labels => "map[string]string",
        }
    }

    /// text/template's `isTrue`.
    pub(crate) fn truth(&self, labels_len: usize) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::I64(i) => *i != 0,
            Value::U8(u) => *u != 0,
            Value::F64(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Time(_) => true,
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Labels => labels_len > 0,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Prints a value the way `fmt.Fprint` does for a template action. `labels` gives the data
/// map's entries for printing `.` itself.
pub(crate) fn print_value(
    v: &Value<'_>,
    out: &mut String,
    labels: &dyn Fn() -> Vec<(String, String)>,
) {
    match v {
        Value::Missing => out.push_str("<no value>"),
        _ => print_inner(v, out, labels),
    }
}

/// `%v` formatting of a value (inside containers a nil prints as `<nil>`).
pub(crate) fn print_inner(
    v: &Value<'_>,
    out: &mut String,
    labels: &dyn Fn() -> Vec<(String, String)>,
) {
    match v {
        Value::Missing | Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::I64(i) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{i}");
        }
        Value::U8(u) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{u}");
        }
        Value::F64(f) => out.push_str(&gofmt::format_float_g(*f, None)),
        Value::Str(s) => out.push_str(s),
        Value::Time(t) => out.push_str(&t.to_go_string()),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_inner(e, out, labels);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_inner(e, out, labels);
            }
            out.push(']');
        }
        Value::Labels => {
            out.push_str("map[");
            for (i, (k, e)) in labels().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(e);
            }
            out.push(']');
        }
    }
}

/// Converts a parsed JSON document (`fromJson`).
pub(crate) fn from_json(v: serde_json::Value) -> Value<'static> {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::F64(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::Str(Cow::Owned(s)),
        serde_json::Value::Array(a) => Value::List(Rc::new(a.into_iter().map(from_json).collect())),
        serde_json::Value::Object(o) => Value::Map(Rc::new(
            o.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        )),
    }
}
