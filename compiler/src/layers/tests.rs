//! Unit tests of the layer table: parameter counts against Keras's numbers
//! and shape rules on concrete inputs.

use super::*;
use crate::types::Origin;

fn t(dims: &[i64]) -> TensorTy {
    TensorTy::float(dims.iter().map(|&d| Dim::Known(d)).collect(), Origin::default())
}

fn int(v: i64) -> Value {
    Value::Int(Dim::Known(v))
}

fn kw(name: &str, v: Value) -> (Option<String>, Value, Origin) {
    (Some(name.to_string()), v, Origin::default())
}

fn pos(v: Value) -> (Option<String>, Value, Origin) {
    (None, v, Origin::default())
}

/// Applies a layer; returns the output and the total parameter count.
fn apply(layer: &str, inputs: Vec<TensorTy>, raw: Vec<(Option<String>, Value, Origin)>) -> (Value, i64) {
    let def = lookup(layer).expect("layer exists");
    let args = bind_args(def, &raw).expect("arguments bind");
    let mut a = Apply { inputs, args: &args, origin: Origin::default(), params: Vec::new(), notes: Vec::new() };
    let out = (def.rule)(&mut a).expect("rule succeeds");
    let count = a.params.iter().map(|p| p.count().expect("known shape")).sum();
    (out, count)
}

fn shape(v: &Value) -> String {
    v.to_string()
}

#[test]
fn recurrent_parameter_counts_match_keras() {
    // docs/src/layers.md: LSTM D = 2, M = 3 has 72; GRU 54 (reset_after = false) and 63; SimpleRNN 18.
    assert_eq!(apply("lstm", vec![t(&[1, 8, 2])], vec![pos(int(3))]).1, 72);
    assert_eq!(apply("gru", vec![t(&[1, 8, 2])], vec![pos(int(3)), kw("reset_after", Value::Bool(false))]).1, 54);
    assert_eq!(apply("gru", vec![t(&[1, 8, 2])], vec![pos(int(3))]).1, 63);
    assert_eq!(apply("simple_rnn", vec![t(&[1, 8, 2])], vec![pos(int(3))]).1, 18);
}

#[test]
fn recurrent_outputs_and_states() {
    let (o, _) = apply(
        "lstm",
        vec![t(&[4, 8, 2])],
        vec![pos(int(3)), kw("sequences", Value::Bool(true)), kw("state", Value::Bool(true))],
    );
    assert_eq!(shape(&o), "([4, 8, 3], [4, 3], [4, 3])");
    let (o, _) = apply("gru", vec![t(&[4, 8, 2])], vec![pos(int(3)), kw("state", Value::Bool(true))]);
    assert_eq!(shape(&o), "([4, 3], [4, 3])");
}

#[test]
fn bidirectional_doubles_parameters_and_concatenates() {
    let inner = LayerValue {
        layer: lookup("lstm").unwrap(),
        args: std::rc::Rc::new(vec![pos(int(3)), kw("sequences", Value::Bool(true))]),
        origin: Origin::default(),
    };
    let (o, n) = apply("bidirectional", vec![t(&[1, 8, 2])], vec![pos(Value::Layer(inner))]);
    assert_eq!(n, 144);
    assert_eq!(shape(&o), "[1, 8, 6]");
}

