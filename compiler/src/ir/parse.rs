//! Parses the canonical IR text (`Display for Func`, what `nnc ir` prints)
//! back into a [`Func`], so IR can be written by hand and run (IR filetests,
//! docs/src/ir-filetests.md) and so the printer is known to lose nothing that
//! matters: `parse(print(f))` prints as `f` does.
//!
//! The text holds the nodes, parameter declarations, outputs and recurrent
//! states. It does not hold parameter initialisers (parsed as `zeros`), the
//! batch-norm moving updates or metric ratios (empty after parsing), nor the
//! values of constants of more than [`SHOWN_CONSTANT`] elements (printed as
//! `constant [n values]`: [`parse`] refuses them, [`parse_lossy`] fills them
//! with NaN so that running one cannot pass by accident).
//!
//! Beyond the grammar, every node is verified (argument ids before the node,
//! arity, element types and the node's shape against its operands, sizes
//! within [`MAX_ELEMENTS`]) so a parsed function is one the executors can run
//! without tripping an internal assertion. Errors carry a 1-based line and
//! column and say what was expected; malformed text never panics.

use std::fmt;

use super::{
    Binary, DType, Func, Id, MAX_ELEMENTS, Node, Op, ParamDecl, Reduce, Unary, Window, broadcast_shapes, checked_numel,
};

/// Constants with at most this many elements print their values.
pub const SHOWN_CONSTANT: usize = 16;

/// Why an IR text (a filetest) did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line and column (in characters).
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses IR text; a constant printed without its values is an error.
pub fn parse(text: &str) -> Result<Func, ParseError> {
    parse_with(text, false)
}

/// Parses IR text; a constant printed without its values (`constant [n
/// values]`) becomes n NaNs. For round trips of large models' text.
pub fn parse_lossy(text: &str) -> Result<Func, ParseError> {
    parse_with(text, true)
}

/// Where a node, output or state was written, for verification errors.
struct Pos {
    line: usize,
    col: usize,
}

fn parse_with(text: &str, lossy: bool) -> Result<Func, ParseError> {
    let mut f = Func::default();
    let mut node_pos = Vec::new();
    let mut ends = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let mut c = Cur { s: raw, pos: 0, line: ln + 1 };
        c.ws();
        if c.rest().is_empty() || c.rest().starts_with(';') {
            continue;
        }
        let start = Pos { line: c.line, col: c.col() };
        if c.rest().starts_with('%') {
            node_line(&mut c, &mut f, lossy)?;
            node_pos.push(start);
        } else {
            match c.word() {
                "param" => param_line(&mut c, &mut f)?,
                kw @ ("output" | "state") => {
                    c.ws();
                    let name = c.string()?;
                    c.ws();
                    c.expect("=")?;
                    c.ws();
                    let id = c.id()?;
                    c.end()?;
                    let list = if kw == "output" { &mut f.outputs } else { &mut f.states };
                    list.push((name, id));
                    ends.push((id, start));
                }
                _ => return Err(c.err_at(start.col, "expected `param`, `%N: …`, `output` or `state`")),
            }
        }
    }
    for (i, p) in node_pos.iter().enumerate() {
        verify(&f, i).map_err(|m| ParseError { line: p.line, col: p.col, message: format!("%{i}: {m}") })?;
    }
    for (id, p) in &ends {
        if *id as usize >= f.nodes.len() {
            let message = format!("%{id} is not defined (the function has {} nodes)", f.nodes.len());
            return Err(ParseError { line: p.line, col: p.col, message });
        }
    }
    Ok(f)
}

/// `param I "name" [shape]` with an optional ` frozen`.
fn param_line(c: &mut Cur, f: &mut Func) -> Result<(), ParseError> {
    c.ws();
    let col = c.col();
    let i = c.usize()?;
    if i != f.params.len() {
        return Err(
            c.err_at(col, format!("expected parameter number {} (parameters are numbered in order)", f.params.len()))
        );
    }
    c.ws();
    let name = c.string()?;
    c.ws();
    let shape = c.usize_list()?;
    let trainable = !c.flag("frozen");
    c.end()?;
    let col_end = c.col();
    if checked_numel(&shape).is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(c.err_at(col_end, format!("parameter shape {shape:?} has too many elements")));
    }
    f.params.push(ParamDecl { name, shape, trainable, init: "zeros".into() });
    Ok(())
}

