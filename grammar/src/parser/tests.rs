use super::*;

fn parse_ok(src: &str) -> File {
    let (file, diags) = parse(src, FileId(0));
    assert!(diags.is_empty(), "unexpected diagnostics: {diags:#?}");
    file
}

fn parse_err(src: &str) -> Vec<Diagnostic> {
    let (_, diags) = parse(src, FileId(0));
    assert!(!diags.is_empty(), "expected a syntax error in {src:?}");
    diags
}

#[test]
fn parses_the_first_look_example() {
    let src = r#"
// The workshop's two-layer ConvNet for 28×28 digits.
dim N

/// A ConvNet.
model ConvNet(classes = 10) {
    input images: [N, 28, 28, 1]
    input labels: int[N]
    let features = images
        |> conv2d(16, kernel = 5, padding = same) |> batch_norm |> relu |> max_pool(2)
        |> flatten
    output logits: [N, classes] = dense(features, classes)
}

train mnist {
    model     = ConvNet()
    data      = idx(images = "data/a.gz", labels = "data/b.gz")
    loss      = cross_entropy(logits, labels)
    optimizer = adam(lr = 1e-3)
    validate  = split(0.1)
    metrics   = [accuracy(logits, labels)]
    class_weight = {0: 87, 1: 13}
}
"#;
    let file = parse_ok(src);
    assert_eq!(file.items.len(), 3);
    let Item::Model(m) = &file.items[1] else { panic!("not a model") };
    assert_eq!(m.name.name, "ConvNet");
    assert_eq!(m.doc.as_deref(), Some("A ConvNet."));
    assert_eq!(m.body.len(), 4);
    let Stmt::Let(l) = &m.body[2] else { panic!("not a let") };
    // The pipe is left-associative: the outermost stage is `flatten`.
    let ExprKind::Pipe { stage, .. } = &l.value.kind else { panic!("not a pipe") };
    assert_eq!(stage.callee.name, "flatten");
    assert!(!stage.parens);
    let Item::Train(t) = &file.items[2] else { panic!("not a train block") };
    assert_eq!(t.items.len(), 7);
}

#[test]
fn pipe_binds_looser_than_arithmetic() {
    let file = parse_ok("model M { input a: [N, 2]\n output y = a / 255 |> relu }");
    let Item::Model(m) = &file.items[0] else { panic!() };
    let Stmt::Output { value: Some(v), .. } = &m.body[1] else { panic!() };
    let ExprKind::Pipe { input, .. } = &v.kind else { panic!("pipe should be outermost: {v:?}") };
    assert!(matches!(input.kind, ExprKind::Binary { op: BinOp::Div, .. }));
}

#[test]
fn parses_blocks_tuples_slices_and_steps() {
    let src = r#"
use std.blocks
use "layers/common.nn"
dim N, T = 35
block res(x: [N, H, W, C], filters: int, project: bool = false) -> [N, H, W, filters] {
    if project { let y = x } else { let y = x }
    return x
}
model M {
    input x: [N, T, 2]
    let (o, h, c) = lstm(x, 3, state = true)
    let b = bidirectional(x, lstm(3, sequences = true))
    let last = o[:, -1]
    let r = reshape(x, [N, -1])
    output y = (o, h)
}
train gan {
    data  = idx(images = "x.gz")
    let real = reshape((images - 127.5) / 127.5, [N, 784])
    step discriminator: minimize binary_cross_entropy(D(real), 1) over D with adam(lr = 2e-4, beta1 = 0.5)
    step generator times 2: minimize binary_cross_entropy(D(G(noise = normal([N, 100]))), 1)
        over G with adam(lr = 2e-4)
    data2 = csv("f.csv", x = 0..64, label = column(1) > 0)
}
"#;
    let file = parse_ok(src);
    assert_eq!(file.items.len(), 6);
    let Item::Train(t) = &file.items[5] else { panic!() };
    let TrainItem::Step(s) = &t.items[3] else { panic!() };
    assert!(s.times.is_some());
    assert_eq!(s.over[0].name, "G");
}

#[test]
fn keywords_are_not_names_but_train_keys_may_be() {
    parse_ok("train t { model = M() }");
    parse_err("model M { let let = 3 }");
}

#[test]
fn unclosed_call_points_at_the_opening_paren() {
    let src = "model M {\n  input x: [N, 3]\n  output y = dense(x, 3\n}\n";
    let diags = parse_err(src);
    let d = diags.iter().find(|d| d.code == Code::Unclosed).expect("an E0002");
    assert_eq!(&src[d.primary.span.range()], "(");
    assert!(d.message.contains("expected `)`"), "{}", d.message);
}

