//! `nnc export --to keras`: a model's typed graph as a Keras 3 functional model (`model.py`), node by
//! node: inputs become `keras.Input`, layer applications their Keras layer ([`layers::emit`], the one
//! mapping from the layer table), arithmetic `Add`/`Subtract`/`Multiply` or a keras.ops layer, indexing
//! a keras.ops layer. Blocks, `|>` chains and called models are already inlined in the graph.

pub(crate) mod layers;
pub(crate) mod py;
pub(crate) mod train;

use std::collections::HashMap;

use nnc_compiler::graph::{Graph, IndexSpec, NodeKind, Operand, TRef};
use nnc_compiler::layers::ArgVal;
use nnc_compiler::types::{Origin, TensorTy};
use nnc_syntax::ast::{BinOp, ElemType};

use layers::{Application, Emitter, Refusal};

/// One model to write as a `build_<name>()` function.
pub(crate) struct ModelSource<'a> {
    /// The model's name (the Keras model's name, `build_<name>`).
    pub name: String,
    /// Its doc comment.
    pub doc: Option<String>,
    /// The graph holding it.
    pub graph: &'a Graph,
    /// Its inputs (name, node), in declaration order.
    pub inputs: Vec<(String, TRef)>,
    /// Its outputs (name, tensor), in declaration order.
    pub outputs: Vec<(String, TRef)>,
    /// What the weights file puts before its parameter names (`Generator.` in a GAN's checkpoint).
    pub prefix: String,
    /// Model inputs replaced by the tensors that feed them (a train block's data and `let`s).
    pub subst: HashMap<u32, TRef>,
    /// Outputs as a dict by name (a train block's loss and metrics) rather than a list.
    pub named_outputs: bool,
    /// The class weights of the block's losses (`class_weight`), by class.
    pub class_weights: Option<Vec<f64>>,
    /// Layers under these prefixes are frozen (not trainable in Keras).
    pub frozen: Vec<String>,
    /// In a GAN step's graph, the prefixes of the models the step updates (see `Emitter::step_over`).
    pub step_over: Option<Vec<String>>,
    /// A training graph (of `train.py`), not a model users build.
    pub trainer: bool,
}

impl<'a> ModelSource<'a> {
    /// A model of `graph` with its inputs and outputs, nothing substituted.
    pub fn plain(
        name: String,
        doc: Option<String>,
        graph: &'a Graph,
        inputs: Vec<(String, TRef)>,
        outputs: Vec<(String, TRef)>,
        prefix: String,
    ) -> ModelSource<'a> {
        ModelSource {
            name,
            doc,
            graph,
            inputs,
            outputs,
            prefix,
            subst: HashMap::new(),
            named_outputs: false,
            class_weights: None,
            frozen: Vec::new(),
            step_over: None,
            trainer: false,
        }
    }
}

/// A node Keras cannot express, with where it was written.
#[derive(Debug)]
pub(crate) struct Unexportable {
    /// The layer or operation, as the message names it (`mean` (`stats.mean`)).
    pub what: String,
    /// Why, and the option at fault.
    pub refusal: Refusal,
    /// The node's source expression.
    pub origin: Origin,
    /// The option's span, when the option was written.
    pub option_origin: Option<Origin>,
}