/// `%I: dtype[shape] = op operands %a, %b  ; layer`.
fn node_line(c: &mut Cur, f: &mut Func, lossy: bool) -> Result<(), ParseError> {
    let col = c.col();
    let i = c.id()?;
    if i as usize != f.nodes.len() {
        return Err(c.err_at(col, format!("expected %{} (nodes are numbered in order)", f.nodes.len())));
    }
    c.expect(":")?;
    c.ws();
    let col = c.col();
    let dtype = match c.word() {
        "f32" => DType::F32,
        "i64" => DType::I64,
        _ => return Err(c.err_at(col, "expected an element type, `f32` or `i64`")),
    };
    let shape = c.usize_list()?;
    c.ws();
    c.expect("=")?;
    c.ws();
    let op = op(c, lossy)?;
    c.ws();
    let mut args = Vec::new();
    if c.rest().starts_with('%') {
        loop {
            let col = c.col();
            let a = c.id()?;
            if a as usize >= f.nodes.len() {
                return Err(c.err_at(col, format!("%{a} is used before it is defined (operands come first)")));
            }
            args.push(a);
            c.ws();
            if !c.eat(",") {
                break;
            }
            c.ws();
        }
    }
    let layer = if c.eat(";") {
        // The rest of the line, after the one space the printer puts there.
        let name = c.rest().strip_prefix(' ').unwrap_or(c.rest()).to_string();
        c.pos = c.s.len();
        let k = match f.layers.iter().position(|l| *l == name) {
            Some(k) => k,
            None => {
                f.layers.push(name);
                f.layers.len() - 1
            }
        };
        Some(k as u32)
    } else {
        c.end()?;
        None
    };
    f.nodes.push(Node { op, args, shape, dtype, layer });
    Ok(())
}

fn unary(name: &str) -> Option<Unary> {
    use Unary::*;
    Some(match name {
        "neg" => Neg,
        "exp" => Exp,
        "log" => Log,
        "sqrt" => Sqrt,
        "abs" => Abs,
        "relu" => Relu,
        "sigmoid" => Sigmoid,
        "tanh" => Tanh,
        "gelu" => Gelu,
        "gelugrad" => GeluGrad,
        "softplus" => Softplus,
        "square" => Square,
        "recip" => Recip,
        "positive" => Positive,
        "sign" => Sign,
        _ => return None,
    })
}

fn binary(name: &str) -> Option<Binary> {
    use Binary::*;
    Some(match name {
        "add" => Add,
        "sub" => Sub,
        "mul" => Mul,
        "div" => Div,
        "max" => Max,
        "min" => Min,
        "greater" => Greater,
        "equal" => Equal,
        _ => return None,
    })
}

/// The op and its attributes (everything before the operand list).
fn op(c: &mut Cur, lossy: bool) -> Result<Op, ParseError> {
    let col = c.col();
    let name = c.word();
    let reduce = match name {
        "sum" => Some(Reduce::Sum),
        "mean" => Some(Reduce::Mean),
        // `max [axes] %x` is a reduction, `max %a, %b` elementwise.
        "max" if c.rest().trim_start().starts_with('[') => Some(Reduce::Max),
        _ => None,
    };
    if let Some(op) = reduce {
        c.ws();
        let axes = c.usize_list()?;
        let keep = c.flag("keep");
        return Ok(Op::Reduce { op, axes, keep });
    }
    if let Some(u) = unary(name) {
        return Ok(Op::Unary(u));
    }
    if let Some(b) = binary(name) {
        return Ok(Op::Binary(b));
    }
    Ok(match name {
        "input" => {
            c.ws();
            Op::Input(c.string()?)
        }
        "param" => {
            c.ws();
            Op::Param(c.usize()?)
        }
        "fill" => Op::Fill(c.ws_then(Cur::number)?),
        "constant" => constant(c, lossy)?,
        "pow" => Op::PowConst(c.ws_then(Cur::number)?),
        "elu" => Op::Elu(c.ws_then(Cur::number)?),
        "leaky_relu" => Op::LeakyRelu(c.ws_then(Cur::number)?),
        "matmul" => {
            let ta = c.flag("ta");
            let tb = c.flag("tb");
            Op::MatMul { ta, tb }
        }
        "sum_to" => Op::SumTo,
        "broadcast_to" => Op::BroadcastTo,
        "reshape" => Op::Reshape,
        "gather" => Op::Gather,
        "scatter_add" => Op::ScatterAdd,
        "transpose" => Op::Transpose(c.ws_then(Cur::usize_list)?),
        "slice" => {
            let axis = c.ws_then(|c| c.keyed("axis"))?;
            let start = c.ws_then(Cur::usize)?;
            c.expect("..")?;
            Op::Slice { axis, start, end: c.usize()? }
        }
        "pad" => {
            let axis = c.ws_then(|c| c.keyed("axis"))?;
            let before = c.ws_then(Cur::usize)?;
            c.expect("+")?;
            Op::Pad { axis, before, after: c.usize()? }
        }
        "concat" => Op::Concat(c.ws_then(|c| c.keyed("axis"))?),
        "one_hot" => Op::OneHot(c.ws_then(Cur::usize)?),
        "softmax" => Op::Softmax(c.ws_then(|c| c.keyed("axis"))?),
        "log_softmax" => Op::LogSoftmax(c.ws_then(|c| c.keyed("axis"))?),
        "conv2d" => {
            let groups = groups(c)?;
            Op::Conv2d { groups, window: window(c)? }
        }
        "conv2d_input_grad" => {
            let groups = groups(c)?;
            Op::Conv2dInputGrad { groups, window: window(c)? }
        }
        "conv2d_kernel_grad" => {
            let groups = groups(c)?;
            Op::Conv2dKernelGrad { groups, window: window(c)? }
        }
        "max_pool" => Op::MaxPool(window(c)?),
        "max_pool_grad" => Op::MaxPoolGrad(window(c)?),
        "avg_pool" => {
            let count_pad = c.flag("count_pad");
            Op::AvgPool { count_pad, window: window(c)? }
        }
        "avg_pool_grad" => {
            let count_pad = c.flag("count_pad");
            Op::AvgPoolGrad { count_pad, window: window(c)? }
        }
        "upsample" => Op::Upsample(pair(c)?),
        "upsample_grad" => Op::UpsampleGrad(pair(c)?),
        "random" => {
            c.ws();
            let col = c.col();
            match c.word() {
                "normal" => Op::Random { normal: true },
                "uniform" => Op::Random { normal: false },
                _ => return Err(c.err_at(col, "expected `normal` or `uniform`")),
            }
        }
        "" => return Err(c.err_at(col, "expected an op name")),
        other => return Err(c.err_at(col, format!("unknown op `{other}`"))),
    })
}

