//! A Keras 3 model config (`model.to_json()`, or a `.keras` file's
//! `config.json`) → the text of an equivalent `.nn` file.
//!
//! Layer classes are found through the layer table's `Extra.keras` field
//! (`Dense`, `Activation('sigmoid')`, `MaxPooling2D / MaxPooling1D`), options
//! through the option names of the chosen entry and `aliases::rename`
//! (`kernel_size` → `kernel`); values are written in the option's kind and
//! left out when they equal its default. A Keras option with no nnc
//! counterpart must hold the value that means what nnc does
//! ([`NEUTRAL`]), else it is listed as untranslated with its layer; so are
//! unknown classes. Any untranslated item fails the import: the output is
//! never an approximation.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use nnc_compiler::layers::{ArgDef, ArgKind, Default as OptDefault, LAYERS, LayerDef, Operands};
use serde_json::Value;

/// Something of the Keras model nnc cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untranslated {
    /// The Keras class (`ActivityRegularization`).
    pub class: String,
    /// The layer's name in the model.
    pub name: String,
    /// What is missing (`the layer`, `option kernel_regularizer = "l2"`).
    pub what: String,
}

impl std::fmt::Display for Untranslated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`: {}", self.class, self.name, self.what)
    }
}

/// Why an import produced no `.nn` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportError {
    /// The input is not a Keras model config.
    Invalid(String),
    /// Parts of the model have no nnc counterpart.
    Untranslated(Vec<Untranslated>),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Invalid(m) => write!(f, "{m}"),
            ImportError::Untranslated(items) => {
                write!(f, "{} of the Keras model cannot be translated to nnc:", plural(items.len()))?;
                for u in items {
                    write!(f, "\n  {u}")?;
                }
                Ok(())
            }
        }
    }
}

fn plural(n: usize) -> String {
    if n == 1 { "1 part".into() } else { format!("{n} parts") }
}

/// Keras options nnc has no option for, with the value that means what nnc always does
/// (`None`: any value, the option does not change the inference graph or the parameters).
const NEUTRAL: &[(&str, Option<&str>)] = &[
    ("trainable", Some("true")),
    ("seed", None),
    ("dtype", None), // checked apart: a float32 policy
    ("data_format", Some("\"channels_last\"")),
    ("stateful", Some("false")),
    ("unroll", None),
    ("zero_output_for_mask", None),
    ("mask_zero", Some("false")),
    ("recurrent_dropout", Some("0.0")),
    ("recurrent_activation", Some("\"sigmoid\"")),
    ("unit_forget_bias", Some("true")),
    ("return_state", Some("false")),
    ("renorm", Some("false")),
    ("renorm_clipping", Some("null")),
    ("renorm_momentum", None),
    ("synchronized", None),
    ("rms_scaling", Some("false")),
    ("quantization_config", Some("null")),
    ("lora_rank", Some("null")),
    ("lora_alpha", None),
    ("axis", Some("-1")),
    ("beta_initializer", Some("Zeros")),
    ("gamma_initializer", Some("Ones")),
    ("moving_mean_initializer", Some("Zeros")),
    ("moving_variance_initializer", Some("Ones")),
    ("optional", Some("false")),
    ("interpolation", Some("\"nearest\"")),
    ("sparse", Some("false")),
    ("ragged", Some("false")),
    ("backward_layer", None), // checked apart: the forward layer run backwards
    ("invert", Some("false")),
];

/// Keras merge layers that are nnc operators.
const OPERATORS: &[(&str, &str)] = &[("Add", " + "), ("Subtract", " - "), ("Multiply", " * ")];

/// The nnc layers a Keras class name stands for, from the table's `keras` field, with the
/// `key=value` conditions of entries such as `ReLU(max_value=6)`.
fn candidates(class: &str) -> Vec<(&'static LayerDef, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for l in LAYERS {
        let alternatives: Vec<&str> = l.extra.keras.split(" / ").collect();
        for (i, alt) in alternatives.iter().enumerate() {
            // `GlobalAveragePooling2D / 1D`: the second spelling replaces the first's suffix.
            let full = match alt.chars().next() {
                Some(c) if c.is_ascii_digit() && i > 0 => {
                    let first = alternatives[0];
                    format!("{}{alt}", &first[..first.len().saturating_sub(alt.len())])
                }
                _ => alt.to_string(),
            };
            // `keras_hub PositionEmbedding`, `ConvNeXt's LayerScale`: the class is the last word.
            let word = full.rsplit(' ').next().unwrap_or("");
            let (name, conds) = match word.split_once('(') {
                Some((n, rest)) => (n, rest.trim_end_matches(')')),
                None => (word, ""),
            };
            if name != class || name.contains('.') {
                continue;
            }
            // `ReLU(max_value=6)`: options; `Activation('sigmoid')`: Keras's one positional, `activation`.
            let conds = conds
                .split(',')
                .filter(|c| !c.trim().is_empty())
                .map(|c| c.split_once('=').unwrap_or(("activation", c)))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('\'').to_string()))
                .collect();
            out.push((l, conds));
        }
    }
    out
}