/// The text of `model.py` for `models` (the first is the default of its command line); `source` names
/// the `.nn` file in the header.
pub(crate) fn model_py(source: &str, models: &[ModelSource], trainer: Option<&str>) -> Result<String, Unexportable> {
    let mut functions = Vec::new();
    let mut classes = std::collections::BTreeSet::new();
    let mut weights = Vec::new();
    for m in models.iter().filter(|m| !m.trainer) {
        let mut e = Emitter::default();
        let (mut body, model) = build_body(m, &mut e, &mut HashMap::new())?;
        body.push(format!("return {model}"));
        classes.extend(e.classes.iter().copied());
        functions.push(function(&m.name, m.doc.as_deref(), &body));
        weights.push((m.name.clone(), e.weights));
    }
    // The training graphs of one block share one set of layers (a GAN's steps read the same weights).
    let trainers: Vec<&ModelSource> = models.iter().filter(|m| m.trainer).collect();
    if let (Some(name), false) = (trainer, trainers.is_empty()) {
        let mut e = Emitter::default();
        let mut known = HashMap::new();
        let mut body = vec!["graphs = []".to_string()];
        for m in &trainers {
            e.step_over = m.step_over.clone();
            let (lines, model) = build_body(m, &mut e, &mut known)?;
            body.extend(lines);
            body.push(format!("graphs.append({model})"));
        }
        body.push("return graphs".into());
        classes.extend(e.classes.iter().copied());
        let doc = "The train block's graphs (one per step): data arrays in, `loss` (and metrics) out.";
        functions.push(function(name, Some(doc), &body));
        for m in &trainers {
            weights.push((m.name.clone(), e.weights.clone()));
        }
    }
    let names: Vec<&str> = models.iter().filter(|m| !m.trainer).map(|m| m.name.as_str()).collect();
    let mut out = format!(
        "\"\"\"Keras 3 form of {} from {source}, generated by `nnc export --to keras`: regenerate, do not edit.\n\n\
         Build and load:  from model import build_{first}, load_weights\n                 \
         model = load_weights(build_{first}())\nSave:            python model.py --save model.keras\n\"\"\"\n\n",
        names.join(", "),
        first = names.first().copied().unwrap_or("model"),
    );
    out.push_str(py::HEAD);
    for c in &classes {
        out.push_str(py::class(c));
    }
    for f in &functions {
        out.push_str("\n\n");
        out.push_str(f);
    }
    out.push_str("\n\n# Keras layer → the nnc parameters it holds, in the layer's weight order.\nWEIGHTS = {\n");
    for (model, table) in &weights {
        out.push_str(&format!("    {}: {{\n", py::string(model)));
        for (layer, params) in table {
            let list: Vec<String> = params.iter().map(|p| py::string(p)).collect();
            out.push_str(&format!("        {}: [{}],\n", py::string(layer), list.join(", ")));
        }
        out.push_str("    },\n");
    }
    out.push_str("}\n# What the weights file puts before each model's parameter names.\nPREFIX = {");
    let prefixes: Vec<String> =
        models.iter().map(|m| format!("{}: {}", py::string(&m.name), py::string(&m.prefix))).collect();
    out.push_str(&prefixes.join(", "));
    out.push_str("}\nBUILDERS = {");
    let builders: Vec<String> = names.iter().map(|n| format!("{}: build_{}", py::string(n), ident(n))).collect();
    out.push_str(&builders.join(", "));
    out.push_str(&format!("}}\nMAIN = {}\n", py::string(names.first().copied().unwrap_or(""))));
    out.push_str(py::TAIL);
    Ok(out)
}