/// `constant [v, …]` or, for large constants, `constant [n values]`.
fn constant(c: &mut Cur, lossy: bool) -> Result<Op, ParseError> {
    c.ws();
    let col = c.col();
    c.expect("[")?;
    c.ws();
    let save = c.pos;
    if c.rest().starts_with(|ch: char| ch.is_ascii_digit()) {
        let n = c.usize()?;
        c.ws();
        if c.word() == "values" {
            c.expect("]")?;
            if !lossy {
                return Err(c.err_at(col, format!("this constant's {n} values are not in the text")));
            }
            if n > MAX_CONSTANT {
                return Err(c.err_at(col, format!("an elided constant of {n} values is too large")));
            }
            return Ok(Op::Constant(vec![f32::NAN; n]));
        }
        c.pos = save;
    }
    let mut v = Vec::new();
    if !c.eat("]") {
        loop {
            c.ws();
            v.push(c.number()? as f32);
            c.ws();
            if c.eat("]") {
                break;
            }
            c.expect(",")?;
        }
    }
    Ok(Op::Constant(v))
}

/// An elided constant longer than this is refused rather than allocated:
/// the text is small, its NaN stand-in must not be unbounded.
const MAX_CONSTANT: usize = 1 << 24;

/// An optional `groups=G` (a convolution's group count; 1 when absent).
fn groups(c: &mut Cur) -> Result<usize, ParseError> {
    let save = c.pos;
    c.ws();
    if !c.rest().starts_with("groups") {
        c.pos = save;
        return Ok(1);
    }
    let g = c.keyed("groups")?;
    if g == 0 {
        return Err(c.err("a convolution has at least one group".to_string()));
    }
    Ok(g)
}

/// `k=[a, b] s=[a, b] d=[a, b] p=[t, l, b, r]`.
fn window(c: &mut Cur) -> Result<Window, ParseError> {
    let get = |c: &mut Cur, key: &str| -> Result<Vec<usize>, ParseError> {
        c.ws();
        c.expect(key)?;
        c.expect("=")?;
        c.usize_list()
    };
    let fixed = |c: &Cur, v: Vec<usize>, n: usize, what: &str| -> Result<Vec<usize>, ParseError> {
        if v.len() == n { Ok(v) } else { Err(c.err(format!("expected {n} numbers in `{what}`, found {}", v.len()))) }
    };
    let k = get(c, "k")?;
    let k = fixed(c, k, 2, "k")?;
    let s = get(c, "s")?;
    let s = fixed(c, s, 2, "s")?;
    let d = get(c, "d")?;
    let d = fixed(c, d, 2, "d")?;
    let p = get(c, "p")?;
    let p = fixed(c, p, 4, "p")?;
    Ok(Window { kernel: [k[0], k[1]], stride: [s[0], s[1]], dilation: [d[0], d[1]], pad: [p[0], p[1], p[2], p[3]] })
}

fn pair(c: &mut Cur) -> Result<[usize; 2], ParseError> {
    c.ws();
    let v = c.usize_list()?;
    match v[..] {
        [a, b] => Ok([a, b]),
        _ => Err(c.err(format!("expected two factors, found {}", v.len()))),
    }
}