/// The layer for `class` with `config`: an entry whose conditions hold (`Activation('sigmoid')` holds for
/// `activation = "sigmoid"`), the unconditioned entry first.
fn layer_for(class: &str, config: &serde_json::Map<String, Value>) -> Option<&'static LayerDef> {
    let mut found = candidates(class);
    found.sort_by_key(|(_, conds)| conds.len());
    let holds = |conds: &[(String, String)]| {
        conds.iter().all(|(k, v)| {
            config
                .get(k)
                .is_some_and(|c| c.as_str() == Some(v.as_str()) || c.as_f64().is_some_and(|x| v.parse() == Ok(x)))
        })
    };
    if let Some((l, _)) = found.iter().find(|(_, c)| holds(c)) {
        return Some(l);
    }
    // `Activation('relu')`: an activation layer of that name (`relu`, `softmax`, `elu`).
    let act = config.get("activation").and_then(Value::as_str)?;
    (class == "Activation").then(|| activation_layer(act)).flatten()
}

fn activation_layer(name: &str) -> Option<&'static LayerDef> {
    nnc_compiler::layers::activation_words().contains(&name).then(|| nnc_compiler::layers::lookup(name)).flatten()
}

/// A Keras name as an nnc identifier.
fn ident(name: &str, taken: &mut HashSet<String>) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "l_");
    }
    const KEYWORDS: &[&str] =
        &["dim", "model", "block", "train", "input", "output", "let", "use", "true", "false", "int", "float", "none"];
    if KEYWORDS.contains(&s.as_str()) {
        s.push_str("_out");
    }
    let base = s.clone();
    let mut k = 1;
    while taken.contains(&s) {
        s = format!("{base}_{k}");
        k += 1;
    }
    taken.insert(s.clone());
    s
}

/// `mlp` → `Mlp`, `my_model-2` → `MyModel2`.
fn model_ident(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert_str(0, "Keras");
    }
    out
}

/// A number as nnc writes it.
fn number(v: &Value) -> Option<String> {
    if let Some(i) = v.as_i64() {
        return Some(i.to_string());
    }
    let f = v.as_f64().filter(|f| f.is_finite())?;
    Some(if f.fract() == 0.0 && f.abs() < 1e15 { format!("{f:.1}") } else { format!("{f}") })
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Array(xs) => xs.iter().map(Value::as_i64).collect(),
        _ => Some(vec![v.as_i64()?]),
    }
}

/// A Keras initialiser (`{"class_name": "GlorotUniform", "config": {…}}`) as nnc's `init` value.
fn initialiser(v: &Value) -> Option<String> {
    let class = v.get("class_name")?.as_str()?;
    let mut name = String::new();
    for (i, c) in class.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    let name = name.strip_prefix("random_").unwrap_or(&name).to_string();
    let def = nnc_compiler::schema::lookup_initialiser(&name)?;
    let mut opts = Vec::new();
    for (k, val) in v.get("config").and_then(Value::as_object).into_iter().flatten() {
        if k == "seed" || val.is_null() {
            continue;
        }
        def.options.iter().find(|o| o.name == k)?;
        let text = match val {
            Value::String(s) => s.clone(),
            _ => number(val)?,
        };
        opts.push(format!("{k} = {text}"));
    }
    Some(if opts.is_empty() { name } else { format!("{name}({})", opts.join(", ")) })
}

/// Whether the `dtype` entry is plain float32 (a mixed-precision policy changes the arithmetic).
fn float32_policy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s == "float32",
        _ => v.pointer("/config/name").and_then(Value::as_str) == Some("float32"),
    }
}

/// The option value in nnc's syntax for the option's kind, or `None` when it cannot be written.
fn option_text(arg: &ArgDef, v: &Value) -> Option<String> {
    let list = |xs: &[i64]| format!("[{}]", xs.iter().map(i64::to_string).collect::<Vec<_>>().join(", "));
    Some(match arg.kind {
        ArgKind::Int { .. } | ArgKind::Axis => v.as_i64()?.to_string(),
        ArgKind::IntOrPair { .. } => {
            let xs = ints(v)?;
            match xs[..] {
                [a] => a.to_string(),
                [a, b] if a == b => a.to_string(),
                _ => list(&xs),
            }
        }
        ArgKind::Axes => {
            let xs = ints(v)?;
            if let [a] = xs[..] { a.to_string() } else { list(&xs) }
        }
        ArgKind::Float { .. } => number(v)?,
        ArgKind::Bool => v.as_bool()?.to_string(),
        ArgKind::Mode(words) => words.iter().find(|w| Some(**w) == v.as_str())?.to_string(),
        ArgKind::Padding => match v {
            Value::String(s) if s == "valid" || s == "same" => s.clone(),
            _ => return None,
        },
        ArgKind::Activation => match v.as_str()? {
            "linear" => "none".into(),
            a => activation_layer(a)?.name.to_string(),
        },
        ArgKind::Shape => {
            let xs = ints(v)?;
            format!("[N{}]", xs.iter().map(|x| format!(", {x}")).collect::<String>())
        }
        ArgKind::Init => initialiser(v)?,
        ArgKind::Floats => match v {
            Value::Array(xs) => format!("[{}]", xs.iter().map(number).collect::<Option<Vec<_>>>()?.join(", ")),
            _ => number(v)?,
        },
        ArgKind::Sides => match v {
            Value::Array(xs) if xs.iter().all(Value::is_array) => {
                let pairs: Option<Vec<String>> = xs.iter().map(|p| Some(list(&ints(p)?))).collect();
                format!("[{}]", pairs?.join(", "))
            }
            _ => {
                let xs = ints(v)?;
                if let [a] = xs[..] { a.to_string() } else { list(&xs) }
            }
        },
        ArgKind::Layer | ArgKind::Tensor | ArgKind::State => return None,
    })
}