#[test]
fn mismatched_closer_names_both_sides() {
    let src = "model M { output y = dense(x, 3] }";
    let diags = parse_err(src);
    let d = &diags[0];
    assert_eq!(d.code, Code::Unclosed);
    assert_eq!(&src[d.primary.span.range()], "]");
    assert_eq!(&src[d.secondary[0].span.range()], "(");
}

#[test]
fn messages_use_our_words_not_rule_names() {
    let src = "model M {\n  let h x\n}\n";
    let d = &parse_err(src)[0];
    assert_eq!(d.code, Code::SyntaxError);
    assert!(d.message.contains("`=`"), "{}", d.message);
    assert!(!d.message.contains("let_stmt") && !d.message.contains("Rule"), "{}", d.message);
}

#[test]
fn recovers_per_declaration() {
    let src = "model A {\n  let = 3\n}\nmodel B {\n  input x: [N, 2]\n  output y = x\n}\nmodel C { let }\n";
    let (file, diags) = parse(src, FileId(0));
    assert_eq!(diags.len(), 2, "{diags:#?}");
    assert_eq!(file.items.len(), 1);
}

#[test]
fn huge_integer_is_an_invalid_literal() {
    let diags = parse_err("dim N = 99999999999999999999999");
    assert_eq!(diags[0].code, Code::InvalidLiteral);
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let src = format!("model M {{ output y = {}x{} }}", "(".repeat(5000), ")".repeat(5000));
    let diags = parse_err(&src);
    assert!(diags.iter().any(|d| d.message.contains("nested too deeply")));
}

#[test]
fn doc_comments_attach_to_indented_declarations() {
    let file = parse_ok("/// Doc.\n  model M { input x: [N] output y = x }\n");
    match &file.items[0] {
        Item::Model(m) => assert_eq!(m.doc.as_deref(), Some("Doc.")),
        other => panic!("{other:?}"),
    }
}

/// Brackets up to the limit parse on a 2 MiB stack, even in a debug build
/// (pest gives up when 64 KB of stack remain; the limit is well inside).
#[test]
fn nesting_up_to_the_limit_parses_on_a_small_stack() {
    for (open, close) in [("relu(", ")"), ("(", ")"), ("[", "]"), ("dense(", ", 4)"), ("{a: ", "}")] {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let n = MAX_NESTING - 2; // the model's braces count too
                let src = format!("model M {{ output y = {}x{} }}", open.repeat(n), close.repeat(n));
                let (_, d) = parse(&src, FileId(0));
                assert!(d.is_empty(), "{open}: {d:?}");
                let src = format!("model M {{ output y = {}x{} }}", open.repeat(n + 2), close.repeat(n + 2));
                let (_, d) = parse(&src, FileId(0));
                assert!(d.iter().any(|d| d.message.contains("nested too deeply")), "{open}: {d:?}");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

/// Chains nest the tree without brackets: a 100,000-stage pipe, sum or
/// `else if` chain is cut at `MAX_DEPTH` with one syntax error, on a small
/// stack (building, cutting and dropping must not recurse per link).
#[test]
fn long_chains_are_cut_at_the_depth_limit_on_a_small_stack() {
    let model = |e: String| format!("model M {{ input x: [4]\n output y = {e} }}");
    let cases = vec![
        model(format!("x{}", " |> relu".repeat(30_000))),
        model(vec!["x"; 30_000].join(" + ")),
        model(vec!["x"; 30_000].join(" * ")),
        model(format!("x{}", "[0]".repeat(30_000))),
        format!(
            "model M(k = 1) {{ if k == 0 {{ output y = 1 }}{} }}",
            " else if k == 0 { output y = 1 }".repeat(30_000)
        ),
    ];
    for src in cases {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let (file, d) = parse(&src, FileId(0));
                let deep: Vec<_> = d.iter().filter(|d| d.message.contains("nested too deeply")).collect();
                assert_eq!(deep.len(), 1, "{d:?}");
                drop(file);
            })
            .unwrap()
            .join()
            .unwrap();
    }
    // Just inside the limit nothing is cut.
    let src = model(format!("x{}", " |> relu".repeat(MAX_DEPTH - 4)));
    assert!(parse(&src, FileId(0)).1.is_empty());
}
