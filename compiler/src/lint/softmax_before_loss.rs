//! W0002: a loss that applies softmax itself (`cross_entropy`, `perplexity`, unless
//! `from_logits = false`) fed a softmax output — however it was written: `|> softmax`,
//! `softmax(…)`, `activation = softmax` on any layer whose activation is its last step,
//! or the output of a block or model that ends so. The train block's typed graph holds
//! them all alike; this lint walks it back from the loss's prediction.

use nnc_syntax::{Code, Diagnostic};

use super::{Context, Lint, with_calls};
use crate::check::facts::FactKind;
use crate::graph::{IndexSpec, NodeKind, TRef};
use crate::layers::{ArgVal, LayerDef};
use crate::types::Origin;

pub const LINT: Lint = Lint {
    code: Code::SoftmaxBeforeCrossEntropy,
    name: "softmax-before-loss",
    doc: "`cross_entropy`/`perplexity` given a softmax output: they apply softmax themselves",
    run,
};

fn run(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for fact in cx.facts() {
        let FactKind::SoftmaxLossInput { loss, pred, train, has_from_logits } = &fact.kind else { continue };
        let Some(train) = cx.result.trains.get(*train) else { continue };
        let Some(softmax) = softmax_source(&train.graph, *pred) else { continue };
        let mut d = Diagnostic::new(
            Code::SoftmaxBeforeCrossEntropy,
            fact.at.file,
            fact.at.span,
            format!("`{loss}` applies softmax itself"),
        )
        .with_label("this is already a softmax output");
        if softmax.span != fact.at.span && !softmax.span.is_empty() {
            d = d.with_secondary(softmax.file, softmax.span, "the softmax is applied here");
        }
        let help = if *has_from_logits {
            "pass the logits (drop the `softmax`), or write `from_logits = false`"
        } else {
            "pass the logits (drop the `softmax`)"
        };
        out.push(with_calls(d.with_help(help), fact));
    }
}

/// Where the softmax is applied, when the tensor `r` is a softmax over its last axis:
/// a `softmax` layer, a layer whose output activation is softmax, a `repeat` of such a
/// layer, or any of those seen through dropout or an index that keeps the last axis whole.
fn softmax_source(graph: &crate::graph::Graph, r: TRef) -> Option<Origin> {
    let node = graph.nodes.get(r.node as usize)?;
    let rank = graph.nodes[r.node as usize].outputs.get(usize::from(r.output))?.rank();
    match &node.kind {
        NodeKind::Layer { def, args, inputs, .. } => match def.name {
            "softmax" => last_axis(args.get("axis"), rank).then_some(node.origin),
            "dropout" => softmax_source(graph, *inputs.first()?),
            _ => layer_ends_in_softmax(def, |name| args.get(name).clone(), rank, node.origin),
        },
        NodeKind::Index { base, items } => {
            let base_rank = graph.ty(*base).rank();
            let last_whole = items.len() < base_rank || matches!(items.last(), Some(IndexSpec::Full));
            if last_whole { softmax_source(graph, *base) } else { None }
        }
        _ => None,
    }
}

/// Whether a layer (applied, or as a layer value) ends in a softmax over the last axis.
fn layer_ends_in_softmax(def: &LayerDef, arg: impl Fn(&str) -> ArgVal, rank: usize, origin: Origin) -> Option<Origin> {
    // Recurrent layers (the ones with `state`) apply their activation inside the cell.
    let output_activation =
        def.args.iter().any(|a| a.name == "activation") && !def.args.iter().any(|a| a.name == "state");
    match (def.name, arg("activation"), arg("layer")) {
        ("repeat", _, ArgVal::Layer(lv)) => {
            let n = arg("n");
            let copies = matches!(&n, ArgVal::Int(d) if d.as_known().is_some_and(|n| n > 0));
            if !copies {
                return None;
            }
            layer_value_ends_in_softmax(&lv, rank)
        }
        (_, ArgVal::Layer(lv), _) if output_activation => {
            layer_value_ends_in_softmax(&lv, rank).map(|_| if lv.origin.span.is_empty() { origin } else { lv.origin })
        }
        _ => None,
    }
}

/// A layer value (`softmax`, `dense(10, activation = softmax)`) that ends in a softmax.
fn layer_value_ends_in_softmax(lv: &crate::types::LayerValue, rank: usize) -> Option<Origin> {
    let args = crate::layers::bind_args(lv.layer, &lv.args).ok()?;
    if lv.layer.name == "softmax" {
        return last_axis(args.get("axis"), rank).then_some(lv.origin);
    }
    layer_ends_in_softmax(lv.layer, |name| args.get(name).clone(), rank, lv.origin)
}

/// Whether an `axis` option names the last of `rank` axes.
fn last_axis(axis: &ArgVal, rank: usize) -> bool {
    match axis {
        ArgVal::Axes(xs) => {
            matches!(xs.as_slice(), [x] if *x == -1 || usize::try_from(*x).is_ok_and(|x| x + 1 == rank))
        }
        ArgVal::Int(d) => d.as_known().is_some_and(|x| x == -1 || usize::try_from(x).is_ok_and(|x| x + 1 == rank)),
        ArgVal::Absent => true,
        _ => false,
    }
}