/// Whether `text` is what the option is when left out.
fn is_default(arg: &ArgDef, text: &str) -> bool {
    match arg.default {
        OptDefault::Int(d) => text == d.to_string(),
        OptDefault::Float(d) => text.parse::<f64>().is_ok_and(|x| x == d),
        OptDefault::Bool(d) => text == d.to_string(),
        OptDefault::Mode(m) => text == m,
        OptDefault::Required | OptDefault::Absent | OptDefault::SameAs(_) => false,
    }
}

/// Translates one Keras layer (class + config) to an nnc call on `operands` (none: a layer value,
/// as `bidirectional`'s argument). Problems go to `missing`.
fn call(
    class: &str,
    name: &str,
    config: &serde_json::Map<String, Value>,
    operands: &[String],
    missing: &mut Vec<Untranslated>,
) -> Option<String> {
    let miss = |what: String| Untranslated { class: class.into(), name: name.into(), what };
    let Some(def) = layer_for(class, config) else {
        missing.push(miss("no nnc layer".into()));
        return None;
    };
    let names: Vec<&str> = def.args.iter().map(|a| a.name).collect();
    // (option, value text), put in the table's order below: required options positionally (an option may be
    // named like a keyword, `embedding(x, 100, 8)`'s `dim`), the others by keyword.
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let before = missing.len();
    for (key, v) in config {
        if key == "name" || (class == "Activation" && key == "activation" && def.arg("activation").is_none()) {
            continue;
        }
        if key == "dtype" {
            if !float32_policy(v) {
                missing.push(miss(format!("option `dtype` = {v} (nnc computes in float32)")));
            }
            continue;
        }
        let neutral = NEUTRAL.iter().find(|(k, _)| k == key);
        let target = def.arg(key).or_else(|| nnc_compiler::aliases::rename(key, &names).and_then(|n| def.arg(n)));
        match (neutral, target) {
            (Some((_, None)), _) => {}
            (Some((_, Some(want))), _) if neutral_holds(v, want) => {}
            (_, Some(arg)) if arg.kind == ArgKind::Layer => {
                let inner = v.get("config").and_then(Value::as_object);
                let inner_class = v.get("class_name").and_then(Value::as_str).unwrap_or("?");
                match inner.and_then(|c| call(inner_class, name, c, &[], missing)) {
                    Some(text) => given.push((arg.name, text)),
                    None if inner.is_none() => missing.push(miss(format!("option `{key}` = {v}"))),
                    None => {}
                }
            }
            (_, Some(arg)) => match option_text(arg, v) {
                Some(text) if is_default(arg, &text) => {}
                Some(text) => given.push((arg.name, text)),
                // Keras's `None` is its default (`output_padding = None`: inferred), which nnc's is.
                None if v.is_null() && !matches!(arg.default, OptDefault::Required) => {}
                None => missing.push(miss(format!("option `{key}` = {v}"))),
            },
            _ if v.is_null() && (key.ends_with("_regularizer") || key.ends_with("_constraint")) => {}
            _ => missing.push(miss(format!("option `{key}` = {v}"))),
        }
    }
    if class == "Bidirectional" {
        check_backward(config, name, missing);
    }
    if missing.len() > before {
        return None;
    }
    let mut args: Vec<String> = operands.to_vec();
    for a in def.args {
        if let Some((_, text)) = given.iter().find(|(n, _)| *n == a.name) {
            let required = matches!(a.default, OptDefault::Required);
            args.push(if required { text.clone() } else { format!("{} = {text}", a.name) });
        }
    }
    if !operands.is_empty() {
        args.push(format!("name = {}", serde_json::to_string(name).unwrap_or_default()));
    }
    Some(format!("{}({})", def.name, args.join(", ")))
}

fn neutral_holds(v: &Value, want: &str) -> bool {
    // (`axis = [-1]`: a list of the one axis.)
    let one = v.as_array().filter(|a| a.len() == 1).and_then(|a| a.first());
    serde_json::from_str::<Value>(want).is_ok_and(|w| *v == w || one == Some(&w))
        || v.get("class_name").and_then(Value::as_str) == Some(want)
        || (want == "0.0" && v.as_f64() == Some(0.0))
}

