//! Dims a train block's data decides (docs/src/decisions.md "Data"): a sequence
//! length from `seq =` or the longest sentence, a vocabulary size, the width
//! of a CSV selector, the shape of a `.npy` file. The checker works with the
//! dims symbolically; what it must establish is that every dim the block's
//! graph uses has a value when the block runs — declared (`dim T = 40`),
//! or bound by the data. What stays unbound is an error here (E0410), not a
//! failure after the data has been loaded. Widths the source fixes
//! statically (`images = 0..780`, `seq = 35`) are compared with the input
//! they feed here as well (E0404).
//!
//! The runtime binds the same dims from the loaded arrays
//! (`nnc_runtime::data::bind`), so the two agree by construction: the
//! checker says *which* dims the data decides, the runtime finds their
//! values.

use std::collections::BTreeMap;

use nnc_syntax::ast::{self, ExprKind};
use nnc_syntax::{Code, Diagnostic, FileId};

use super::Checker;
use crate::dims::Dim;
use crate::graph::NodeKind;
use crate::layers::ArgVal;
use crate::schema::{Length, Vocab, Yields, default_f64, lookup_fn, lookup_source};
use crate::types::{CallValue, TensorTy, Value};

/// What a data source fixes about one sample of an array.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Extent {
    /// A number of values known from the call (`0..64`, `seq = 35`, one column).
    Static(i64),
    /// Decided when the file is read (a `.npy` shape, a glob, the longest sentence).
    Runtime,
    /// The array is made in the declared shape (`synthetic`), or the source
    /// pads to it and needs it (`text` without `seq`): nothing is bound.
    Declared,
}

/// A dim bound by a train block's data.
#[derive(Clone, Debug, PartialEq)]
pub struct DataDim {
    /// The dim's name.
    pub dim: String,
    /// Known when the call fixes it (`seq = 35`); else found at run time.
    pub value: Option<i64>,
    /// What binds it, for messages ("`text(…)`'s vocabulary").
    pub source: String,
}

fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Mode(s) => Some(s.clone()),
        _ => None,
    }
}

/// The dim a `vocab = V` argument names, when it is a symbol rather than a number.
pub(crate) fn vocab_symbol(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Int(d)) if d.as_known().is_none() => plain_symbol(d),
        Some(Value::Mode(m)) => Some(m.clone()),
        _ => None,
    }
}