/// A Python identifier from a model name (nnc's names are identifiers already; this guards the rest).
pub(crate) fn ident(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn function(name: &str, doc: Option<&str>, body: &[String]) -> String {
    let mut f = format!("def build_{}():\n", ident(name));
    let doc = doc.unwrap_or("").replace("\"\"\"", "'''").replace('\\', "\\\\");
    let doc = doc.lines().map(str::trim).collect::<Vec<_>>().join("\n    ");
    f.push_str(&format!("    \"\"\"{}\"\"\"\n", if doc.is_empty() { format!("The model `{name}`.") } else { doc }));
    for l in body {
        f.push_str("    ");
        f.push_str(l);
        f.push('\n');
    }
    f
}

/// Keras's per-sample shape of a tensor type: every axis after the batch axis (`None` when unknown).
fn per_sample(t: &TensorTy) -> String {
    let dims: Vec<String> =
        t.dims.iter().skip(1).map(|d| d.as_known().map_or("None".to_string(), |v| v.to_string())).collect();
    match dims.len() {
        0 => "()".into(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}

/// The walk over one graph: each tensor's Python variable, made on first use (operands first).
struct Walk<'a, 'e> {
    m: &'a ModelSource<'a>,
    e: &'e mut Emitter,
    vars: HashMap<TRef, String>,
    /// Inputs and data arrays met, as (name, variable).
    inputs: Vec<(String, String)>,
}

impl Walk<'_, '_> {
    /// The Python variable of tensor `r`, emitting its node (and its operands) when not yet done.
    fn tensor(&mut self, r: TRef) -> Result<String, Unexportable> {
        let r = match self.m.subst.get(&r.node) {
            Some(feed) => *feed,
            None => r,
        };
        if let Some(v) = self.vars.get(&r) {
            return Ok(v.clone());
        }
        self.node(r.node as usize)?;
        self.vars.get(&r).cloned().ok_or_else(|| Unexportable {
            what: "a tensor".into(),
            refusal: Refusal { option: None, why: "it is not computed by the graph".into() },
            origin: self.m.graph.node(r.node).origin,
            option_origin: None,
        })
    }

    // long: one arm per kind of node of the typed graph.
    fn node(&mut self, id: usize) -> Result<(), Unexportable> {
        let g = self.m.graph;
        let node = &g.nodes[id];
        let r0 = TRef { node: id as u32, output: 0 };
        let fail = |what: String, why: String| Unexportable {
            what,
            refusal: Refusal { option: None, why },
            origin: node.origin,
            option_origin: None,
        };
        match &node.kind {
            NodeKind::Input { name } | NodeKind::Data { name } => {
                let t = &node.outputs[0];
                let var = format!("in_{}", ident(name));
                let dtype = if t.elem == ElemType::Int { "int32" } else { "float32" };
                // A model of a fixed batch size (`input x: [16, 26, 26, 128]`) keeps it.
                let shape = match t.dims.first().and_then(|d| d.as_known()) {
                    Some(n) => format!("batch_shape=({n}, {}", per_sample(t).trim_start_matches('(')),
                    None => format!("shape={}", per_sample(t)),
                };
                self.e.lines.push(format!(
                    "{var} = keras.Input({shape}, dtype={}, name={})",
                    py::string(dtype),
                    py::string(name)
                ));
                self.inputs.push((name.clone(), var.clone()));
                if self.e.batch_ref.is_none() {
                    self.e.batch_ref = Some(var.clone());
                }
                self.vars.insert(r0, var);
            }
            NodeKind::Layer { def, args, inputs: ins, params, name, frozen } => {
                let mut py_inputs = Vec::new();
                for r in ins {
                    py_inputs.push(self.tensor(*r)?);
                }
                // Tensors given as options (`kv = enc`, `initial_state = h0`) first, so they have variables.
                for a in args.values() {
                    let ts: Vec<&TensorTy> = match a {
                        ArgVal::Tensor(t) => vec![t],
                        ArgVal::State(ts) => ts.iter().collect(),
                        _ => vec![],
                    };
                    for t in ts {
                        if let Some(r) = t.node {
                            self.tensor(r)?;
                        }
                    }
                }
                let input_types: Vec<&TensorTy> = ins.iter().map(|r| g.ty(*r)).collect();
                let (vars, subst) = (&self.vars, &self.m.subst);
                let tensor = |t: &TensorTy| {
                    let r = t.node?;
                    vars.get(subst.get(&r.node).unwrap_or(&r)).cloned()
                };
                let app = Application {
                    def,
                    args,
                    name,
                    inputs: py_inputs,
                    input_types,
                    output_types: &node.outputs,
                    params,
                    frozen: *frozen || self.m.frozen.iter().any(|p| name.starts_with(p.as_str())),
                    tensor: &tensor,
                };
                let what = if name == def.name || name.ends_with(&format!(".{}", def.name)) {
                    format!("`{}`", def.name)
                } else {
                    format!("`{}` (`{name}`)", def.name)
                };
                let expr = layers::emit(self.e, &app).map_err(|refusal| Unexportable {
                    what,
                    option_origin: refusal.option.and_then(|o| args.origin(o)),
                    refusal,
                    origin: node.origin,
                })?;
                if node.outputs.len() == 1 {
                    self.vars.insert(r0, expr);
                } else {
                    for k in 0..node.outputs.len() {
                        self.vars.insert(TRef { node: id as u32, output: k as u16 }, format!("{expr}[{k}]"));
                    }
                }
            }
            NodeKind::Binary { op, lhs, rhs } => {
                for o in [lhs, rhs] {
                    if let Operand::Tensor(t) = o {
                        self.tensor(*t)?;
                    }
                }
                let (lhs, rhs) = (self.resolve(lhs), self.resolve(rhs));
                let var = arithmetic(self.e, id, *op, &lhs, &rhs, g, &self.vars)
                    .map_err(|r| fail(format!("`{}`", op.symbol()), r.why))?;
                self.vars.insert(r0, var);
            }
            NodeKind::Index { base, items } => {
                let x = self.tensor(*base)?;
                if !matches!(items.first(), Some(IndexSpec::Full) | None) {
                    return Err(fail(
                        "indexing".into(),
                        "it indexes the batch axis, which a Keras model keeps whole".into(),
                    ));
                }
                let list: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        IndexSpec::At(p) => format!("[\"at\", {p}]"),
                        IndexSpec::Slice(a, b) => format!("[\"slice\", {a}, {b}]"),
                        IndexSpec::Full => "[\"full\"]".into(),
                    })
                    .collect();
                let var =
                    self.e.op(&format!("index_{id}"), "index", &[("items", format!("[{}]", list.join(", ")))], &x);
                self.vars.insert(r0, var);
            }
            NodeKind::Objective { function, pred, target, options } => {
                let p = self.tensor(*pred)?;
                let mut args = vec![("fn", py::string(function)), ("options", objective_options(options))];
                if let Some(w) = &self.m.class_weights {
                    let list: Vec<String> = w.iter().map(|v| py::float(*v)).collect();
                    args.push(("class_weights", format!("[{}]", list.join(", "))));
                }
                let input = match target {
                    Operand::Tensor(t) => format!("[{p}, {}]", self.tensor(*t)?),
                    constant => {
                        args.push(("target", constant_text(constant)));
                        format!("[{p}]")
                    }
                };
                self.e.classes.insert("NncObjective");
                let var = self.e.op(&format!("{function}_{id}"), "objective", &args, &input);
                self.vars.insert(r0, var);
            }
            NodeKind::L2 => {
                return Err(fail(
                    "`l2`".into(),
                    "the sum of the kernels' squares is a regularizer in Keras, not a graph node; \
                    export the block without it"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// An operand with a fed model input replaced by what feeds it.
    fn resolve(&self, o: &Operand) -> Operand {
        match o {
            Operand::Tensor(t) => Operand::Tensor(*self.m.subst.get(&t.node).unwrap_or(t)),
            other => other.clone(),
        }
    }
}

/// A loss's or metric's options as a Python dict (`{"from_logits": False}`).
fn objective_options(options: &[(String, nnc_compiler::types::Value)]) -> String {
    use nnc_compiler::types::Value;
    let items: Vec<String> = options
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
                Value::Float(f) => py::float(*f),
                Value::Int(d) => d.as_known()?.to_string(),
                Value::Mode(m) | Value::Str(m) => py::string(m),
                _ => return None,
            };
            Some(format!("{}: {text}", py::string(k)))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn constant_text(o: &Operand) -> String {
    match o {
        Operand::Scalar(v) => py::float(*v),
        Operand::Vector(v) => format!("[{}]", v.iter().map(|x| py::float(*x)).collect::<Vec<_>>().join(", ")),
        Operand::Tensor(_) => "None".into(),
    }
}

/// The lines building model `m` and its `keras.Model(…)` expression; `known` carries the inputs and data
/// arrays an earlier graph of the same function made (a GAN's steps share them).
fn build_body(
    m: &ModelSource,
    e: &mut Emitter,
    known: &mut HashMap<TRef, (String, String)>,
) -> Result<(Vec<String>, String), Unexportable> {
    let vars = known.iter().map(|(r, (_, v))| (*r, v.clone())).collect();
    let mut w = Walk { m, e, vars, inputs: Vec::new() };
    let mut outputs = Vec::new();
    for (_, r) in &m.outputs {
        outputs.push(w.tensor(*r)?);
    }
    // The inputs this graph reads: made here, or by an earlier graph when its variable appears in a line.
    let mut read: Vec<(String, String)> = w.inputs.clone();
    for (name, var) in known.values() {
        let token = format!("({var}");
        let used = w.e.lines.iter().any(|l| l.contains(&token) || l.contains(&format!(" {var},")))
            || outputs.iter().any(|o| o == var);
        if used && !read.iter().any(|(n, _)| n == name) {
            read.push((name.clone(), var.clone()));
        }
    }
    let mut ordered = Vec::new();
    for (name, _) in &m.inputs {
        if let Some((_, var)) = read.iter().find(|(n, _)| n == name) {
            ordered.push(format!("{}: {var}", py::string(name)));
        }
    }
    for (name, var) in &read {
        if !m.inputs.iter().any(|(n, _)| n == name) {
            ordered.push(format!("{}: {var}", py::string(name)));
        }
    }
    let outputs = if m.named_outputs {
        let items: Vec<String> =
            m.outputs.iter().zip(&outputs).map(|((n, _), v)| format!("{}: {v}", py::string(n))).collect();
        format!("{{{}}}", items.join(", "))
    } else if outputs.len() == 1 {
        outputs[0].clone()
    } else {
        format!("[{}]", outputs.join(", "))
    };
    for (r, v) in &w.vars {
        if let Some((name, var)) = w.inputs.iter().find(|(_, var)| var == v) {
            known.insert(*r, (name.clone(), var.clone()));
        }
    }
    let lines = std::mem::take(&mut e.lines);
    let model =
        format!("keras.Model(inputs={{{}}}, outputs={outputs}, name={})", ordered.join(", "), py::string(&m.name));
    Ok((lines, model))
}

/// `a + b`, `x / 16`, …: Keras's merge layers for two tensors of one shape, else a keras.ops layer that
/// broadcasts as nnc does (a number, a list over the last axis, or NumPy broadcasting of two tensors).
fn arithmetic(
    e: &mut Emitter,
    id: usize,
    op: BinOp,
    lhs: &Operand,
    rhs: &Operand,
    g: &Graph,
    vars: &HashMap<TRef, String>,
) -> Result<String, Refusal> {
    let fname = match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
    };
    let var = |r: &TRef| vars.get(r).cloned().ok_or_else(|| Refusal { option: None, why: "unknown operand".into() });
    let constant = |o: &Operand| match o {
        Operand::Scalar(v) => py::float(*v),
        Operand::Vector(v) => format!("[{}]", v.iter().map(|x| py::float(*x)).collect::<Vec<_>>().join(", ")),
        Operand::Tensor(_) => String::new(),
    };
    let name = format!("{fname}_{id}");
    match (lhs, rhs) {
        (Operand::Tensor(a), Operand::Tensor(b)) => {
            let (ta, tb) = (g.ty(*a), g.ty(*b));
            // Keras's merge layers need a batch axis (a loss is a scalar) and float operands.
            let same =
                ta.dims == tb.dims && !ta.dims.is_empty() && ta.elem == ElemType::Float && tb.elem == ElemType::Float;
            let merge = match op {
                BinOp::Add => Some("Add"),
                BinOp::Sub => Some("Subtract"),
                BinOp::Mul => Some("Multiply"),
                BinOp::Div => None,
            };
            let args = format!("[{}, {}]", var(a)?, var(b)?);
            match merge.filter(|_| same) {
                Some(class) => {
                    let obj = e.object(&name, &format!("layers.{class}()"), &[]);
                    let out = e.fresh("h");
                    e.lines.push(format!("{out} = {obj}({args})"));
                    Ok(out)
                }
                None => Ok(e.op(&name, "binary", &[("fn", py::string(fname))], &args)),
            }
        }
        (Operand::Tensor(a), c) => {
            let args = [("fn", py::string(fname)), ("value", constant(c)), ("left", "False".into())];
            Ok(e.op(&name, "scalar", &args, &var(a)?))
        }
        (c, Operand::Tensor(b)) => {
            let args = [("fn", py::string(fname)), ("value", constant(c)), ("left", "True".into())];
            Ok(e.op(&name, "scalar", &args, &var(b)?))
        }
        _ => Err(Refusal { option: None, why: "arithmetic of two constants has no tensor to compute on".into() }),
    }
}

#[cfg(test)]
mod tests;
