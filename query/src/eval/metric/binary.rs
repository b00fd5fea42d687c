//! Binary operations between numbers and vectors, with Loki's matching rules
//! (`evaluator.go`: `vectorBinop`, `vectorAnd`/`Or`/`Unless`, `LiteralStepEvaluator`;
//! `syntax.MergeBinOp` for the arithmetic).

use std::collections::{HashMap, HashSet};

use super::labels::{self, Interner};
use super::{Sample, Val, Vectors};
use crate::eval::Labels;
use crate::logql::ast::{BinOp, BinaryExpr, Cardinality, VectorMatching};
use crate::{Error, Result};

/// Evaluates `lhs op rhs` for already evaluated operands.
pub(super) fn evaluate(bin: &BinaryExpr, lhs: Val, rhs: Val) -> Result<Val> {
    let set_op = matches!(bin.op, BinOp::And | BinOp::Or | BinOp::Unless);
    match (lhs, rhs) {
        (Val::Scalar(l), _) if set_op => Err(literal_in_set_op("left", bin.op, l)),
        (_, Val::Scalar(r)) if set_op => Err(literal_in_set_op("right", bin.op, r)),
        // Both numbers: Loki folds these while parsing, and a comparison gives 0 or 1 with or
        // without `bool`.
        (Val::Scalar(l), Val::Scalar(r)) => {
            Ok(Val::Scalar(arithmetic(bin.op, l, r).unwrap_or_else(|| {
                f64::from(u8::from(compare(bin.op, l, r)))
            })))
        }
        (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(with_number(bin, r, l, true))),
        (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(with_number(bin, l, r, false))),
        (Val::Vector(l), Val::Vector(r)) if set_op => Ok(Val::Vector(set_operation(bin, l, r))),
        (Val::Vector(l), Val::Vector(r)) => Ok(Val::Vector(vector_binop(bin, l, r)?)),
    }
}

/// Loki's error for `1 and x` / `x or 1`.
fn literal_in_set_op(side: &str, op: BinOp, value: f64) -> Error {
    Error::BadRequest(format!(
        "unexpected literal for {side} leg of logical/set binary operation ({}): {value:.6}",
        op.as_str()
    ))
}

/// The arithmetic operators; `None` for comparisons. Division and modulo by zero give NaN
/// whatever the dividend, as Loki guards them (not ±Inf as IEEE division would).
fn arithmetic(op: BinOp, l: f64, r: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div if r == 0.0 => f64::NAN,
        BinOp::Div => l / r,
        BinOp::Mod if r == 0.0 => f64::NAN,
        BinOp::Mod => l % r,
        BinOp::Pow => l.powf(r),
        _ => return None,
    })
}

/// The comparison operators (false for anything else).
fn compare(op: BinOp, l: f64, r: f64) -> bool {
    match op {
        BinOp::Eq => l == r,
        BinOp::Ne => l != r,
        BinOp::Gt => l > r,
        BinOp::Ge => l >= r,
        BinOp::Lt => l < r,
        BinOp::Le => l <= r,
        _ => false,
    }
}

/// One result sample: arithmetic gives its value; a comparison gives 0/1 with `bool`, and
/// otherwise keeps `kept` where it holds and drops the sample where it does not.
fn combine(op: BinOp, l: f64, r: f64, return_bool: bool, kept: f64) -> Option<f64> {
    if let Some(v) = arithmetic(op, l, r) {
        return Some(v);
    }
    let holds = compare(op, l, r);
    if return_bool {
        Some(f64::from(u8::from(holds)))
    } else {
        holds.then_some(kept)
    }
}

/// A vector and a number: every sample is combined with the number and keeps its labels (and
/// a filtering comparison keeps the vector's value, whichever side the number is on).
fn with_number(bin: &BinaryExpr, mut vector: Vectors, number: f64, number_left: bool) -> Vectors {
    for step in &mut vector.steps {
        step.retain_mut(|s| {
            let (l, r) = if number_left {
                (number, s.v)
            } else {
                (s.v, number)
            };
            match combine(bin.op, l, r, bin.return_bool, s.v) {
                Some(v) => {
                    s.v = v;
                    true
                }
                None => false,
            }
        });
    }
    vector
}

/// The matching signature: all labels, only the `on` labels, or all but the `ignoring` ones.
fn signature(labels: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        None => labels.clone(),
        Some(m) if m.on => labels::keep(labels, &m.labels),
        Some(m) => labels::drop(labels, &m.labels),
    }
}

/// Signature indexes of both sides, from one interner so equal signatures share an index.
fn signatures(
    lhs: &Vectors,
    rhs: &Vectors,
    matching: Option<&VectorMatching>,
) -> (Vec<usize>, Vec<usize>, usize) {
    let mut sigs = Interner::default();
    let l = lhs
        .labels
        .iter()
        .map(|x| sigs.intern(signature(x, matching)))
        .collect();
    let r = rhs
        .labels
        .iter()
        .map(|x| sigs.intern(signature(x, matching)))
        .collect();
    (l, r, sigs.labels.len())
}

