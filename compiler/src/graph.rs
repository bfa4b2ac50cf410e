//! The typed graph: what the checker learned about the dataflow of a model
//! (and of a train block's loss), one node per layer application, arithmetic
//! operation, input or data array. Lowering (`ir::lower`) turns it into the
//! primitive IR; nothing here knows about kernels.

use std::rc::Rc;

use nnc_syntax::ast::BinOp;

use crate::layers::{Args, LayerDef, ParamSpec};
use crate::types::{Origin, TensorTy, Value};

/// Index of a node in its [`Graph`]'s `nodes`.
pub type NodeId = u32;

/// One output of a node (layers with `state = true` have several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TRef {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs (0 for single-output nodes).
    pub output: u16,
}

/// An operand of arithmetic: a tensor or a constant.
#[derive(Clone, Debug)]
pub enum Operand {
    /// A tensor of the graph.
    Tensor(TRef),
    /// A number, broadcast to the other operand's shape.
    Scalar(f64),
    /// A list literal, broadcast over the last axis.
    Vector(Vec<f64>),
}

/// One item of an index expression, after checking.
#[derive(Clone, Debug)]
pub enum IndexSpec {
    /// One position (non-negative), which removes the axis.
    At(i64),
    /// `start..end`, both already normalised to non-negative positions.
    Slice(i64, i64),
    /// The whole axis (`:`).
    Full,
}

/// What a graph node computes.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A model input (fed by data, or by the caller of the model).
    Input {
        /// The input's name.
        name: String,
    },
    /// A data array of a train block.
    Data {
        /// The name of the data array (`x`, `y`, or a named selector).
        name: String,
    },
    /// A layer application.
    Layer {
        /// The layer's entry in the layer table.
        def: &'static LayerDef,
        /// Its checked options.
        args: Rc<Args>,
        /// Its tensor inputs, in the layer's order.
        inputs: Vec<TRef>,
        /// Parameters with their full names (`features.conv2d.kernel`).
        params: Vec<ParamSpec>,
        /// The layer's own name (`features.conv2d`), for messages.
        name: String,
        /// Inside `frozen`: batch norm runs in inference mode.
        frozen: bool,
    },
    /// Elementwise arithmetic with broadcasting.
    Binary {
        /// The operator.
        op: BinOp,
        /// The left operand.
        lhs: Operand,
        /// The right operand.
        rhs: Operand,
    },
    /// Indexing or slicing of a tensor.
    Index {
        /// The indexed tensor.
        base: TRef,
        /// One item per indexed leading axis; trailing axes are kept whole.
        items: Vec<IndexSpec>,
    },
    /// A loss or metric of a train block (`cross_entropy(logits, labels)`).
    Objective {
        /// The function's name (`cross_entropy`, `accuracy`…).
        function: &'static str,
        /// The prediction.
        pred: TRef,
        /// The target: labels, a tensor, or a constant.
        target: Operand,
        /// Its keyword options as evaluated (`from_logits`, `label_smoothing`…).
        options: Vec<(String, Value)>,
    },
    /// `l2(params)`: the sum of squares of every trainable kernel.
    L2,
}

/// One node of a [`Graph`].
#[derive(Clone, Debug)]
pub struct Node {
    /// What it computes.
    pub kind: NodeKind,
    /// The type of each output.
    pub outputs: Vec<TensorTy>,
    /// The source expression that made it, for messages and hovers.
    pub origin: Origin,
}

/// A typed graph: nodes in evaluation order (every operand precedes its user).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The nodes, in evaluation order; a [`TRef`] indexes them.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// The node `id` (panics if `id` is not of this graph).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The type of output `r` (panics if `r` is not of this graph).
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
