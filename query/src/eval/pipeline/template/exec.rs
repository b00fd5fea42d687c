//! Execution of a parsed template over an entry's labels, following text/template's evaluation
//! rules (pipelines pass the previous value as the last argument, fields on the label map read
//! missing keys as "", typed function parameters) and its error texts.

use std::sync::Arc;

use regex::Regex;

use super::funcs::{self, CallCtx, Special, Ty};
use super::parse::{Arg, Branch, Command, List, Node, Number, Pipe};
use super::value::{Value, print_value};
use super::{LabelSource, Template};

/// Largest output a template may produce.
const MAX_OUTPUT: usize = 16 << 20;
/// Most range iterations one execution may run.
const MAX_ITERATIONS: usize = 1 << 20;
/// Deepest `{{template}}` nesting (Go allows far more; each level can hold deeply nested
/// actions, and entries are evaluated on bounded worker stacks).
const MAX_DEPTH: usize = 8;

/// A runtime error at a node.
pub(crate) struct ExecErr {
    pub(crate) pos: usize,
    pub(crate) context: String,
    pub(crate) msg: String,
}

fn err_at(node: &Arg, msg: impl Into<String>) -> ExecErr {
    ExecErr {
        pos: node.pos(),
        context: node.text(),
        msg: msg.into(),
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'a> {
    t: &'a Template,
    data: &'a dyn LabelSource,
    line: &'a str,
    ts: i64,
    vars: Vec<(String, Value<'a>)>,
    pub(crate) out: String,
    depth: usize,
    budget: usize,
}

impl<'a> State<'a> {
    pub(crate) fn new(t: &'a Template, data: &'a dyn LabelSource, line: &'a str, ts: i64) -> Self {
        State {
            t,
            data,
            line,
            ts,
            vars: vec![("$".to_string(), Value::Labels)],
            out: String::new(),
            depth: 0,
            budget: MAX_ITERATIONS,
        }
    }

    pub(crate) fn run(&mut self, root: &'a List) -> Result<(), ExecErr> {
        self.walk(&Value::Labels, root).map(|_| ())
    }

    fn labels_len(&self) -> usize {
        self.data.len()
    }

    fn truth(&self, v: &Value<'a>) -> bool {
        v.truth(if matches!(v, Value::Labels) {
            self.labels_len()
        } else {
            0
        })
    }

    fn walk(&mut self, dot: &Value<'a>, list: &'a [Node]) -> Result<Flow, ExecErr> {
        for node in list {
            match node {
                Node::Text(t) => self.write(t, 0)?,
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let data = self.data;
                        let mut s = String::new();
                        print_value(&v, &mut s, &|| data.sorted());
                        self.write(&s, pipe.pos)?;
                    }
                }
                Node::If(b) | Node::With(b) => {
                    let is_with = matches!(node, Node::With(_));
                    let mark = self.vars.len();
                    let v = self.eval_pipeline(dot, &b.pipe)?;
                    let flow = if self.truth(&v) {
                        if is_with {
                            self.walk(&v, &b.list)?
                        } else {
                            self.walk(dot, &b.list)?
                        }
                    } else if let Some(e) = &b.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Template { name, pipe, pos } => {
                    let Some((_, body)) = self.t.defines.iter().find(|(n, _)| n == name) else {
                        return Err(ExecErr {
                            pos: *pos,
                            context: format!("{{{{template \"{name}\"}}}}"),
                            msg: format!("template \"{name}\" not defined"),
                        });
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(ExecErr {
                            pos: *pos,
                            context: format!("{{{{template \"{name}\"}}}}"),
                            msg: format!("exceeded maximum template depth ({MAX_DEPTH})"),
                        });
                    }
                    let new_dot = match pipe {
                        Some(p) => self.eval_pipeline(dot, p)?,
                        None => Value::Missing,
                    };
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                    self.depth += 1;
                    let r = self.walk(&new_dot, body);
                    self.depth -= 1;
                    self.vars = saved;
                    r?;
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn write(&mut self, s: &str, pos: usize) -> Result<(), ExecErr> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(ExecErr {
                pos,
                context: String::new(),
                msg: "template output too large".to_string(),
            });
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_range(&mut self, dot: &Value<'a>, b: &'a Branch) -> Result<(), ExecErr> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let iter_mark = self.vars.len();
        let items: Vec<(Value<'a>, Value<'a>)> = match &val {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::str(k.clone()), v.clone()))
                .collect(),
            Value::Labels => self
                .data
                .sorted()
                .into_iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect(),
            Value::Int(n) | Value::I64(n) => {
                if b.pipe.decl.len() > 1 {
                    return Err(ExecErr {
                        pos: b.pipe.pos,
                        context: String::new(),
                        msg: format!("can't use {n} to iterate over more than one variable"),
                    });
                }
                if (*n).max(0) as usize > self.budget {
                    return Err(ExecErr {
                        pos: b.pipe.pos,
                        context: String::new(),
                        msg: "range iterations exceed the limit".to_string(),
                    });
                }
                (0..(*n).max(0))
                    .map(|i| (Value::Int(i), Value::Int(i)))
                    .collect()
            }
            Value::Missing | Value::Nil => Vec::new(),
            v => {
                let data = self.data;
                let mut s = String::new();
                print_value(v, &mut s, &|| data.sorted());
                return Err(ExecErr {
                    pos: b.pipe.pos,
                    context: String::new(),
                    msg: format!("range can't iterate over {s}"),
                });
            }
        };
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                self.walk(dot, e)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        for (index, elem) in items {
            if self.budget == 0 {
                return Err(ExecErr {
                    pos: b.pipe.pos,
                    context: String::new(),
                    msg: "range iterations exceed the limit".to_string(),
                });
            }
            self.budget -= 1;
            let decl = &b.pipe.decl;
            if !decl.is_empty() {
                if b.pipe.is_assign {
                    if decl.len() > 1 {
                        self.set_var(&decl[0], index.clone(), b.pipe.pos)?;
                        self.set_var(&decl[1], elem.clone(), b.pipe.pos)?;
                    } else {
                        self.set_var(&decl[0], elem.clone(), b.pipe.pos)?;
                    }
                } else {
                    let n = self.vars.len();
                    self.vars[n - 1].1 = elem.clone();
                    if decl.len() > 1 {
                        self.vars[n - 2].1 = index.clone();
                    }
                }
            }
            let flow = self.walk(&elem, &b.list);
            self.vars.truncate(iter_mark);
            match flow? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn set_var(&mut self, name: &str, v: Value<'a>, pos: usize) -> Result<(), ExecErr> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(ExecErr {
                pos,
                context: name.to_string(),
                msg: format!("undefined variable: {name}"),
            }),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> Result<Value<'a>, ExecErr> {
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Missing);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, value.clone(), pipe.pos)?;
            } else {
                self.vars.push((d.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(args: &[Arg], final_: &Option<Value<'a>>) -> Result<(), ExecErr> {
        if args.len() > 1 || final_.is_some() {
            return Err(err_at(
                &args[0],
                format!("can't give argument to non-function {}", args[0].text()),
            ));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecErr> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                return self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, final_);
            }
            Arg::Chain { node, fields, .. } => {
                return self.eval_chain(dot, first, node, fields, &cmd.args, final_);
            }
            Arg::Ident { name, .. } => {
                return self.eval_function(
                    dot,
                    first,
                    name,
                    cmd.regex.as_ref(),
                    &cmd.args[1..],
                    final_,
                );
            }
            Arg::Pipe { pipe, .. } => {
                Self::not_a_function(&cmd.args, &final_)?;
                return self.eval_pipeline(dot, pipe);
            }
            Arg::Variable { name, fields, .. } => {
                return self.eval_variable(dot, first, name, fields, &cmd.args, final_);
            }
            _ => {}
        }
        Self::not_a_function(&cmd.args, &final_)?;
        match first {
            Arg::Bool { value, .. } => Ok(Value::Bool(*value)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(err_at(first, "nil is not a command")),
            Arg::Number { num, .. } => ideal_constant(first, num),
            Arg::Str { value, .. } => Ok(Value::str(value.as_str())),
            _ => Ok(Value::Missing),
        }
    }

    fn eval_variable(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        name: &str,
        fields: &'a [String],
        args: &'a [Arg],
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecErr> {
        let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
            return Err(err_at(node, format!("undefined variable: {name}")));
        };
        let v = v.clone();
        if fields.is_empty() {
            Self::not_a_function(args, &final_)?;
            return Ok(v);
        }
        self.eval_field_chain(dot, v, node, fields, args, final_)
    }

    fn eval_chain(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        inner: &'a Arg,
        fields: &'a [String],
        args: &'a [Arg],
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecErr> {
        if matches!(inner, Arg::Nil { .. }) {
            return Err(err_at(
                node,
                format!("indirection through explicit nil in {}", node.text()),
            ));
        }
        let recv = self.eval_arg(dot, Ty::Any, inner)?;
        self.eval_field_chain(dot, recv, node, fields, args, final_)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value<'a>,
        receiver: Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecErr> {
        let n = idents.len();
        let mut recv = receiver;
        for id in &idents[..n - 1] {
            recv = self.eval_field(dot, id, node, &args[..1], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], node, args, final_, recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value<'a>,
        name: &str,
        node: &'a Arg,
        args: &'a [Arg],
        final_: Option<Value<'a>>,
        receiver: Value<'a>,
    ) -> Result<Value<'a>, ExecErr> {
        let has_args = args.len() > 1 || final_.is_some();
        match receiver {
            Value::Missing | Value::Nil => Ok(Value::Missing),
            Value::Labels => {
                if has_args {
                    return Err(err_at(
                        node,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(Value::str(self.data.get(name).unwrap_or("")))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(err_at(
                        node,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(m.get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Time(t) => {
                let method_args = &args[1..];
                let want = usize::from(name == "Format");
                let got = method_args.len() + usize::from(final_.is_some());
                let known = matches!(
                    name,
                    "Unix"
                        | "UnixMilli"
                        | "UnixMicro"
                        | "UnixNano"
                        | "Year"
                        | "Day"
                        | "Hour"
                        | "Minute"
                        | "Second"
                        | "Nanosecond"
                        | "YearDay"
                        | "Month"
                        | "Weekday"
                        | "UTC"
                        | "Local"
                        | "String"
                        | "IsZero"
                        | "Format"
                );
                if !known {
                    return Err(err_at(
                        node,
                        format!("can't evaluate field {name} in type time.Time"),
                    ));
                }
                if got != want {
                    return Err(err_at(
                        node,
                        format!("wrong number of args for {name}: want {want} got {got}"),
                    ));
                }
                Ok(match name {
                    "Unix" => Value::I64(t.unix()),
                    "UnixMilli" => Value::I64(t.unix_nanos().div_euclid(1_000_000) as i64),
                    "UnixMicro" => Value::I64(t.unix_nanos().div_euclid(1_000) as i64),
                    "UnixNano" => Value::I64(t.unix_nanos() as i64),
                    "Month" => Value::str(t.month_name()),
                    "Weekday" => Value::str(t.weekday_name()),
                    "UTC" | "Local" => Value::Time(t.in_utc()),
                    "String" => Value::str(t.to_go_string()),
                    "IsZero" => Value::Bool(t.is_zero()),
                    "Format" => {
                        let layout = match method_args.first() {
                            Some(a) => self.eval_arg(dot, Ty::Str, a)?,
                            None => {
                                Self::validate(node, final_.unwrap_or(Value::Missing), Ty::Str)?
                            }
                        };
                        Value::str(t.format(layout.as_str().unwrap_or("")))
                    }
                    other => Value::Int(t.field(other).unwrap_or(0)),
                })
            }
            other => Err(err_at(
                node,
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        name: &str,
        regex: Option<&'a (String, Arc<Regex>)>,
        args: &'a [Arg],
        final_: Option<Value<'a>>,
    ) -> Result<Value<'a>, ExecErr> {
        let Some(func) = funcs::lookup(name) else {
            return Err(err_at(
                node,
                format!("\"{name}\" is not a defined function"),
            ));
        };
        let num_in = args.len() + usize::from(final_.is_some());
        let num_fixed = func.params.len();
        if func.variadic.is_some() {
            if num_in < num_fixed {
                return Err(err_at(
                    node,
                    format!(
                        "wrong number of args for {name}: want at least {num_fixed} got {num_in}"
                    ),
                ));
            }
        } else if num_in != num_fixed {
            return Err(err_at(
                node,
                format!("wrong number of args for {name}: want {num_fixed} got {num_in}"),
            ));
        }
        let imp = match func.imp {
            Ok(imp) => imp,
            Err(Special::And) | Err(Special::Or) => {
                let is_or = func.imp == Err(Special::Or);
                let mut v = Value::Missing;
                for a in args {
                    v = self.eval_arg(dot, Ty::Any, a)?;
                    if self.truth(&v) == is_or {
                        return Ok(v);
                    }
                }
                if let Some(f) = final_ {
                    v = f;
                }
                return Ok(v);
            }
            Err(Special::Call) => {
                let v = match args.first() {
                    Some(a) => self.eval_arg(dot, Ty::Any, a)?,
                    None => final_.unwrap_or(Value::Missing),
                };
                let msg = match v {
                    Value::Missing | Value::Nil => "call of nil".to_string(),
                    v => format!("non-function of type {}", v.type_name()),
                };
                return Err(err_at(node, format!("error calling call: {msg}")));
            }
        };
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let ty = if i < num_fixed {
                func.params[i]
            } else {
                func.variadic.unwrap_or(Ty::Any)
            };
            argv.push(self.eval_arg(dot, ty, a)?);
        }
        if let Some(f) = final_ {
            let ty = match func.variadic {
                Some(vt) if num_in > num_fixed => vt,
                _ => func.params[num_in - 1],
            };
            argv.push(Self::validate(node, f, ty)?);
        }
        let data = self.data;
        let labels = || data.sorted();
        let ctx = CallCtx {
            line: self.line,
            ts: self.ts,
            regex: regex.map(|(s, r)| (s.as_str(), r.as_ref())),
            labels: &labels,
        };
        imp(&ctx, argv).map_err(|e| err_at(node, format!("error calling {name}: {e}")))
    }

    fn validate(node: &Arg, v: Value<'a>, ty: Ty) -> Result<Value<'a>, ExecErr> {
        let ok = match (&v, ty) {
            (_, Ty::Any) => true,
            (Value::Missing, _) => {
                return Err(err_at(
                    node,
                    format!("invalid value; expected {}", ty.name()),
                ));
            }
            (Value::Str(_), Ty::Str)
            | (Value::Int(_), Ty::Int)
            | (Value::F64(_), Ty::F64)
            | (Value::Time(_), Ty::Time) => true,
            _ => false,
        };
        if ok {
            Ok(v)
        } else {
            let got = if matches!(v, Value::Nil) {
                "interface {}"
            } else {
                v.type_name()
            };
            Err(err_at(
                node,
                format!("wrong type for value; expected {}; got {got}", ty.name()),
            ))
        }
    }

    fn eval_arg(&mut self, dot: &Value<'a>, ty: Ty, arg: &'a Arg) -> Result<Value<'a>, ExecErr> {
        let v = match arg {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                if ty == Ty::Any {
                    return Ok(Value::Nil);
                }
                return Err(err_at(arg, format!("cannot assign nil to {}", ty.name())));
            }
            Arg::Field { idents, .. } => self.eval_field_chain(
                dot,
                dot.clone(),
                arg,
                idents,
                std::slice::from_ref(arg),
                None,
            )?,
            Arg::Variable { name, fields, .. } => {
                self.eval_variable(dot, arg, name, fields, std::slice::from_ref(arg), None)?
            }
            Arg::Pipe { pipe, .. } => self.eval_pipeline(dot, pipe)?,
            Arg::Ident { name, .. } => {
                // A function used as an argument is called without arguments.
                self.eval_function(dot, arg, name, None, &[], None)?
            }
            Arg::Chain { node, fields, .. } => {
                self.eval_chain(dot, arg, node, fields, std::slice::from_ref(arg), None)?
            }
            Arg::Bool { value, .. } => {
                if ty == Ty::Any {
                    return Ok(Value::Bool(*value));
                }
                return Err(err_at(
                    arg,
                    format!("expected {}; found {}", ty.name(), arg.text()),
                ));
            }
            Arg::Number { num, .. } => {
                return match ty {
                    Ty::Int => num.int.map(Value::Int).ok_or_else(|| {
                        err_at(arg, format!("expected integer; found {}", num.text))
                    }),
                    Ty::F64 => num
                        .float
                        .map(Value::F64)
                        .ok_or_else(|| err_at(arg, format!("expected float; found {}", num.text))),
                    Ty::Any => ideal_constant(arg, num),
                    Ty::Str => Err(err_at(arg, format!("expected string; found {}", num.text))),
                    Ty::Time => Err(err_at(
                        arg,
                        format!("can't handle {} for arg of type time.Time", num.text),
                    )),
                };
            }
            Arg::Str { value, .. } => {
                return match ty {
                    Ty::Str | Ty::Any => Ok(Value::str(value.as_str())),
                    Ty::Int => Err(err_at(
                        arg,
                        format!("expected integer; found {}", arg.text()),
                    )),
                    Ty::F64 => Err(err_at(arg, format!("expected float; found {}", arg.text()))),
                    Ty::Time => Err(err_at(
                        arg,
                        format!("can't handle {} for arg of type time.Time", arg.text()),
                    )),
                };
            }
        };
        Self::validate(arg, v, ty)
    }
}

/// text/template's `idealConstant`: "3" is an int, "3.0" and "1e3" floats.
fn ideal_constant<'a>(node: &Arg, num: &Number) -> Result<Value<'a>, ExecErr> {
    if num.is_float_text
        && let Some(f) = num.float
    {
        return Ok(Value::F64(f));
    }
    match num.int {
        Some(i) => Ok(Value::Int(i)),
        // Go: a constant that fits uint64 "overflows int"; anything bigger is no value.
        None if num.text.trim_start_matches('+').parse::<u64>().is_ok() => {
            Err(err_at(node, format!("{} overflows int", num.text)))
        }
        None => Ok(Value::Missing),
    }
}