#[test]
fn convolution_shapes_and_counts() {
    // Seed 000: Conv2D(32, 2) on 1×28×28×3 → [1, 27, 27, 32], 416 parameters.
    let (o, n) = apply("conv2d", vec![t(&[1, 28, 28, 3])], vec![pos(int(32)), pos(int(2))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 27, 27, 32]", 416));
    // Seed 004: Conv2d(128 → 192, 3): 221,184 weights + 192 biases.
    let (_, n) = apply("conv2d", vec![t(&[1, 28, 28, 128])], vec![pos(int(192)), pos(int(3))]);
    assert_eq!(n, 221_184 + 192);
    // Same padding with stride 2: ceil(7 / 2) = 4.
    let (o, _) = apply(
        "conv2d",
        vec![t(&[1, 7, 7, 1])],
        vec![pos(int(4)), pos(int(3)), kw("stride", int(2)), kw("padding", Value::Mode("same".into()))],
    );
    assert_eq!(shape(&o), "[1, 4, 4, 4]");
    // Dilation 2, padding 2 keeps 32: (32 + 4 − 2·2 − 1)/1 + 1.
    let (o, _) = apply(
        "conv2d",
        vec![t(&[1, 32, 32, 3])],
        vec![pos(int(8)), pos(int(3)), kw("dilation", int(2)), kw("padding", int(2))],
    );
    assert_eq!(shape(&o), "[1, 32, 32, 8]");
    // Transposed: (7 − 1)·2 + 3 = 15; kernel [3, 3, filters, C].
    let (o, n) =
        apply("conv2d_transpose", vec![t(&[1, 7, 7, 4])], vec![pos(int(2)), pos(int(3)), kw("stride", int(2))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 15, 15, 2]", 3 * 3 * 2 * 4 + 2));
    let (o, _) = apply("conv1d", vec![t(&[1, 100, 16])], vec![pos(int(8)), pos(int(5))]);
    assert_eq!(shape(&o), "[1, 96, 8]");
}

#[test]
fn kernel_larger_than_input_is_an_error_with_the_rule() {
    let def = lookup("conv2d").unwrap();
    let args = bind_args(def, &[pos(int(8)), pos(int(7))]).unwrap();
    let mut a = Apply {
        inputs: vec![t(&[1, 5, 5, 1])],
        args: &args,
        origin: Origin::default(),
        params: Vec::new(),
        notes: Vec::new(),
    };
    match (def.rule)(&mut a) {
        Err(LayerError::NonPositive { value, note, .. }) => {
            assert_eq!(value, Dim::Known(-1));
            assert_eq!(note, "conv2d height: (5 + 2·0 − 1·(7−1) − 1)/1 + 1 = -1");
        }
        other => panic!("expected NonPositive, got {other:?}"),
    }
}

#[test]
fn pools_norms_and_others() {
    assert_eq!(shape(&apply("max_pool", vec![t(&[1, 28, 28, 16])], vec![]).0), "[1, 14, 14, 16]");
    assert_eq!(
        shape(&apply("avg_pool", vec![t(&[1, 7, 7, 16])], vec![kw("padding", Value::Mode("same".into()))]).0),
        "[1, 4, 4, 16]"
    );
    assert_eq!(shape(&apply("max_pool", vec![t(&[1, 10, 4])], vec![pos(int(3)), kw("stride", int(1))]).0), "[1, 8, 4]");
    let (_, n) = apply("batch_norm", vec![t(&[1, 4, 4, 16])], vec![]);
    assert_eq!(n, 64);
    assert_eq!(apply("layer_norm", vec![t(&[1, 10, 32])], vec![]).1, 64);
    assert_eq!(
        apply(
            "embedding",
            vec![TensorTy::new(nnc_syntax::ast::ElemType::Int, vec![Dim::Known(2), Dim::Known(5)], Origin::default())],
            vec![pos(int(100)), pos(int(8))]
        )
        .1,
        800
    );
    assert_eq!(shape(&apply("flatten", vec![t(&[2, 7, 7, 32])], vec![]).0), "[2, 1568]");
    assert_eq!(shape(&apply("global_avg_pool", vec![t(&[2, 7, 7, 32])], vec![]).0), "[2, 32]");
    assert_eq!(shape(&apply("upsample", vec![t(&[2, 7, 7, 32])], vec![]).0), "[2, 14, 14, 32]");
    let (o, n) = apply("dense", vec![t(&[2, 784])], vec![pos(int(500))]);
    assert_eq!((shape(&o).as_str(), n), ("[2, 500]", 392_500));
    let (_, n) = apply("dense", vec![t(&[2, 784])], vec![pos(int(500)), kw("bias", Value::Bool(false))]);
    assert_eq!(n, 392_000);
}

#[test]
fn attention_parameter_count_matches_keras() {
    // Keras MultiHeadAttention(num_heads=2, key_dim=32) on D = 32: 4·(32·2·32) + 3·(2·32) + 32 = 8,416.
    let (o, n) = apply("multi_head_attention", vec![t(&[1, 100, 32])], vec![pos(int(2)), pos(int(32))]);
    assert_eq!(shape(&o), "[1, 100, 32]");
    assert_eq!(n, 8_416);
}

#[test]
fn options_are_validated() {
    let def = lookup("dropout").unwrap();
    let issues = bind_args(def, &[pos(Value::Float(1.5))]).unwrap_err();
    assert!(matches!(issues[0], ArgIssue::OutOfRange { name: "rate", .. }));
    let def = lookup("conv2d").unwrap();
    let issues = bind_args(def, &[pos(int(16)), kw("kernal", int(3))]).unwrap_err();
    assert_eq!(issues.len(), 1, "a typo does not also report the missing option: {issues:?}");
    assert!(matches!(&issues[0], ArgIssue::Unknown { suggestion: Some("kernel"), .. }));
    let issues = bind_args(def, &[pos(int(16)), pos(int(3)), kw("padding", Value::Mode("sam".into()))]).unwrap_err();
    assert!(matches!(&issues[0], ArgIssue::BadMode { .. }));
}

#[test]
fn every_layer_has_docs_and_a_signature() {
    for l in LAYERS {
        assert!(!l.doc.is_empty() && l.signature.starts_with(l.name), "{}", l.name);
        for a in l.args {
            assert!(!a.doc.is_empty(), "{}.{}", l.name, a.name);
        }
    }
}

#[test]
fn suggestions_find_near_misses() {
    assert_eq!(suggest("kernal", ["kernel", "stride"]), Some("kernel"));
    assert_eq!(suggest("dens", ["dense", "relu"]), Some("dense"));
    assert_eq!(suggest("xyz", ["kernel"]), None);
}

/// Parameter names and shapes of a layer on a concrete input.
fn params(layer: &str, input: &[i64], raw: Vec<(Option<String>, Value, Origin)>) -> Vec<(String, Vec<i64>)> {
    let def = lookup(layer).expect("layer exists");
    let args = bind_args(def, &raw).expect("arguments bind");
    let mut a = Apply { inputs: vec![t(input)], args: &args, origin: Origin::default(), params: vec![], notes: vec![] };
    (def.rule)(&mut a).expect("rule succeeds");
    a.params.iter().map(|p| (p.name.clone(), p.shape.iter().map(|d| d.as_known().unwrap()).collect())).collect()
}

#[test]
fn grouped_depthwise_and_separable_counts_match_keras() {
    // Counts and output shapes from Keras 3 (`model.count_params()`).
    // MobileNet's first depthwise layer: DepthwiseConv2D(3, use_bias=False) on 32 channels.
    let (o, n) =
        apply("depthwise_conv2d", vec![t(&[1, 112, 112, 32])], vec![pos(int(3)), kw("bias", Value::Bool(false))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 110, 110, 32]", 288));
    let (o, n) =
        apply("depthwise_conv2d", vec![t(&[1, 10, 10, 16])], vec![pos(int(3)), kw("depth_multiplier", int(2))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 8, 8, 32]", 320));
    let (o, n) = apply("separable_conv2d", vec![t(&[1, 10, 10, 32])], vec![pos(int(64)), pos(int(3))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 8, 8, 64]", 2400));
    let (o, n) = apply("conv2d", vec![t(&[1, 10, 10, 32])], vec![pos(int(64)), pos(int(3)), kw("groups", int(4))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 8, 8, 64]", 4672));
    let (o, n) =
        apply("separable_conv1d", vec![t(&[1, 20, 4])], vec![pos(int(8)), pos(int(5)), kw("depth_multiplier", int(3))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 16, 8]", 164));
    let (o, n) = apply("conv1d", vec![t(&[1, 20, 6])], vec![pos(int(6)), pos(int(3)), kw("groups", int(3))]);
    assert_eq!((shape(&o).as_str(), n), ("[1, 18, 6]", 42));
}

#[test]
fn convolution_parameters_have_keras_names_and_layouts() {
    let s = |v: &[i64]| v.to_vec();
    assert_eq!(
        params("conv2d", &[1, 8, 8, 6], vec![pos(int(4)), pos(int(3)), kw("groups", int(2))]),
        vec![("kernel".into(), s(&[3, 3, 3, 4])), ("bias".into(), s(&[4]))]
    );
    assert_eq!(
        params("depthwise_conv2d", &[1, 8, 8, 4], vec![pos(int(3)), kw("depth_multiplier", int(2))]),
        vec![("kernel".into(), s(&[3, 3, 4, 2])), ("bias".into(), s(&[8]))]
    );
    assert_eq!(
        params("separable_conv2d", &[1, 8, 8, 4], vec![pos(int(5)), pos(int(3)), kw("depth_multiplier", int(2))]),
        vec![
            ("depthwise_kernel".into(), s(&[3, 3, 4, 2])),
            ("pointwise_kernel".into(), s(&[1, 1, 8, 5])),
            ("bias".into(), s(&[5]))
        ]
    );
    assert_eq!(
        params("separable_conv1d", &[1, 8, 4], vec![pos(int(5)), pos(int(3))]),
        vec![
            ("depthwise_kernel".into(), s(&[3, 4, 1])),
            ("pointwise_kernel".into(), s(&[1, 4, 5])),
            ("bias".into(), s(&[5]))
        ]
    );
}

#[test]
fn groups_must_divide_channels_and_filters() {
    let def = lookup("conv2d").unwrap();
    for (c, filters, bad) in [(6, 8, "6 input channels"), (8, 6, "6 filters")] {
        let raw = vec![pos(int(filters)), pos(int(3)), kw("groups", int(4))];
        let args = bind_args(def, &raw).unwrap();
        let mut a = Apply {
            inputs: vec![t(&[1, 8, 8, c])],
            args: &args,
            origin: Origin::default(),
            params: vec![],
            notes: vec![],
        };
        match (def.rule)(&mut a) {
            Err(LayerError::Option { option: "groups", message }) => {
                assert!(message.contains(bad) && message.contains("4 groups"), "{message}")
            }
            other => panic!("expected a `groups` error, got {other:?}"),
        }
    }
}

#[test]
fn parameter_ownership_and_hints_are_read_from_the_table() {
    let has = |n: &str| lookup(n).unwrap().has_params();
    // From a `bias`/`init` option, from `owns_params`, and neither.
    assert!(has("dense") && has("batch_norm") && has("repeat") && has("embedding"));
    assert!(!has("relu") && !has("reshape") && !has("dropout"));
    let hints = |n: &str| lookup(n).unwrap().extra.hints;
    assert!(hints("lstm").iter().any(|h| matches!(h, Hint::Rank { found: 2, .. })));
    assert!(hints("embedding").iter().any(|h| matches!(h, Hint::ElemType { .. })));
    assert!(hints("dense").is_empty());
}

/// Every initialiser option of every layer reaches a parameter: a rule declares its parameters with
/// `param_from(…, option)`, never with the default spelled again (which left `init = …` ignored).
#[test]
fn every_init_option_reaches_a_parameter() {
    let inputs = || {
        let mut int_seq = t(&[2, 6]);
        int_seq.elem = ElemType::Int;
        [t(&[2, 6]), t(&[2, 6, 6]), t(&[2, 6, 6, 6]), t(&[2, 6, 6, 6, 6]), int_seq]
    };
    let mut checked = 0;
    for def in LAYERS {
        let inits: Vec<&str> = def.args.iter().filter(|a| a.kind == ArgKind::Init).map(|a| a.name).collect();
        if inits.is_empty() {
            continue;
        }
        let mut raw: Vec<_> =
            def.args.iter().filter(|a| a.default == Default::Required).map(|a| kw(a.name, int(2))).collect();
        raw.extend(inits.iter().map(|o| kw(o, Value::Str(format!("marker_{o}")))));
        let args = bind_args(def, &raw).unwrap_or_else(|e| panic!("`{}`: {e:?}", def.name));
        let params = inputs().into_iter().find_map(|x| {
            let mut a =
                Apply { inputs: vec![x], args: &args, origin: Origin::default(), params: vec![], notes: vec![] };
            (def.rule)(&mut a).ok().filter(|_| !a.params.is_empty()).map(|_| a.params)
        });
        let params = params.unwrap_or_else(|| panic!("`{}` accepts none of the sample inputs", def.name));
        for o in &inits {
            let marker = format!("marker_{o}");
            assert!(
                params.iter().any(|p| p.init == marker),
                "`{}({o} = …)` reaches no parameter: {:?}",
                def.name,
                params.iter().map(|p| (&p.name, &p.init)).collect::<Vec<_>>()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} layers with initialiser options");
}

#[test]
fn activation_words_come_from_the_table() {
    let words = super::activation_words();
    assert_eq!(words[0], "none");
    for w in ["relu", "swish", "mish", "hard_swish", "log_softmax"] {
        assert!(words.contains(&w), "{w} missing from {words:?}");
    }
    // Layers with parameters or a required option cannot be an activation.
    for w in ["dense", "conv2d", "batch_norm", "rescaling", "dropout"] {
        assert!(!words.contains(&w), "{w} listed in {words:?}");
    }
}