/// Keras writes `backward_layer` even when it is the forward layer run backwards (what nnc does).
fn check_backward(config: &serde_json::Map<String, Value>, name: &str, missing: &mut Vec<Untranslated>) {
    let strip = |v: Option<&Value>| {
        let mut c = v?.get("config")?.as_object()?.clone();
        for k in ["name", "go_backwards"] {
            c.remove(k);
        }
        Some(c)
    };
    let (fwd, bwd) = (strip(config.get("layer")), strip(config.get("backward_layer")));
    if bwd.is_some() && fwd != bwd {
        missing.push(Untranslated {
            class: "Bidirectional".into(),
            name: name.into(),
            what: "a backward layer configured unlike the forward one".into(),
        });
    }
}

/// How many tensors a layer call returns: a recurrent layer with `return_state` gives its output and its final
/// states (two for an LSTM, one for a GRU or simple RNN; a bidirectional wrapper each direction's).
fn arity(class: &str, config: &serde_json::Map<String, Value>) -> usize {
    let states = |class: &str, config: &serde_json::Map<String, Value>| {
        if config.get("return_state").and_then(Value::as_bool) != Some(true) {
            return 0;
        }
        match class {
            "LSTM" => 2,
            "GRU" | "SimpleRNN" => 1,
            _ => 0,
        }
    };
    let inner = config.get("layer");
    1 + match (class, inner.and_then(|l| l.get("class_name")).and_then(Value::as_str)) {
        ("Bidirectional", Some(inner_class)) => 2 * states(inner_class, &obj(inner.unwrap_or(&Value::Null))),
        _ => states(class, config),
    }
}

/// A tensor reference of a functional model: (layer, node index, tensor index).
fn history(v: &Value) -> Option<(String, u64, u64)> {
    let h = v.pointer("/config/keras_history")?.as_array()?;
    Some((h.first()?.as_str()?.to_string(), h.get(1)?.as_u64()?, h.get(2)?.as_u64()?))
}

/// The model's text, unformatted.
struct Writer {
    dims: Vec<String>,
    lines: Vec<String>,
    taken: HashSet<String>,
    missing: Vec<Untranslated>,
}

impl Writer {
    /// `input x: [N, 784]` from a batch shape (`None` axes after the first become dims `T`, `T2`, …).
    fn input(&mut self, name: &str, config: &serde_json::Map<String, Value>) -> Option<String> {
        let shape = config.get("batch_shape").or_else(|| config.get("batch_input_shape"));
        let Some(Value::Array(axes)) = shape else {
            self.missing.push(Untranslated { class: "InputLayer".into(), name: name.into(), what: "no shape".into() });
            return None;
        };
        let mut dims = vec!["N".to_string()];
        for a in axes.iter().skip(1) {
            match a.as_u64() {
                Some(d) => dims.push(d.to_string()),
                None if a.is_null() => {
                    let d = if self.dims.len() == 1 { "T".to_string() } else { format!("T{}", self.dims.len()) };
                    self.dims.push(d.clone());
                    dims.push(d);
                }
                None => return None,
            }
        }
        let int = config.get("dtype").and_then(Value::as_str).is_some_and(|d| d.starts_with("int"));
        let id = ident(name, &mut self.taken);
        self.lines.push(format!("input {id}: {}[{}]", if int { "int" } else { "" }, dims.join(", ")));
        Some(id)
    }

    /// `let y = …` of one layer on `operands` (`let (y, y_state1, …) = …` for a layer of several outputs); the
    /// bindings, one per output, or `None` when it could not be translated.
    fn layer(
        &mut self,
        class: &str,
        name: &str,
        config: &serde_json::Map<String, Value>,
        operands: &[String],
        extra: &[String],
    ) -> Option<Vec<String>> {
        // Keras's `trainable = false` on a layer is nnc's `frozen (…)` around it (batch norm included: both
        // then use the moving statistics in training too).
        let frozen = config.get("trainable") == Some(&Value::Bool(false));
        let thawed: serde_json::Map<String, Value>;
        let config = if frozen {
            thawed = config.iter().filter(|(k, _)| *k != "trainable").map(|(k, v)| (k.clone(), v.clone())).collect();
            &thawed
        } else {
            config
        };
        let expr = if let Some((_, op)) = OPERATORS.iter().find(|(c, _)| *c == class) {
            Some(operands.join(op))
        } else if class == "Average" {
            Some(format!("({}) / {}", operands.join(" + "), operands.len()))
        } else if class == "Activation" && config.get("activation").and_then(Value::as_str) == Some("linear") {
            operands.first().cloned()
        } else {
            match layer_for(class, config).map(|d| d.operands) {
                Some(Operands::One) if operands.len() != 1 => {
                    self.missing.push(Untranslated {
                        class: class.into(),
                        name: name.into(),
                        what: format!("{} inputs to a one-input layer", operands.len()),
                    });
                    None
                }
                // The call's own arguments after the layer's options (`…, name = "l", initial_state = h)`).
                _ => call(class, name, config, operands, &mut self.missing).map(|text| match text.strip_suffix(')') {
                    Some(open) if !extra.is_empty() => format!("{open}, {})", extra.join(", ")),
                    _ => text,
                }),
            }
        }?;
        let expr = if frozen { format!("frozen ({expr})") } else { expr };
        let id = ident(name, &mut self.taken);
        let n = arity(class, config);
        if n == 1 {
            self.lines.push(format!("let {id} = {expr}"));
            return Some(vec![id]);
        }
        let mut ids = vec![id];
        ids.extend((1..n).map(|k| ident(&format!("{name}_state{k}"), &mut self.taken)));
        self.lines.push(format!("let ({}) = {expr}", ids.join(", ")));
        Some(ids)
    }
}