/// `and`, `or`, `unless`: samples keep their own labels and values; matching only decides which
/// survive. Cardinality does not matter.
fn set_operation(bin: &BinaryExpr, lhs: Vectors, rhs: Vectors) -> Vectors {
    let (lsig, rsig, nsig) = signatures(&lhs, &rhs, bin.matching.as_ref());
    let mut out = Interner::default();
    let lmap: Vec<usize> = lhs.labels.iter().map(|l| out.intern(l.clone())).collect();
    let rmap: Vec<usize> = rhs.labels.iter().map(|l| out.intern(l.clone())).collect();
    let mut marked_at = vec![usize::MAX; nsig];
    let steps = lhs
        .steps
        .iter()
        .zip(&rhs.steps)
        .enumerate()
        .map(|(i, (l, r))| {
            let left = l.iter().map(|s| Sample {
                id: lmap[s.id],
                v: s.v,
            });
            let right = r.iter().map(|s| Sample {
                id: rmap[s.id],
                v: s.v,
            });
            match bin.op {
                BinOp::And if l.is_empty() || r.is_empty() => Vec::new(),
                BinOp::Unless if l.is_empty() || r.is_empty() => left.collect(),
                BinOp::Or if l.is_empty() => right.collect(),
                BinOp::Or if r.is_empty() => left.collect(),
                BinOp::Or => {
                    for s in l {
                        marked_at[lsig[s.id]] = i;
                    }
                    let extra = r
                        .iter()
                        .filter(|s| marked_at[rsig[s.id]] != i)
                        .map(|s| Sample {
                            id: rmap[s.id],
                            v: s.v,
                        });
                    left.chain(extra).collect()
                }
                _ => {
                    for s in r {
                        marked_at[rsig[s.id]] = i;
                    }
                    let want = bin.op == BinOp::And;
                    l.iter()
                        .filter(|s| (marked_at[lsig[s.id]] == i) == want)
                        .map(|s| Sample {
                            id: lmap[s.id],
                            v: s.v,
                        })
                        .collect()
                }
            }
        })
        .collect();
    Vectors {
        labels: out.labels,
        steps,
    }
}

/// Loki's `resultMetric`: one-to-one keeps the `on` labels or drops the `ignoring` ones;
/// `group_x(include...)` copies each include label from the "one" side, or removes it when that
/// side lacks it. `many` is the side whose labels the result keeps.
fn result_labels(many: &Labels, one: &Labels, matching: Option<&VectorMatching>) -> Labels {
    let Some(m) = matching else {
        return many.clone();
    };
    let mut out = match (&m.card, m.on) {
        (Cardinality::OneToOne, true) => labels::keep(many, &m.labels),
        (Cardinality::OneToOne, false) => labels::drop(many, &m.labels),
        _ => many.clone(),
    };
    if let Cardinality::ManyToOne(include) | Cardinality::OneToMany(include) = &m.card {
        for name in include {
            match labels::get(one, name).filter(|v| !v.is_empty()) {
                Some(v) => {
                    let v = v.to_string();
                    labels::set(&mut out, name, &v);
                }
                None => labels::delete(&mut out, name),
            }
        }
    }
    out
}

/// Arithmetic and comparisons between two vectors, matched per step on their signatures.
fn vector_binop(bin: &BinaryExpr, lhs: Vectors, rhs: Vectors) -> Result<Vectors> {
    let matching = bin.matching.as_ref();
    let (lsig, rsig, nsig) = signatures(&lhs, &rhs, matching);
    let card = matching.map_or(&Cardinality::OneToOne, |m| &m.card);
    let one_to_one = matches!(card, Cardinality::OneToOne);
    // group_right: the right side is the "many" one; swap so the loop always walks "many".
    let one_to_many = matches!(card, Cardinality::OneToMany(_));
    let (many, one, many_sig, one_sig) = if one_to_many {
        (&rhs, &lhs, &rsig, &lsig)
    } else {
        (&lhs, &rhs, &lsig, &rsig)
    };
    let one_side = if one_to_many { "left" } else { "right" };

    let none = Sample { id: 0, v: 0.0 };
    let mut one_at: Vec<(usize, Sample)> = vec![(usize::MAX, none); nsig];
    let mut matched_at = vec![usize::MAX; nsig];
    let mut inserted: HashSet<(usize, usize)> = HashSet::new();
    let mut out = Interner::default();
    let mut pairs: HashMap<(usize, usize), usize> = HashMap::new();
    let mut steps = Vec::with_capacity(many.steps.len());
    for (i, (many_step, one_step)) in many.steps.iter().zip(&one.steps).enumerate() {
        for s in one_step {
            let sig = one_sig[s.id];
            if one_at[sig].0 == i {
                return Err(Error::Execution(format!(
                    "found duplicate series on the {one_side} hand-side;many-to-many matching not \
                     allowed: matching labels must be unique on one side"
                )));
            }
            one_at[sig] = (i, *s);
        }
        inserted.clear();
        let mut result = Vec::new();
        for s in many_step {
            let sig = many_sig[s.id];
            let (at, o) = one_at[sig];
            if at != i {
                continue;
            }
            let id = *pairs.entry((s.id, o.id)).or_insert_with(|| {
                out.intern(result_labels(
                    &many.labels[s.id],
                    &one.labels[o.id],
                    matching,
                ))
            });
            if one_to_one {
                if matched_at[sig] == i {
                    return Err(Error::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)"
                            .into(),
                    ));
                }
                matched_at[sig] = i;
            } else if !inserted.insert((sig, id)) {
                return Err(Error::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            // Operands in the query's order again; a filtering comparison keeps the left value.
            let (l, r) = if one_to_many { (o.v, s.v) } else { (s.v, o.v) };
            if let Some(v) = combine(bin.op, l, r, bin.return_bool, l) {
                result.push(Sample { id, v });
            }
        }
        steps.push(result);
    }
    Ok(Vectors {
        labels: out.labels,
        steps,
    })
}