/// A cursor over one line.
struct Cur<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Cur<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn col(&self) -> usize {
        self.s[..self.pos].chars().count() + 1
    }
    fn err(&self, message: impl Into<String>) -> ParseError {
        self.err_at(self.col(), message)
    }
    fn err_at(&self, col: usize, message: impl Into<String>) -> ParseError {
        ParseError { line: self.line, col, message: message.into() }
    }
    /// What is here, for "found …" in messages.
    fn found(&self) -> String {
        match self.rest().chars().next() {
            None => "the end of the line".into(),
            Some(_) => {
                let tok: String = self.rest().chars().take_while(|c| !c.is_whitespace()).take(20).collect();
                format!("`{tok}`")
            }
        }
    }
    fn ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start_matches([' ', '\t']).len();
        self.pos += n;
    }
    fn ws_then<T>(&mut self, p: impl FnOnce(&mut Self) -> Result<T, ParseError>) -> Result<T, ParseError> {
        self.ws();
        p(self)
    }
    fn eat(&mut self, tok: &str) -> bool {
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, tok: &str) -> Result<(), ParseError> {
        if self.eat(tok) { Ok(()) } else { Err(self.err(format!("expected `{tok}`, found {}", self.found()))) }
    }
    /// An optional keyword after whitespace (`keep`, `ta`, …).
    fn flag(&mut self, word: &str) -> bool {
        let save = self.pos;
        self.ws();
        if self.word() == word {
            return true;
        }
        self.pos = save;
        false
    }
    /// Letters, digits and `_`; empty if none.
    fn word(&mut self) -> &'a str {
        let r = self.rest();
        let n = r.len() - r.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
        self.pos += n;
        &r[..n]
    }
    fn end(&mut self) -> Result<(), ParseError> {
        self.ws();
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("expected the end of the line, found {}", self.found())))
        }
    }
    fn usize(&mut self) -> Result<usize, ParseError> {
        let r = self.rest();
        let n = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if n == 0 {
            return Err(self.err(format!("expected a number, found {}", self.found())));
        }
        let v = r[..n].parse().map_err(|_| self.err(format!("`{}` is too large", &r[..n])))?;
        self.pos += n;
        Ok(v)
    }
    /// `key=N`.
    fn keyed(&mut self, key: &str) -> Result<usize, ParseError> {
        self.expect(key)?;
        self.expect("=")?;
        self.usize()
    }
    /// `%N`.
    fn id(&mut self) -> Result<Id, ParseError> {
        self.expect("%")?;
        let col = self.col();
        let v = self.usize()?;
        Id::try_from(v).map_err(|_| self.err_at(col, format!("node number {v} is too large")))
    }
    /// A float as Rust prints it: `1`, `-0.5`, `inf`, `NaN`, `1e-7`.
    fn number(&mut self) -> Result<f64, ParseError> {
        let r = self.rest();
        let n = r.len() - r.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "+-._".contains(c)).len();
        let tok = &r[..n];
        match tok.parse::<f64>() {
            Ok(v) if n > 0 => {
                self.pos += n;
                Ok(v)
            }
            _ => Err(self.err(format!("expected a number, found {}", self.found()))),
        }
    }
    /// `[a, b, …]` of non-negative integers.
    fn usize_list(&mut self) -> Result<Vec<usize>, ParseError> {
        self.expect("[")?;
        let mut v = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(v);
        }
        loop {
            self.ws();
            v.push(self.usize()?);
            self.ws();
            if self.eat("]") {
                return Ok(v);
            }
            if !self.eat(",") {
                return Err(self.err(format!("expected `,` or `]`, found {}", self.found())));
            }
        }
    }
    /// A string as Rust's `{:?}` prints it.
    fn string(&mut self) -> Result<String, ParseError> {
        self.expect("\"")?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((k, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += k + 1;
                    return Ok(out);
                }
                '\\' => {
                    let esc_col = self.s[..self.pos + k].chars().count() + 1;
                    let bad = |what: &str| self.err_at(esc_col, format!("invalid escape in a string: {what}"));
                    out.push(match chars.next().map(|(_, e)| e) {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('0') => '\0',
                        Some(e @ ('\\' | '"' | '\'')) => e,
                        Some('u') => {
                            let hex: String = chars.by_ref().map(|(_, h)| h).take_while(|&h| h != '}').collect();
                            let hex = hex.strip_prefix('{').ok_or_else(|| bad("expected `\\u{…}`"))?;
                            u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| bad("not a character code"))?
                        }
                        Some(e) => return Err(bad(&format!("`\\{e}`"))),
                        None => return Err(bad("at the end of the line")),
                    });
                }
                _ => out.push(ch),
            }
        }
        Err(self.err("this string is not closed (expected `\"` before the end of the line)"))
    }
}