/// Python's `json` (which `model.to_json()` uses) writes non-finite floats as the bare words `NaN`,
/// `Infinity` and `-Infinity`, which are not JSON: outside strings they become the strings `"NaN"`, … (an
/// option holding one is then listed as untranslated, not misread).
fn python_json(text: &str) -> std::borrow::Cow<'_, str> {
    const WORDS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    if !WORDS.iter().any(|w| text.contains(w)) {
        return text.into();
    }
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(text.len() + 16), false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string && let Some(w) = WORDS.iter().find(|w| rest.starts_with(**w)) {
            out.push('"');
            out.push_str(w);
            out.push('"');
            rest = &rest[w.len()..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.into()
}

/// Translates a Keras model config (the JSON text) to `.nn` source (not yet formatted).
pub fn translate(json: &str, origin: &str) -> Result<String, ImportError> {
    let json = python_json(json);
    let root: Value = serde_json::from_str(&json).map_err(|e| ImportError::Invalid(format!("not JSON: {e}")))?;
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("");
    let config = root
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| ImportError::Invalid("not a Keras model config: no `config` object".into()))?;
    let layers = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| ImportError::Invalid("not a Keras model config: no `layers` list".into()))?;
    let name = config.get("name").and_then(Value::as_str).unwrap_or("model");
    let mut w = Writer { dims: vec!["N".into()], lines: Vec::new(), taken: HashSet::new(), missing: Vec::new() };
    let outputs = match class {
        "Sequential" => sequential(&mut w, layers, config),
        "Functional" | "Model" => functional(&mut w, layers, config),
        other => {
            return Err(ImportError::Invalid(format!("a Keras `{other}` is not a Sequential or Functional model")));
        }
    };
    if !w.missing.is_empty() {
        return Err(ImportError::Untranslated(w.missing));
    }
    let mut text = format!("// Imported from Keras by `nnc import` ({origin}).\ndim {}\n\n", w.dims.join(", "));
    let _ = writeln!(text, "/// The Keras model `{name}`.\nmodel {} {{", model_ident(name));
    // An output's own `let` becomes the `output` (an input given out as is keeps a `let`-free alias).
    // (Indexed: a config of many layers and outputs must not take quadratic time.)
    let mut lines = w.lines;
    let lets: HashMap<String, usize> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((l.strip_prefix("let ")?.split_once(' ')?.0.to_string(), i)))
        .collect();
    // The parts of a `let (o, h) = …` of a layer of several outputs are given out by name.
    let parts: HashSet<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("let (")?.split_once(')'))
        .flat_map(|(names, _)| names.split(", ").map(String::from))
        .collect();
    // Outputs keep Keras's order: an output's `let` becomes the `output` in place while that keeps the order;
    // from the first one that cannot (a tuple's part, an input, an earlier line), outputs are appended.
    let mut given = Vec::new();
    let mut last = None;
    let mut out: HashSet<String> = HashSet::new();
    for id in outputs {
        if !out.insert(id.clone()) {
            continue;
        }
        match lets.get(&id) {
            Some(&i) if given.is_empty() && last.is_none_or(|l| l < i) => {
                lines[i] = format!("output {}", &lines[i][4..]);
                last = Some(i);
            }
            Some(_) => given.push(format!("output {id}_out = {id}")),
            None if parts.contains(&id) => given.push(format!("output {id}")),
            None => given.push(format!("output {id}_out = {id}")),
        }
    }
    // A tuple's part nothing reads is named `_…` (nnc warns about an unused binding otherwise).
    let mut uses: HashMap<&str, usize> = HashMap::new();
    // (Words outside strings: `name = "l"` does not read `l`.)
    let code = lines.iter().chain(&given).flat_map(|l| l.split('"').step_by(2));
    for part in code {
        for word in part.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()) {
            *uses.entry(word).or_default() += 1;
        }
    }
    let unused: HashSet<String> = parts.iter().filter(|p| uses.get(p.as_str()) == Some(&1)).cloned().collect();
    for l in lines.iter_mut().filter(|l| l.starts_with("let (")) {
        if let Some((names, rest)) = l["let (".len()..].split_once(')') {
            let names: Vec<String> =
                names.split(", ").map(|n| if unused.contains(n) { format!("_{n}") } else { n.to_string() }).collect();
            *l = format!("let ({}){rest}", names.join(", "));
        }
    }
    lines.extend(given);
    for l in &lines {
        let _ = writeln!(text, "    {l}");
    }
    text.push_str("}\n");
    Ok(text)
}