/// `T` for the dim `T` itself; `None` for `2*T`, `T + 1` or a number.
pub(crate) fn plain_symbol(d: &Dim) -> Option<String> {
    let syms = d.symbols();
    match syms.as_slice() {
        [s] if *d == Dim::sym(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Values per sample a CSV column selector yields, as the runtime reads it.
fn selector_extent(v: &Value) -> Extent {
    match v {
        Value::Str(s) if s.contains(['*', '?']) => Extent::Runtime,
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Call(_) => Extent::Static(1),
        Value::Range(a, b) => match (a.as_known(), b.as_known()) {
            (Some(a), Some(b)) if 0 <= a && a <= b => Extent::Static(b - a),
            _ => Extent::Runtime,
        },
        Value::List(items) => {
            let mut total: i64 = 0;
            for i in items {
                match selector_extent(i) {
                    Extent::Static(k) => total = total.saturating_add(k),
                    other => return other,
                }
            }
            Extent::Static(total)
        }
        _ => Extent::Runtime,
    }
}

/// Per array the source yields, what it fixes about a sample (read from its schema entry).
pub(crate) fn extents(call: &CallValue) -> Vec<(String, Extent)> {
    let Some(f) = lookup_fn(&call.name) else { return Vec::new() };
    let Some(source) = f.source else { return Vec::new() };
    let seq = || match call.arg("seq") {
        // A negative or fractional `seq` is the runtime's error to report.
        Some(Value::Int(d)) => d.as_known().filter(|&k| k >= 1).map_or(Extent::Declared, Extent::Static),
        Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 1.0 && *f < 1e15 => Extent::Static(*f as i64),
        _ => Extent::Declared,
    };
    // Keywords that are not options name arrays.
    let named = || call.args.iter().filter_map(|(k, v)| k.as_deref().filter(|k| f.option(k).is_none()).map(|k| (k, v)));
    match source.yields {
        Yields::Columns => named().map(|(k, v)| (k.to_string(), selector_extent(v))).collect(),
        // A key may hold a list: its width is known when the file is read.
        Yields::Keys | Yields::Files => named().map(|(k, _)| (k.to_string(), Extent::Runtime)).collect(),
        Yields::Fixed(fixed) => fixed
            .iter()
            .map(|a| {
                let name = a.option.and_then(|o| call.arg(o)).and_then(name_of).unwrap_or_else(|| a.default.into());
                let extent = match (a.length, seq()) {
                    (Length::One, _) => Extent::Static(1),
                    // Without `seq`, padded to the longest sample.
                    (Length::SeqOrLongest, Extent::Declared) => Extent::Runtime,
                    (_, e) => e,
                };
                (name, extent)
            })
            .collect(),
        // The archive's arrays are whatever it holds (bound per input by `bind_data_dims`);
        // `synthetic` makes the declared shapes.
        Yields::EveryInput | Yields::Declared => Vec::new(),
    }
}

/// The dim a source's vocabulary binds: `vocab = V` names it; without a
/// symbolic `vocab`, an unbound `dim V` is bound (docs/src/decisions.md).
pub(crate) fn vocab_dim(call: &CallValue) -> Option<String> {
    if lookup_source(&call.name).is_none_or(|s| s.vocab == Vocab::None) {
        return None;
    }
    Some(vocab_symbol(call.arg("vocab")).unwrap_or_else(|| "V".into()))
}

impl<'p> Checker<'p> {
    /// Binds the dims `call` decides for the model `inputs` it feeds, and
    /// reports static widths that cannot fill their input. `bound` collects
    /// (dim → binding); a dim bound twice to different known values is an error.
    pub(crate) fn bind_data_dims(
        &mut self,
        call: &CallValue,
        field: &str,
        e: &'p ast::Expr,
        file: FileId,
        inputs: &[(String, TensorTy)],
        bound: &mut BTreeMap<String, DataDim>,
    ) {
        let describe = match call.positional(0) {
            Some(Value::Str(s)) => format!("`{field} = {}(\"{s}\")`", call.name),
            _ => format!("`{field} = {}(…)`", call.name),
        };
        // The argument that decides an array: its selector, else `seq`.
        let span_of = |name: &str| match &e.kind {
            ExprKind::Call(c) => c.keyword(name).or_else(|| c.keyword("seq")).map_or(e.span, |a| a.value.span),
            _ => e.span,
        };
        if let Some(v) = vocab_dim(call)
            && self.dims.get(&v).is_some_and(|d| d.value.is_none())
        {
            // A number caps the vocabulary (`Counted`) or sizes the tables (`Sized`: the dim's value).
            let sized = lookup_source(&call.name).is_some_and(|s| s.vocab == Vocab::Sized);
            let value = match call.arg("vocab") {
                Some(Value::Int(d)) if sized => d.as_known(),
                None if sized => default_f64(&call.name, "vocab").map(|x| x as i64),
                _ => None,
            };
            self.bind_dim(bound, file, v, value, format!("{describe}'s vocabulary"), span_of("vocab"));
        }
        let mut yields = extents(call);
        if lookup_source(&call.name).is_some_and(|s| s.yields == Yields::EveryInput) {
            // The archive's arrays feed the inputs of their names.
            yields = inputs.iter().map(|(n, _)| (n.clone(), Extent::Runtime)).collect();
        }
        for (array, extent) in yields {
            let Some((_, ty)) = inputs.iter().find(|(n, _)| *n == array) else { continue };
            let per: &[Dim] = ty.dims.get(1..).unwrap_or(&[]);
            let at = span_of(&array);
            let what = format!("{describe}'s `{array}`");
            // The input's per-sample axes were decided where it was declared.
            let decl = ty.origins.get(1).or(ty.origins.first()).copied().unwrap_or_default();
            let unbound: Vec<(usize, String)> = per
                .iter()
                .enumerate()
                .filter(|(_, d)| d.as_known().is_none())
                .filter_map(|(i, d)| {
                    plain_symbol(d).filter(|s| bound.get(s).is_none_or(|b| b.value.is_none())).map(|s| (i, s))
                })
                .collect();
            match extent {
                Extent::Declared => {}
                Extent::Runtime => {
                    for (_, s) in unbound {
                        self.bind_dim(bound, file, s, None, what.clone(), at);
                    }
                }
                Extent::Static(count) => {
                    // One dim to solve (`[N, T]` from `seq = 35`): its value, checked
                    // against a binding by another source.
                    let symbolic: Vec<usize> = (0..per.len()).filter(|&i| per[i].as_known().is_none()).collect();
                    let rest = per.iter().filter_map(Dim::as_known).try_fold(1i64, |a, b| a.checked_mul(b));
                    if let [i] = symbolic.as_slice()
                        && let Some(s) = plain_symbol(&per[*i])
                        && let Some(p) = rest.filter(|&p| p > 0 && count % p == 0)
                    {
                        self.bind_dim(bound, file, s, Some(count / p), what.clone(), at);
                        continue;
                    }
                    // Dims already bound count as known.
                    let value_of = |d: &Dim| {
                        let v = d.substitute(&|s| bound.get(s).and_then(|b| b.value).map(Dim::Known));
                        v.ok().and_then(|v| v.as_known())
                    };
                    let known: Vec<Option<i64>> = per.iter().map(value_of).collect();
                    let product = known.iter().flatten().try_fold(1i64, |a, &b| a.checked_mul(b));
                    let open: Vec<usize> = (0..per.len()).filter(|&i| known[i].is_none()).collect();
                    let shape = || ty.to_string();
                    let values = format!("{count} value{} per sample", if count == 1 { "" } else { "s" });
                    match (open.as_slice(), product) {
                        ([], Some(p)) if p != count => self.report(
                            Diagnostic::new(
                                Code::DataInputMismatch,
                                file,
                                at,
                                format!("{what} has {values}, input `{array}` {} needs {p}", shape()),
                            )
                            .with_label(values.clone())
                            .with_secondary(decl.file, decl.span, format!("`{array}` declared here"))
                            .with_note(
                                "the selected values are reshaped to the input's declared shape, \
                                 so their counts must be equal",
                            ),
                        ),
                        ([i], Some(p)) if p > 0 => match plain_symbol(&per[*i]) {
                            Some(s) if count % p == 0 => {
                                self.bind_dim(bound, file, s, Some(count / p), what.clone(), at)
                            }
                            Some(s) => self.report(
                                Diagnostic::new(Code::DataInputMismatch, file, at, {
                                    format!(
                                        "{what} has {values}, which input `{array}` {} cannot hold for any `{s}`",
                                        shape()
                                    )
                                })
                                .with_label(values.clone())
                                .with_secondary(decl.file, decl.span, format!("`{array}` declared here"))
                                .with_note(format!("{count} is not a multiple of {p}")),
                            ),
                            None => {}
                        },
                        // Several open dims, or an expression such as `2*T`: not solvable
                        // from one count; what stays unbound is reported with the fix.
                        _ => {}
                    }
                }
            }
        }
    }

    /// Records that the data binds `dim`; a second known value that differs is an error.
    fn bind_dim(
        &mut self,
        bound: &mut BTreeMap<String, DataDim>,
        file: FileId,
        dim: String,
        value: Option<i64>,
        source: String,
        at: nnc_syntax::Span,
    ) {
        if let Some(prev) = bound.get(&dim) {
            match (prev.value, value) {
                (Some(a), Some(b)) if a != b => {
                    self.report(
                        Diagnostic::new(
                            Code::DataInputMismatch,
                            file,
                            at,
                            format!("`{dim}` is bound twice: {a} by {}, {b} by {source}", prev.source),
                        )
                        .with_label(format!("makes `{dim}` = {b}"))
                        .with_note("every dim has one value per run"),
                    );
                    return;
                }
                (Some(_), _) | (None, None) => return,
                (None, Some(_)) => {}
            }
        }
        bound.insert(dim.clone(), DataDim { dim, value, source });
    }

    /// Reports every dim the train graph uses that has no value when the
    /// block runs: neither declared with a value nor bound by its data.
    pub(crate) fn report_unbound_dims(
        &mut self,
        train: &'p ast::TrainDecl,
        file: FileId,
        call: Option<&CallValue>,
        bound: &BTreeMap<String, DataDim>,
    ) {
        let mut used: BTreeMap<String, bool> = BTreeMap::new(); // dim → is a batch axis of an input
        let mut note = |d: &Dim, batch_axis: bool| {
            for s in d.symbols() {
                let e = used.entry(s.to_string()).or_default();
                *e |= batch_axis;
            }
        };
        for node in &self.graph.nodes {
            let is_input = matches!(node.kind, NodeKind::Input { .. } | NodeKind::Data { .. });
            for t in &node.outputs {
                for (i, d) in t.dims.iter().enumerate() {
                    note(d, is_input && i == 0);
                }
            }
            if let NodeKind::Layer { params, args, .. } = &node.kind {
                for p in params {
                    p.shape.iter().for_each(|d| note(d, false));
                }
                for v in args.values() {
                    match v {
                        ArgVal::Int(d) => note(d, false),
                        ArgVal::Pair(a, b) => {
                            note(a, false);
                            note(b, false);
                        }
                        ArgVal::Shape(ds) => ds.iter().for_each(|d| note(d, false)),
                        _ => {}
                    }
                }
            }
        }
        let at = train.items.iter().find_map(|i| match i {
            ast::TrainItem::Field { key, value } if key.name == "data" => Some(value.span),
            _ => None,
        });
        for (dim, batch_axis) in used {
            if dim == "N" || bound.contains_key(&dim) {
                continue;
            }
            let Some(def) = self.dims.get(&dim) else { continue };
            if def.value.is_some() {
                continue;
            }
            let decl = def.origin;
            let mut d = Diagnostic::new(
                Code::UnboundDim,
                file,
                at.unwrap_or(train.name.span),
                format!("dim `{dim}` has no value when `{}` runs", train.name.name),
            )
            .with_label(format!("this data does not bind `{dim}`"))
            .with_secondary(decl.file, decl.span, format!("`{dim}` declared without a value"));
            let source = call.and_then(|c| lookup_source(&c.name).map(|s| (c.name.as_str(), s)));
            let how = match source {
                Some((_, s)) if !s.bind_help.is_empty() => s.bind_help.replace("{dim}", &dim),
                Some(_) => {
                    format!("bind it from data: a model input with an axis `{dim}` fed by an array of the source")
                }
                None => String::new(),
            };
            d = if let Some((name, _)) = source.filter(|(_, s)| s.yields == Yields::Declared) {
                d.with_help(format!(
                    "give `{dim}` a value: `dim {dim} = 40` (`{name}` makes arrays of the declared \
                    shapes, so it binds no dim)"
                ))
            } else if batch_axis {
                d.with_help(format!(
                    "the batch axis is `N`: write `N` instead of `{dim}`, or give `{dim}` a value: `dim {dim} = 40`"
                ))
            } else if how.is_empty() {
                d.with_help(format!("give `{dim}` a value: `dim {dim} = 40`"))
            } else {
                d.with_help(format!("give `{dim}` a value: `dim {dim} = 40`, or {how}"))
            };
            self.report(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn call(name: &str, args: Vec<(Option<&str>, Value)>) -> CallValue {
        CallValue { name: name.into(), args: args.into_iter().map(|(k, v)| (k.map(str::to_string), v)).collect() }
    }

    #[test]
    fn selector_widths() {
        let r = |a, b| Value::Range(Dim::Known(a), Dim::Known(b));
        let c = call(
            "csv",
            vec![
                (None, Value::Str("f.csv".into())),
                (Some("images"), r(0, 780)),
                (Some("both"), Value::List(vec![r(0, 3), Value::Str("Weight".into()), Value::Int(Dim::Known(7))])),
                (Some("glob"), Value::Str("pixel*".into())),
                (Some("label"), Value::Call(Rc::new(call("column", vec![(None, Value::Int(Dim::Known(1)))])))),
                (Some("header"), Value::Bool(true)),
            ],
        );
        let e = extents(&c);
        assert_eq!(
            e,
            [
                ("images".to_string(), Extent::Static(780)),
                ("both".to_string(), Extent::Static(5)),
                ("glob".to_string(), Extent::Runtime),
                ("label".to_string(), Extent::Static(1)),
            ]
        );
    }

    #[test]
    fn text_and_sentences() {
        let t = call(
            "text",
            vec![
                (None, Value::Str("a.txt".into())),
                (Some("seq"), Value::Int(Dim::Known(35))),
                (Some("x"), Value::Mode("chars".into())),
            ],
        );
        assert_eq!(extents(&t), [("chars".to_string(), Extent::Static(35)), ("next".to_string(), Extent::Static(35))]);
        assert_eq!(vocab_dim(&t), Some("V".into()));
        let s = call("sentences", vec![(None, Value::Str("s.tsv".into())), (Some("vocab"), Value::Int(Dim::sym("W")))]);
        assert_eq!(extents(&s)[0], ("tokens".to_string(), Extent::Runtime));
        assert_eq!(vocab_dim(&s), Some("W".into()));
        assert_eq!(plain_symbol(&Dim::sym("T").mul(&Dim::Known(2)).unwrap()), None);
        assert_eq!(vocab_dim(&call("csv", vec![])), None);
    }
}
