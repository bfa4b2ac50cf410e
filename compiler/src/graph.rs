//! The typed graph: what the checker learned about the dataflow of a model
//! (and of a train block's loss), one node per layer application, arithmetic
//! operation, input or data array. Lowering (`ir::lower`) turns it into the
//! primitive IR; nothing here knows about kernels.

use std::rc::Rc;

use nnc_syntax::ast::BinOp;

use crate::layers::{Args, LayerDef, ParamSpec};
use crate::types::{Origin, TensorTy, Value};

pub type NodeId = u32;

/// One output of a node (layers with `state = true` have several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TRef {
    pub node: NodeId,
    pub output: u16,
}

/// An operand of arithmetic: a tensor or a constant.
#[derive(Clone, Debug)]
pub enum Operand {
    Tensor(TRef),
    Scalar(f64),
    /// A list literal, broadcast over the last axis.
    Vector(Vec<f64>),
}

#[derive(Clone, Debug)]
pub enum IndexSpec {
    At(i64),
    /// `start..end`, both already normalised to non-negative positions.
    Slice(i64, i64),
    Full,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A model input (fed by data, or by the caller of the model).
    Input {
        name: String,
    },
    /// A data array of a train block.
    Data {
        name: String,
    },
    Layer {
        def: &'static LayerDef,
        args: Rc<Args>,
        inputs: Vec<TRef>,
        /// Parameters with their full names (`features.conv2d.kernel`).
        params: Vec<ParamSpec>,
        /// The layer's own name (`features.conv2d`), for messages.
        name: String,
        /// Inside `frozen`: batch norm runs in inference mode.
        frozen: bool,
    },
    Binary {
        op: BinOp,
        lhs: Operand,
        rhs: Operand,
    },
    Index {
        base: TRef,
        items: Vec<IndexSpec>,
    },
    /// A loss or metric of a train block (`cross_entropy(logits, labels)`).
    Objective {
        function: &'static str,
        pred: TRef,
        target: Operand,
        options: Vec<(String, Value)>,
    },
    /// `l2(params)`: the sum of squares of every trainable kernel.
    L2,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    /// The type of each output.
    pub outputs: Vec<TensorTy>,
    pub origin: Origin,
}

/// A typed graph: nodes in evaluation order (every operand precedes its user).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn ty(&self, r: TRef) -> &TensorTy {
        &self.nodes[r.node as usize].outputs[r.output as usize]
    }

    /// Adds a node whose outputs are the tensors of `value` (a tensor or a
    /// tuple of tensors) and returns `value` with node references attached.
    pub fn add(&mut self, kind: NodeKind, value: Value, origin: Origin) -> Value {
        let id = self.nodes.len() as NodeId;
        let mut outputs = Vec::new();
        let tagged = tag(value, id, &mut outputs);
        self.nodes.push(Node { kind, outputs, origin });
        tagged
    }

    /// Every parameter of the graph, in creation order.
    pub fn params(&self) -> impl Iterator<Item = &ParamSpec> {
        self.nodes.iter().flat_map(|n| match &n.kind {
            NodeKind::Layer { params, .. } => params.as_slice(),
            _ => &[],
        })
    }
}

fn tag(v: Value, id: NodeId, outputs: &mut Vec<TensorTy>) -> Value {
    match v {
        Value::Tensor(mut t) => {
            t.node = Some(TRef { node: id, output: outputs.len() as u16 });
            outputs.push(t.clone());
            Value::Tensor(t)
        }
        Value::Tuple(parts) => Value::Tuple(parts.into_iter().map(|p| tag(p, id, outputs)).collect()),
        other => other,
    }
}