fn obj(v: &Value) -> serde_json::Map<String, Value> {
    v.get("config").and_then(Value::as_object).cloned().unwrap_or_default()
}

fn layer_name(v: &Value) -> String {
    let n = v.get("name").or_else(|| v.pointer("/config/name"));
    n.and_then(Value::as_str).unwrap_or("?").to_string()
}

fn sequential(w: &mut Writer, layers: &[Value], config: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut x: Option<String> = None;
    let mut rest = layers;
    if let Some(first) = layers.first().filter(|l| l.get("class_name").and_then(Value::as_str) == Some("InputLayer")) {
        x = w.input(&layer_name(first), &obj(first));
        rest = &layers[1..];
    } else if let Some(shape) = config.get("build_input_shape").filter(|s| s.is_array()) {
        let mut c = serde_json::Map::new();
        c.insert("batch_shape".into(), shape.clone());
        x = w.input("x", &c);
    } else {
        w.missing.push(Untranslated { class: "Sequential".into(), name: "?".into(), what: "no input shape".into() });
    }
    for l in rest {
        let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?");
        let operands: Vec<String> = x.iter().cloned().collect();
        x = w.layer(class, &layer_name(l), &obj(l), &operands, &[]).and_then(|ids| ids.into_iter().next()).or(x);
    }
    x.into_iter().collect()
}

/// `input_layers`/`output_layers`: one `[name, 0, k]` or a list of them, as (layer, output index).
fn endpoints(v: Option<&Value>) -> Vec<(String, u64)> {
    let one = |e: &Value| Some((e.get(0)?.as_str()?.to_string(), e.get(2).and_then(Value::as_u64).unwrap_or(0)));
    match v.and_then(Value::as_array) {
        Some(xs) if xs.first().is_some_and(Value::is_string) => v.and_then(one).into_iter().collect(),
        Some(xs) => xs.iter().filter_map(one).collect(),
        None => Vec::new(),
    }
}

