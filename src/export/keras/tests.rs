//! The generator line by line: a layer of a checked model → its Python, and what Keras cannot express.

use super::*;

struct NoFiles;

impl nnc_compiler::Loader for NoFiles {
    fn load(&self, _: &std::path::Path) -> Result<String, nnc_compiler::LoadError> {
        Err(nnc_compiler::LoadError::NotFound)
    }
}

/// model.py for `output y = EXPR` over `input x: TYPE`.
fn export(ty: &str, expr: &str) -> Result<String, Unexportable> {
    export_source(format!("dim N\n\nmodel M {{\n    input x: {ty}\n    output y = {expr}\n}}\n"), "M")
}

/// model.py for model `name` of `source`.
fn export_source(source: String, name: &str) -> Result<String, Unexportable> {
    let a = nnc_compiler::analyse("m.nn", None, source, &NoFiles, &nnc_compiler::CheckOptions::default());
    let errors: Vec<&str> = a
        .result
        .diagnostics
        .iter()
        .filter(|d| d.severity == nnc_syntax::Severity::Error)
        .map(|d| d.message.as_str())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
    let m = a.result.models.iter().find(|m| m.name == name).unwrap();
    let inputs = m.inputs.iter().filter_map(|(n, t)| Some((n.clone(), t.node?))).collect();
    let outputs = m.outputs.iter().filter_map(|(n, v)| Some((n.clone(), v.as_tensor()?.node?))).collect();
    let src = ModelSource::plain(name.into(), None, &m.graph, inputs, outputs, String::new());
    model_py("m.nn", &[src], None)
}

#[test]
fn dense_is_one_keras_layer_with_its_activation() {
    let py = export("[N, 16]", "dense(x, 8, activation = relu, bias = false, name = \"h\")").unwrap();
    assert!(py.contains("layers.Dense(8, use_bias=False, activation=\"relu\", name=\"h\")"), "{py}");
    assert!(py.contains("\"h\": [\"h.kernel\"],"), "{py}");
}

#[test]
fn an_activation_with_options_is_a_layer_after() {
    let py = export("[N, 16]", "dense(x, 8, activation = leaky_relu(alpha = 0.1), name = \"h\")").unwrap();
    assert!(py.contains("layers.LeakyReLU(negative_slope=0.1, name=\"h__activation\")"), "{py}");
}

#[test]
fn explicit_padding_is_a_padding_layer_before() {
    let py = export("[N, 8, 8, 3]", "conv2d(x, 4, 3, padding = 1, name = \"c\")").unwrap();
    assert!(py.contains("layers.ZeroPadding2D((1, 1), name=\"c__pad\")"), "{py}");
    assert!(py.contains("padding=\"valid\""), "{py}");
    let py = export("[N, 8, 8, 3]", "max_pool(x, 3, stride = 2, padding = 1)").unwrap();
    assert!(py.contains("NncOp(\"pad\", {\"sides\": (1, 1), \"value\": float('-inf')}"), "{py}");
}

#[test]
fn arithmetic_uses_merge_layers_or_keras_ops() {
    let py = export("[N, 4]", "x + x").unwrap();
    assert!(py.contains("layers.Add("), "{py}");
    let py = export("[N, 4]", "x / 16").unwrap();
    assert!(py.contains("NncOp(\"scalar\", {\"fn\": \"div\", \"value\": 16.0, \"left\": False}"), "{py}");
}

#[test]
fn a_reduction_over_the_batch_is_refused_naming_the_option() {
    let e = export("[N, 4]", "mean(x)").unwrap_err();
    assert_eq!(e.refusal.option, Some("axis"));
    assert!(e.what.contains("mean"), "{}", e.what);
    assert!(export("[N, 4]", "mean(x, 1)").is_ok());
}

#[test]
fn indexing_the_batch_axis_is_refused() {
    let e = export("[N, 4]", "x[0]").unwrap_err();
    assert!(e.refusal.why.contains("batch axis"), "{}", e.refusal.why);
    assert!(export("[N, 4, 3]", "x[:, -1]").is_ok());
}

/// Every layer of the table exports its manual example (the layer page's `TYPE => EXPR`), or is refused
/// with a reason: never a panic, never a silent gap.
#[test]
fn every_layer_example_exports() {
    for l in nnc_compiler::layers::LAYERS {
        let Some((ty, expr)) = l.extra.example.split_once("=>") else { continue };
        match export(ty.trim(), expr.trim()) {
            Ok(py) => assert!(py.contains("def build_M():"), "{}", l.name),
            Err(e) => panic!("layer `{}` ({}): {}", l.name, expr.trim(), e.refusal.why),
        }
    }
}

/// A model called twice inside another is one set of layers, called twice (its parameters are shared).
#[test]
fn a_model_called_twice_is_one_layer_called_twice() {
    let source = "dim N\nmodel Inner {\n    input a: [N, 4]\n    output b = dense(a, 4, name = \"d\")\n}\n\
                  model Outer {\n    input x: [N, 4]\n    output y = Inner(a = Inner(a = x))\n}\n";
    let py = export_source(source.to_string(), "Outer").unwrap();
    assert_eq!(py.matches("layers.Dense(4, use_bias=True, name=\"Inner.d\")").count(), 1, "{py}");
    let calls = py.lines().filter(|l| l.contains("= layer1(")).count();
    assert_eq!(calls, 2, "{py}");
    assert!(py.contains("\"Inner.d\": [\"Inner.d.kernel\", \"Inner.d.bias\"]"), "{py}");
}