/// Checks node `i` against its operands: what the builders in `mod.rs`
/// guarantee for lowered functions, a parsed one must show.
// long: one match arm per IR primitive, each the shape its builder in `mod.rs` guarantees (a table).
fn verify(f: &Func, i: usize) -> Result<(), String> {
    let n = &f.nodes[i];
    if checked_numel(&n.shape).is_none_or(|e| e > MAX_ELEMENTS) {
        return Err(format!("shape {:?} has too many elements", n.shape));
    }
    let arg = |k: usize| &f.nodes[n.args[k] as usize];
    let arity = |want: usize| -> Result<(), String> {
        if n.args.len() == want {
            Ok(())
        } else {
            Err(format!("`{}` takes {want} operand{}, found {}", n.op, if want == 1 { "" } else { "s" }, n.args.len()))
        }
    };
    let shape_is = |want: &[usize]| -> Result<(), String> {
        if n.shape == want {
            Ok(())
        } else {
            Err(format!("`{}` makes shape {want:?}, the node says {:?}", n.op, n.shape))
        }
    };
    // Ops whose executors read their operands as floats.
    let floats = |ks: &[usize]| -> Result<(), String> {
        match ks.iter().find(|&&k| arg(k).dtype != DType::F32) {
            Some(k) => Err(format!("operand %{} must be f32", n.args[*k])),
            None => Ok(()),
        }
    };
    let rank = |k: usize, r: usize| -> Result<(), String> {
        let s = &arg(k).shape;
        if s.len() == r { Ok(()) } else { Err(format!("operand %{} must have rank {r}, found {s:?}", n.args[k])) }
    };
    // The element type is the operand's for ops that move integers, else f32.
    let want_dtype = match &n.op {
        Op::Input(_) => n.dtype,
        Op::Reshape | Op::Slice { .. } if !n.args.is_empty() => arg(0).dtype,
        _ => DType::F32,
    };
    if n.dtype != want_dtype {
        return Err(format!("`{}` makes {want_dtype:?} values, the node says {:?}", n.op, n.dtype).to_lowercase());
    }
    match &n.op {
        Op::Input(_) | Op::Fill(_) | Op::Random { .. } => arity(0),
        Op::Param(p) => {
            arity(0)?;
            let decl = f.params.get(*p).ok_or_else(|| format!("no parameter {p} is declared"))?;
            shape_is(&decl.shape)
        }
        Op::Constant(v) => {
            arity(0)?;
            if v.len() == super::numel(&n.shape) {
                Ok(())
            } else {
                Err(format!(
                    "the constant has {} values, its shape {:?} holds {}",
                    v.len(),
                    n.shape,
                    super::numel(&n.shape)
                ))
            }
        }
        Op::Unary(_) | Op::PowConst(_) | Op::Elu(_) | Op::LeakyRelu(_) => {
            arity(1)?;
            shape_is(&arg(0).shape.clone())
        }
        Op::Binary(_) => {
            arity(2)?;
            let s = broadcast_shapes(&arg(0).shape, &arg(1).shape)
                .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", arg(0).shape, arg(1).shape))?;
            shape_is(&s)
        }
        Op::MatMul { ta, tb } => {
            arity(2)?;
            floats(&[0, 1])?;
            let (sa, sb) = (&arg(0).shape, &arg(1).shape);
            if sa.len() < 2 || sb.len() < 2 {
                return Err(format!("matmul needs operands of rank ≥ 2, found {sa:?} and {sb:?}"));
            }
            let (ra, rb) = (sa.len(), sb.len());
            let (m, k) = if *ta { (sa[ra - 1], sa[ra - 2]) } else { (sa[ra - 2], sa[ra - 1]) };
            let (k2, nn) = if *tb { (sb[rb - 1], sb[rb - 2]) } else { (sb[rb - 2], sb[rb - 1]) };
            if k != k2 {
                return Err(format!("matmul inner dims differ: {sa:?} × {sb:?}"));
            }
            // A second operand with batch axes has the first one's.
            if rb > 2 && sb[..rb - 2] != sa[..ra - 2] {
                return Err(format!("matmul batch axes differ: {sa:?} × {sb:?}"));
            }
            let mut s = sa[..ra - 2].to_vec();
            s.extend([m, nn]);
            shape_is(&s)
        }
        Op::Reduce { axes, keep, .. } => {
            arity(1)?;
            floats(&[0])?;
            let x = &arg(0).shape;
            if axes.iter().any(|&a| a >= x.len()) || (1..axes.len()).any(|j| axes[j] <= axes[j - 1]) {
                return Err(format!("axes {axes:?} must be increasing and below the rank of {x:?}"));
            }
            let s: Vec<usize> = x
                .iter()
                .enumerate()
                .filter_map(|(a, &d)| if axes.contains(&a) { keep.then_some(1) } else { Some(d) })
                .collect();
            shape_is(&s)
        }
        Op::SumTo | Op::BroadcastTo => {
            arity(1)?;
            floats(&[0])?;
            let (big, small) =
                if matches!(n.op, Op::SumTo) { (&arg(0).shape, &n.shape) } else { (&n.shape, &arg(0).shape) };
            if broadcast_shapes(big, small).as_ref() == Some(big) && big.len() >= small.len() {
                Ok(())
            } else {
                Err(format!("{small:?} does not broadcast to {big:?}"))
            }
        }
        Op::Reshape => {
            arity(1)?;
            if super::numel(&arg(0).shape) == super::numel(&n.shape) {
                Ok(())
            } else {
                Err(format!("cannot reshape {:?} to {:?} (element counts differ)", arg(0).shape, n.shape))
            }
        }
        Op::Transpose(perm) => {
            arity(1)?;
            floats(&[0])?;
            let x = &arg(0).shape;
            let mut seen = vec![false; x.len()];
            if perm.len() != x.len() || perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true)) {
                return Err(format!("{perm:?} is not a permutation of the axes of {x:?}"));
            }
            shape_is(&perm.iter().map(|&p| x[p]).collect::<Vec<_>>())
        }
        Op::Slice { axis, start, end } => {
            arity(1)?;
            let mut s = arg(0).shape.clone();
            match s.get_mut(*axis) {
                Some(d) if start <= end && end <= d => *d = end - start,
                _ => return Err(format!("slice {start}..{end} of axis {axis} is outside {:?}", arg(0).shape)),
            }
            shape_is(&s)
        }
        Op::Pad { axis, before, after } => {
            arity(1)?;
            floats(&[0])?;
            let mut s = arg(0).shape.clone();
            match s.get_mut(*axis).map(|d| d.checked_add(*before).and_then(|d| d.checked_add(*after))) {
                Some(Some(total)) => s[*axis] = total,
                _ => return Err(format!("cannot pad axis {axis} of {:?}", arg(0).shape)),
            }
            shape_is(&s)
        }
        Op::Concat(axis) => {
            if n.args.is_empty() {
                return Err("`concat` needs at least one operand".into());
            }
            let first = &arg(0).shape;
            if *axis >= first.len() {
                return Err(format!("axis {axis} is outside {first:?}"));
            }
            let mut total = 0usize;
            for k in 0..n.args.len() {
                let s = &arg(k).shape;
                let same = s.len() == first.len() && (0..s.len()).all(|a| a == *axis || s[a] == first[a]);
                if !same {
                    return Err(format!("cannot concatenate {first:?} and {s:?} along axis {axis}"));
                }
                total = total.checked_add(s[*axis]).ok_or("the concatenation is too large")?;
            }
            let mut s = first.clone();
            s[*axis] = total;
            shape_is(&s)
        }
        Op::Gather => {
            arity(2)?;
            floats(&[0])?;
            rank(0, 2)?;
            let mut s = arg(1).shape.clone();
            s.push(arg(0).shape[1]);
            shape_is(&s)
        }
        Op::ScatterAdd => {
            arity(2)?;
            floats(&[0])?;
            if n.shape.len() != 2 || n.shape[0] == 0 {
                return Err(format!("scatter_add makes a table [V, D] with V ≥ 1, the node says {:?}", n.shape));
            }
            let mut s = arg(1).shape.clone();
            s.push(n.shape[1]);
            if arg(0).shape == s { Ok(()) } else { Err(format!("operand %{} must have shape {s:?}", n.args[0])) }
        }
        Op::OneHot(d) => {
            arity(1)?;
            let mut s = arg(0).shape.clone();
            s.push(*d);
            shape_is(&s)
        }
        Op::Softmax(a) | Op::LogSoftmax(a) => {
            arity(1)?;
            floats(&[0])?;
            if *a >= arg(0).shape.len() {
                return Err(format!("axis {a} is outside {:?}", arg(0).shape));
            }
            shape_is(&arg(0).shape.clone())
        }
        Op::Conv2d { window: w, groups } => {
            arity(2)?;
            floats(&[0, 1])?;
            rank(0, 4)?;
            rank(1, 4)?;
            let (x, k) = (&arg(0).shape, &arg(1).shape);
            let cg = group_channels(x[3], k[3], *groups)?;
            if k[..2] != w.kernel || k[2] != cg {
                return Err(format!("kernel {k:?} does not fit input {x:?} with window {:?}", w.kernel));
            }
            let [oh, ow] = out(w, x[1], x[2])?;
            shape_is(&[x[0], oh, ow, k[3]])
        }
        Op::Conv2dInputGrad { window: w, groups } => {
            arity(2)?;
            floats(&[0, 1])?;
            rank(0, 4)?;
            rank(1, 4)?;
            let (dy, k, x) = (&arg(0).shape, &arg(1).shape, &n.shape);
            if x.len() != 4 {
                return Err(format!("the input gradient must have rank 4, found {x:?}"));
            }
            let cg = group_channels(x[3], k[3], *groups)?;
            if k[..2] != w.kernel || k[2] != cg || k[3] != dy[3] || dy[0] != x[0] {
                return Err(format!("dy {dy:?} and kernel {k:?} do not fit input {x:?}"));
            }
            let [oh, ow] = out(w, x[1], x[2])?;
            if dy[1..3] == [oh, ow] { Ok(()) } else { Err(format!("dy {dy:?} does not fit input {x:?}")) }
        }
        Op::Conv2dKernelGrad { window: w, groups } => {
            arity(2)?;
            floats(&[0, 1])?;
            rank(0, 4)?;
            rank(1, 4)?;
            let (x, dy) = (&arg(0).shape, &arg(1).shape);
            let [oh, ow] = out(w, x[1], x[2])?;
            if dy[..3] != [x[0], oh, ow] {
                return Err(format!("dy {dy:?} does not fit input {x:?}"));
            }
            let cg = group_channels(x[3], dy[3], *groups)?;
            shape_is(&[w.kernel[0], w.kernel[1], cg, dy[3]])
        }
        Op::MaxPool(w) | Op::AvgPool { window: w, .. } => {
            arity(1)?;
            floats(&[0])?;
            rank(0, 4)?;
            let x = &arg(0).shape;
            let [oh, ow] = out(w, x[1], x[2])?;
            shape_is(&[x[0], oh, ow, x[3]])
        }
        Op::MaxPoolGrad(w) => {
            arity(2)?;
            floats(&[0, 1])?;
            rank(0, 4)?;
            let x = &arg(0).shape;
            let [oh, ow] = out(w, x[1], x[2])?;
            if arg(1).shape != [x[0], oh, ow, x[3]] {
                return Err(format!("dy {:?} does not fit input {x:?}", arg(1).shape));
            }
            shape_is(&x.clone())
        }
        Op::AvgPoolGrad { window: w, .. } => {
            arity(1)?;
            floats(&[0])?;
            rank(0, 4)?;
            let (dy, x) = (&arg(0).shape, &n.shape);
            if x.len() != 4 {
                return Err(format!("the input gradient must have rank 4, found {x:?}"));
            }
            let [oh, ow] = out(w, x[1], x[2])?;
            if dy[..] == [x[0], oh, ow, x[3]] { Ok(()) } else { Err(format!("dy {dy:?} does not fit input {x:?}")) }
        }
        Op::Upsample(s) | Op::UpsampleGrad(s) => {
            arity(1)?;
            floats(&[0])?;
            rank(0, 4)?;
            let up = matches!(n.op, Op::Upsample(_));
            let (small, big) = if up { (&arg(0).shape, &n.shape) } else { (&n.shape, &arg(0).shape) };
            let fits = small.len() == 4 && big.len() == 4 && s[0] >= 1 && s[1] >= 1 && {
                let h = small[1].checked_mul(s[0]);
                let w = small[2].checked_mul(s[1]);
                big[0] == small[0] && big[3] == small[3] && Some(big[1]) == h && Some(big[2]) == w
            };
            if fits { Ok(()) } else { Err(format!("{small:?} upsampled by {s:?} is not {big:?}")) }
        }
    }
}