fn functional(w: &mut Writer, layers: &[Value], config: &serde_json::Map<String, Value>) -> Vec<String> {
    // (layer, output index) → binding.
    let mut ids: HashMap<(String, u64), String> = HashMap::new();
    // Layers already listed as untranslated: what reads them is not listed again.
    let mut failed: HashSet<String> = HashSet::new();
    for l in layers {
        let (class, name) = (l.get("class_name").and_then(Value::as_str).unwrap_or("?"), layer_name(l));
        let miss = |what: &str| Untranslated { class: class.into(), name: name.clone(), what: what.into() };
        if class == "InputLayer" {
            if let Some(id) = w.input(&name, &obj(l)) {
                ids.insert((name.clone(), 0), id);
            }
            continue;
        }
        let nodes = l.get("inbound_nodes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let [node] = nodes else {
            w.missing.push(miss(&format!("called {} times (nnc layers are applied once)", nodes.len())));
            failed.insert(name.clone());
            continue;
        };
        let kwargs = node.get("kwargs").and_then(Value::as_object).into_iter().flatten();
        // Call arguments that are nnc options (`initial_state = h0`), or `None` for one nnc has not.
        let extra: Option<Vec<String>> = kwargs
            .filter_map(|(key, v)| match (key.as_str(), v) {
                // `training` is recorded on every layer whose call takes it (`false` when the model was
                // built), but a functional model's call context overrides it (keras/src/models/functional.py
                // `operation_fn`): nnc's train/inference modes are the same.
                ("training", _) | (_, Value::Null) | ("use_causal_mask", Value::Bool(false)) => None,
                ("use_causal_mask", Value::Bool(true)) => Some(Some("causal = true".to_string())),
                ("initial_state", Value::Array(states)) => {
                    let ids: Option<Vec<&String>> = states
                        .iter()
                        .map(|t| history(t).filter(|h| h.1 == 0).and_then(|(src, _, k)| ids.get(&(src, k))))
                        .collect();
                    Some(ids.map(|ids| match ids.as_slice() {
                        [one] => format!("initial_state = {one}"),
                        many => format!(
                            "initial_state = ({})",
                            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }))
                }
                _ => Some(None),
            })
            .collect();
        let Some(mut extra) = extra else {
            w.missing.push(miss("keyword arguments to the call"));
            failed.insert(name.clone());
            continue;
        };
        let args = node.get("args").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let tensors: Vec<&Value> = match args {
            [Value::Array(xs)] => xs.iter().collect(),
            xs => xs.iter().collect(),
        };
        let tensors_len = tensors.len();
        let mut operands = Vec::new();
        for t in tensors {
            match history(t) {
                Some((src, 0, k)) => match ids.get(&(src.clone(), k)) {
                    Some(id) => operands.push(id.clone()),
                    None if failed.contains(&src) => {}
                    None => w.missing.push(miss(&format!("an input from `{src}`, which is not defined before it"))),
                },
                _ => w.missing.push(miss("an input that is not from a layer's first call")),
            }
        }
        let complete = operands.len() == tensors_len;
        // Attention's `(query, value[, key])`: nnc's `kv`, one tensor for both keys and values.
        if class == "MultiHeadAttention" && operands.len() > 1 {
            if operands.len() > 2 && operands[2] != operands[1] {
                w.missing.push(miss("keys that are not the values"));
                failed.insert(name.clone());
                continue;
            }
            if operands[1] != operands[0] {
                extra.push(format!("kv = {}", operands[1]));
            }
            operands.truncate(1);
        }
        let id = if complete { w.layer(class, &name, &obj(l), &operands, &extra) } else { None };
        match id {
            Some(outs) => ids.extend(outs.into_iter().enumerate().map(|(k, id)| ((name.clone(), k as u64), id))),
            None => drop(failed.insert(name.clone())),
        }
    }
    endpoints(config.get("output_layers")).into_iter().filter_map(|o| ids.get(&o).cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(class: &str, config: Value) -> Option<&'static str> {
        layer_for(class, config.as_object().unwrap()).map(|l| l.name)
    }

    #[test]
    fn classes_are_found_through_the_layer_table() {
        assert_eq!(layer("Dense", serde_json::json!({})), Some("dense"));
        assert_eq!(layer("MaxPooling1D", serde_json::json!({})), Some("max_pool"));
        assert_eq!(layer("GlobalAveragePooling1D", serde_json::json!({})), Some("global_avg_pool"));
        assert_eq!(layer("Activation", serde_json::json!({"activation": "sigmoid"})), Some("sigmoid"));
        assert_eq!(layer("Activation", serde_json::json!({"activation": "gelu"})), Some("gelu"));
        // Not an `Activation('…')` entry, but an activation layer of that name.
        assert_eq!(layer("Activation", serde_json::json!({"activation": "relu"})), Some("relu"));
        assert_eq!(layer("ReLU", serde_json::json!({"max_value": 6.0})), Some("relu"));
        assert_eq!(layer("PositionEmbedding", serde_json::json!({})), Some("positional_embedding"));
        assert_eq!(layer("ActivityRegularization", serde_json::json!({})), None);
        assert_eq!(layer("Activation", serde_json::json!({"activation": "no_such"})), None);
    }

    #[test]
    fn options_are_written_in_their_kind_and_defaults_left_out() {
        let mut missing = Vec::new();
        let config = serde_json::json!({
            "filters": 8, "kernel_size": [3, 3], "strides": [2, 1], "padding": "same", "dilation_rate": [1, 1],
            "use_bias": false, "activation": "linear", "kernel_initializer": {"class_name": "HeNormal", "config": {}},
            "kernel_regularizer": null, "data_format": "channels_last", "groups": 1
        });
        let text = call("Conv2D", "c", config.as_object().unwrap(), &["x".into()], &mut missing);
        assert_eq!(missing, []);
        assert_eq!(
            text.as_deref(),
            Some(r#"conv2d(x, 8, 3, stride = [2, 1], padding = same, bias = false, init = he_normal, name = "c")"#)
        );
        let odd = serde_json::json!({"units": 4, "data_format": "channels_first", "dtype": "mixed_float16"});
        assert_eq!(call("Dense", "d", odd.as_object().unwrap(), &["x".into()], &mut missing), None);
        let whats: Vec<&str> = missing.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "option `data_format` = \"channels_first\"",
                "option `dtype` = \"mixed_float16\" (nnc computes in float32)"
            ]
        );
    }

    /// A functional config of `Input(4)` → `class` called with `kwargs`.
    fn one_layer(class: &str, config: Value, kwargs: Value) -> Result<String, ImportError> {
        let x = serde_json::json!({"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}});
        let model = serde_json::json!({"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 4]}, "inbound_nodes": []},
            {"class_name": class, "name": "l", "config": config, "inbound_nodes": [{"args": [x], "kwargs": kwargs}]}
        ], "input_layers": [["x", 0, 0]], "output_layers": [["l", 0, 0]]}});
        translate(&model.to_string(), "test")
    }

    #[test]
    fn the_recorded_training_flag_is_the_call_context_s_not_an_argument() {
        // Keras records `training: false` on every Dropout/RNN/BatchNorm call of a model it builds.
        let text = one_layer("Dropout", serde_json::json!({"rate": 0.5}), serde_json::json!({"training": false}));
        assert!(text.as_ref().is_ok_and(|t| t.contains("dropout(x, 0.5")), "{text:?}");
        let text = one_layer("Dense", serde_json::json!({"units": 3}), serde_json::json!({"mask": null}));
        assert!(text.as_ref().is_ok_and(|t| t.contains("dense(x, 3")), "{text:?}");
        // Any other argument given is still refused.
        let text = one_layer("Dense", serde_json::json!({"units": 3}), serde_json::json!({"mask": [1, 0]}));
        assert!(matches!(text, Err(ImportError::Untranslated(_))), "{text:?}");
    }

    fn tensor(layer: &str, k: u64) -> Value {
        serde_json::json!({"class_name": "__keras_tensor__", "config": {"keras_history": [layer, 0, k]}})
    }

    #[test]
    fn layers_of_several_outputs_bind_a_tuple_and_outputs_keep_their_order() {
        let lstm = serde_json::json!({"units": 3, "return_state": true});
        let h0 = serde_json::json!({"initial_state": [tensor("h0", 0), tensor("h0", 0)]});
        let c = serde_json::json!({"initial_state": [tensor("l", 2)], "training": false});
        let model = serde_json::json!({"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 5, 2]}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "h0", "config": {"batch_shape": [null, 3]}, "inbound_nodes": []},
            {"class_name": "LSTM", "name": "l", "config": lstm,
             "inbound_nodes": [{"args": [tensor("x", 0)], "kwargs": h0}]},
            {"class_name": "GRU", "name": "g", "config": {"units": 3, "trainable": false},
             "inbound_nodes": [{"args": [tensor("x", 0)], "kwargs": c}]},
            {"class_name": "MultiHeadAttention", "name": "a", "config": {"num_heads": 2, "key_dim": 4},
             "inbound_nodes": [{"args": [tensor("x", 0), tensor("x", 0)], "kwargs": {"use_causal_mask": true}}]}
        ], "input_layers": [["x", 0, 0], ["h0", 0, 0]], "output_layers": [["g", 0, 0], ["l", 0, 1], ["a", 0, 0]]}});
        let text = translate(&model.to_string(), "test").unwrap();
        let body: Vec<&str> = text.lines().skip(5).map(str::trim).collect();
        assert!(body[2].starts_with("let (_l, l_state1, l_state2) = lstm(x, 3, state = true"), "{text}");
        assert!(body[2].ends_with(r#"name = "l", initial_state = (h0, h0))"#), "{text}");
        assert!(body[3].starts_with("output g = frozen (gru(x, 3") && body[3].ends_with("initial_state = l_state2))"));
        // `a` is written before the outputs that cannot be rewritten in place, which follow in Keras's order.
        assert!(body[4].starts_with("let a = multi_head_attention(x, 2, 4") && body[4].contains("causal = true"));
        assert_eq!(&body[5..], ["output l_state1", "output a_out = a", "}"], "{text}");
    }

    #[test]
    fn attention_keys_other_than_the_values_are_refused() {
        let model = serde_json::json!({"class_name": "Functional", "config": {"name": "m", "layers": [
            {"class_name": "InputLayer", "name": "q", "config": {"batch_shape": [null, 5, 4]}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "v", "config": {"batch_shape": [null, 5, 4]}, "inbound_nodes": []},
            {"class_name": "MultiHeadAttention", "name": "a", "config": {"num_heads": 2, "key_dim": 4},
             "inbound_nodes": [{"args": [tensor("q", 0), tensor("v", 0)], "kwargs": {}}]},
            {"class_name": "MultiHeadAttention", "name": "b", "config": {"num_heads": 2, "key_dim": 4},
             "inbound_nodes": [{"args": [tensor("q", 0), tensor("v", 0), tensor("q", 0)], "kwargs": {}}]}
        ], "input_layers": [["q", 0, 0], ["v", 0, 0]], "output_layers": [["a", 0, 0], ["b", 0, 0]]}});
        let Err(ImportError::Untranslated(missing)) = translate(&model.to_string(), "test") else { panic!() };
        let names: Vec<(&str, &str)> = missing.iter().map(|m| (m.name.as_str(), m.what.as_str())).collect();
        assert_eq!(names, [("b", "keys that are not the values")]);
    }

    #[test]
    fn python_s_non_finite_floats_are_read_as_strings() {
        let text = r#"{"a": -Infinity, "b": [NaN, Infinity], "c": "say \"NaN\" Infinity", "d": 1.5}"#;
        let v: Value = serde_json::from_str(&python_json(text)).unwrap();
        assert_eq!(v["a"], "-Infinity");
        assert_eq!(v["b"], serde_json::json!(["NaN", "Infinity"]));
        assert_eq!(v["c"], "say \"NaN\" Infinity");
        assert_eq!(v["d"], 1.5);
        assert!(matches!(python_json("{\"a\": 1}"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn identifiers_avoid_keywords_and_clashes() {
        let mut taken = HashSet::new();
        assert_eq!(ident("input", &mut taken), "input_out");
        assert_eq!(ident("2nd/conv", &mut taken), "l_2nd_conv");
        assert_eq!(ident("2nd-conv", &mut taken), "l_2nd_conv_1");
        assert_eq!(model_ident("my_model-2"), "MyModel2");
        assert_eq!(model_ident("3d"), "Keras3d");
    }
}