/// Input channels per group of a convolution with `c` input and `f` output
/// channels in `groups` groups; both must divide evenly.
fn group_channels(c: usize, f: usize, groups: usize) -> Result<usize, String> {
    if groups == 0 || !c.is_multiple_of(groups) || !f.is_multiple_of(groups) {
        return Err(format!("{c} input and {f} output channels do not split into {groups} groups"));
    }
    Ok(c / groups)
}

/// Output size of a window, refusing zero kernels, strides and dilations
/// and overflowing sizes (`Window::out` assumes the checker's guarantees).
fn out(w: &Window, h: usize, wd: usize) -> Result<[usize; 2], String> {
    let bad = || format!("window {w:?} is not valid here");
    if w.kernel.contains(&0) || w.stride.contains(&0) || w.dilation.contains(&0) {
        return Err(bad());
    }
    let one = |n: usize, i: usize, lo: usize, hi: usize| -> Option<usize> {
        let span = w.dilation[i].checked_mul(w.kernel[i] - 1)?.checked_add(1)?;
        let padded = n.checked_add(lo)?.checked_add(hi)?;
        Some(padded.checked_sub(span)? / w.stride[i] + 1)
    };
    match (one(h, 0, w.pad[0], w.pad[2]), one(wd, 1, w.pad[1], w.pad[3])) {
        (Some(a), Some(b)) => Ok([a, b]),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOTS: [&str; 2] =
        [include_str!("../../../tests/ir/mlp_step.ir"), include_str!("../../../tests/ir/conv_forward.ir")];

    fn err(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    #[test]
    fn snapshots_round_trip() {
        for text in SNAPSHOTS {
            let f = parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.to_string(), text);
        }
    }

    #[test]
    fn every_op_round_trips() {
        let text = "\
param 0 \"w \\\"q\\\" \\u{1b}\" [2, 3] frozen
%0: f32[2, 3] = param 0  ; a ; b
%1: i64[2] = input \"ids\\n\"
%2: f32[2, 3] = fill -inf
%3: f32[3] = constant [1, -0.5, NaN]
%4: f32[2, 3] = max %0, %3
%5: f32[2] = max [1] %4
%6: f32[2, 1] = sum [1] keep %4
%7: f32[2, 3] = leaky_relu 0.01 %4  ; a ; b
%8: f32[3, 3] = matmul ta %0, %0
%9: f32[3, 2] = transpose [1, 0] %0
%10: f32[2, 1] = slice axis=1 1..2 %0
%11: f32[2, 5] = pad axis=1 1+1 %0
%12: f32[2, 6] = concat axis=1 %0, %0
%13: f32[2, 3] = one_hot 3 %1
%14: f32[2, 3] = gather %0, %1
%15: f32[1, 4, 4, 2] = random normal
%16: f32[3, 3, 2, 1] = fill 0.25
%17: f32[1, 2, 2, 1] = conv2d k=[3, 3] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %15, %16
%18: f32[1, 2, 2, 2] = avg_pool count_pad k=[2, 2] s=[2, 2] d=[1, 1] p=[0, 0, 0, 0] %15
%19: f32[1, 4, 4, 2] = upsample [2, 2] %18
%20: f32[2] = gelugrad %5
output \"y\" = %20
state \"h\" = %4
";
        let f = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), text);
        assert_eq!(f.params[0].name, "w \"q\" \u{1b}");
        assert_eq!(f.layers, ["a ; b"]);
        assert!(matches!(f.nodes[5].op, Op::Reduce { op: Reduce::Max, .. }));
        assert!(matches!(f.nodes[4].op, Op::Binary(Binary::Max)));
    }

    #[test]
    fn grouped_convolutions_round_trip_and_check_their_groups() {
        let text = "\
%0: f32[2, 5, 5, 4] = input \"x\"
%1: f32[3, 3, 2, 6] = input \"k\"
%2: f32[2, 3, 3, 6] = conv2d groups=2 k=[3, 3] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0, %1
%3: f32[2, 5, 5, 4] = conv2d_input_grad groups=2 k=[3, 3] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %2, %1
%4: f32[3, 3, 2, 6] = conv2d_kernel_grad groups=2 k=[3, 3] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0, %2
%5: f32[3, 3, 1, 4] = input \"kd\"
%6: f32[2, 3, 3, 4] = conv2d groups=4 k=[3, 3] s=[2, 2] d=[1, 1] p=[1, 1, 1, 1] %0, %5
";
        let f = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), text);
        assert_eq!(
            f.nodes[2].op,
            Op::Conv2d { window: Window { kernel: [3, 3], stride: [1, 1], dilation: [1, 1], pad: [0; 4] }, groups: 2 }
        );
        // The kernel's channel axis is C/groups; 4 channels do not split into 3 groups; no zero groups.
        let e = err("%0: f32[1, 3, 3, 4] = input \"x\"\n%1: f32[1, 1, 4, 4] = input \"k\"\n\
            %2: f32[1, 3, 3, 4] = conv2d groups=2 k=[1, 1] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0, %1\n");
        assert!(e.message.contains("does not fit"), "{e}");
        let e = err("%0: f32[1, 3, 3, 4] = input \"x\"\n%1: f32[1, 1, 1, 3] = input \"k\"\n\
            %2: f32[1, 3, 3, 3] = conv2d groups=3 k=[1, 1] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0, %1\n");
        assert!(e.message.contains("do not split into 3 groups"), "{e}");
        let e = err("%0: f32[1, 3, 3, 4] = input \"x\"\n%1: f32[1, 1, 4, 4] = input \"k\"\n\
            %2: f32[1, 3, 3, 4] = conv2d groups=0 k=[1, 1] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0, %1\n");
        assert!(e.message.contains("at least one group"), "{e}");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = err("%0: f32[2] = input \"x\"\n%1: f32[2] = frobnicate %0\n");
        assert_eq!((e.line, e.col), (2, 14));
        assert!(e.message.contains("unknown op `frobnicate`"), "{e}");
        let e = err("%0: f32[2] = exp %1\n");
        assert_eq!((e.line, e.col), (1, 18));
        assert!(e.message.contains("used before it is defined"), "{e}");
        let e = err("%0: f32[2, 3 = fill 1\n");
        assert!(e.message.contains("expected `,` or `]`"), "{e}");
        let e = err("%0: f32[2] = input \"x\"\n%1: f32[3] = exp %0\n");
        assert_eq!((e.line, e.col), (2, 1));
        assert!(e.message.contains("makes shape [2]"), "{e}");
        let e = err("%0: f32[2] = input \"x\"\noutput \"y\" = %4\n");
        assert!(e.message.contains("%4 is not defined"), "{e}");
        let e = err("%0: f32[2] = fill 1\n%2: f32[2] = fill 1\n");
        assert!(e.message.contains("expected %1"), "{e}");
        let e = err("%0: f32[2] = constant [2 values]\n");
        assert!(e.message.contains("not in the text"), "{e}");
        assert!(parse_lossy("%0: f32[2] = constant [2 values]\n").is_ok());
        let e = err("%0: f32[2, 3] = input \"x\"\n%1: f32[2, 2] = matmul %0, %0\n");
        assert!(e.message.contains("inner dims"), "{e}");
        let e = err("%0: i64[2] = input \"x\"\n%1: f32[2, 2] = matmul %0, %0\n");
        assert!(e.message.contains("must be f32"), "{e}");
        let e = err("%0: f32[1, 4, 4, 1] = fill 0\n\
             %1: f32[1, 1, 1, 1] = max_pool k=[0, 1] s=[1, 1] d=[1, 1] p=[0, 0, 0, 0] %0\n");
        assert!(e.message.contains("window"), "{e}");
        let e = err("%0: f32[99999999999, 99999999999] = fill 0\n");
        assert!(e.message.contains("too many elements"), "{e}");
        let e = err("%0: f32[2] = input \"x\n");
        assert!(e.message.contains("not closed"), "{e}");
    }

    /// Deterministic mutations of valid text: nothing panics, and whatever
    /// parses prints text that parses to the same function.
    #[test]
    fn mutated_text_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let pieces = [
            "%",
            "[",
            "]",
            ",",
            "=",
            "\"",
            "\\",
            ";",
            "\n",
            " ",
            "0",
            "9",
            "99999999999999999999",
            "-",
            "..",
            "+",
            "max",
            "sum",
            "keep",
            "k=",
            "constant [3 values]",
            "é",
            "\u{0}",
            "nan",
            "axis=",
            "i64",
            "%0",
            "%7",
        ];
        let mut parsed = 0;
        for round in 0..4000 {
            let mut text: Vec<char> = SNAPSHOTS[round % 2].chars().collect();
            for _ in 0..1 + next(4) {
                let at = next(text.len() + 1);
                match next(4) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    1 => text.splice(at..at, pieces[next(pieces.len())].chars()).for_each(drop),
                    2 if at < text.len() => text[at] = pieces[next(pieces.len())].chars().next().unwrap_or(' '),
                    _ => {
                        let end = (at + next(40)).min(text.len());
                        let dup: Vec<char> = text[at..end].to_vec();
                        text.splice(at..at, dup).for_each(drop);
                    }
                }
            }
            let text: String = text.into_iter().collect();
            if let Ok(f) = parse_lossy(&text) {
                parsed += 1;
                let again = parse_lossy(&f.to_string()).unwrap_or_else(|e| panic!("{e}\n{f}"));
                assert_eq!(again.to_string(), f.to_string());
            }
        }
        // Some mutations (in comments, names, numbers) leave valid text.
        assert!(parsed > 50, "{parsed}");
    }
}
