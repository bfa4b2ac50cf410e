use super::*;

fn fmt(src: &str) -> String {
    match format_source(src) {
        Ok(s) => s,
        Err(e) => panic!("not formatted: {e}\n{src}"),
    }
}

/// Formats and checks the formatter's two promises on one input.
fn check(src: &str) -> String {
    let once = fmt(src);
    assert_eq!(fmt(&once), once, "not idempotent:\n{once}");
    once
}

#[test]
fn normalises_spacing_and_indentation() {
    let src = "dim N\nmodel M(a=1){\ninput x:[N,28,28,1]\n  let h=x|>conv2d( 16,kernel=5 ,padding=same)|>relu\noutput \
        y:[N,a]=dense(flatten(h),a)\n}\n";
    let want = "dim N\nmodel M(a = 1) {\n    input x: [N, 28, 28, 1]\n    let h = x |> conv2d(16, kernel = 5, padding \
        = same) |> relu\n    output y: [N, a] = dense(flatten(h), a)\n}\n";
    assert_eq!(check(src), want);
}

#[test]
fn continuation_lines_and_headers() {
    let src = "block b(x: [N, H, W, C], k: int)\n-> [N, H, W, k] {\nlet y = x\n|> conv2d(k, kernel = 3, padding = \
        same)\n// why\n|> relu\nreturn y\n}\n";
    let want = "block b(x: [N, H, W, C], k: int)\n        -> [N, H, W, k] {\n    let y = x\n        |> conv2d(k, \
        kernel = 3, padding = same)\n        // why\n        |> relu\n    return y\n}\n";
    assert_eq!(check(src), want);
}

#[test]
fn unary_minus_slices_ranges_and_maps() {
    let src = "dim N\nmodel M {\ninput x: [N, 4, 3]\nlet a = x[ : , -1 ]\nlet b = x[:, 0 : 2]\nlet c = reshape(x, \
        [N,-1])*-2\noutput y = a-b[:, 0]+c[:,0:3]\n}\ntrain t {\nmodel = M()\ndata = csv(\"f.csv\", x = 0 .. 12, \
            normalize = { x : zscore })\nclass_weight={0:87,1:13}\nloss = mse(y, y)\n}\n";
    let out = check(src);
    assert!(out.contains("let a = x[:, -1]\n"), "{out}");
    assert!(out.contains("let b = x[:, 0:2]\n"), "{out}");
    assert!(out.contains("let c = reshape(x, [N, -1]) * -2\n"), "{out}");
    assert!(out.contains("output y = a - b[:, 0] + c[:, 0:3]\n"), "{out}");
    assert!(out.contains("x = 0..12, normalize = {x: zscore})"), "{out}");
    // Train fields line up on the longest key.
    assert!(out.contains("    model        = M()\n"), "{out}");
    assert!(out.contains("    class_weight = {0: 87, 1: 13}\n"), "{out}");
}

#[test]
fn comments_blank_lines_and_trailing_columns() {
    let src = "\n\n// head\n\n\n\ndim N   \n/// Doc.\nmodel M {\n    input x: [N, 2]\n\n\n    output y = x |> \
        dense(3)      // : [N, 3]\n      // last\n}\n\n\n";
    let want = "// head\n\ndim N\n/// Doc.\nmodel M {\n    input x: [N, 2]\n\n    output y = x |> dense(3)      // : \
        [N, 3]\n    // last\n}\n";
    assert_eq!(check(src), want);
}

#[test]
fn multi_line_calls_indent_from_their_opening_line() {
    let src = "dim N\nmodel M {\ninput x: [N, 2]\nlet h = x\n|> dense(\n3,\nactivation = relu,\n)\noutput y = \
        concat(\nh,\nh)\n}\n";
    let want = "dim N\nmodel M {\n    input x: [N, 2]\n    let h = x\n        |> dense(\n            3,\n            \
        activation = relu,\n        )\n    output y = concat(\n        h,\n        h)\n}\n";
    assert_eq!(check(src), want);
}

#[test]
fn keeps_crlf_and_bodies_on_one_line() {
    let src = "dim N\r\nmodel M { input x: [N, 2]  output y=x }\r\n";
    assert_eq!(check(src), "dim N\r\nmodel M { input x: [N, 2] output y = x }\r\n");
}

#[test]
fn files_with_syntax_errors_are_returned_unchanged() {
    let src = "model M {\n  let = \n}\n";
    assert!(matches!(format_source(src), Err(FormatError::SyntaxErrors(_))));
    assert_eq!(format(src), src);
}

#[test]
fn tokenizer_keeps_every_byte_of_code() {
    let src = "let x = 1.5e-3 + 0..784 // c\n\"s\\\"\" |> f";
    let toks = tokenize(src);
    let texts: Vec<&str> = toks.iter().map(|t| t.text(src)).collect();
    assert_eq!(texts, ["let", "x", "=", "1.5e-3", "+", "0", "..", "784", "// c", "\n", "\"s\\\"\"", "|>", "f"]);
}

/// Every `.nn` file of the repository that parses: formatting keeps its
/// meaning (the tree is equal modulo spans) and is idempotent.
#[test]
fn formats_every_repository_file_safely() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for dir in ["examples", "stdlib", "tests/check_ok", "tests/diagnostics", "tests/fuzz_regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "nn"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(src) = std::fs::read_to_string(&path) else { continue };
            let (before, diags) = crate::parse(&src, FileId(0));
            let must_format = matches!(dir, "examples" | "stdlib" | "tests/check_ok");
            if !diags.is_empty() {
                assert!(!must_format, "{} does not parse", path.display());
                assert_eq!(format(&src), src, "{}: unparseable files stay as they are", path.display());
                continue;
            }
            let once = format_source(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (after, diags) = crate::parse(&once, FileId(0));
            assert!(diags.is_empty(), "{}: formatted text does not parse: {diags:?}\n{once}", path.display());
            assert!(same_modulo_spans(&before, &after), "{}: formatting changed the tree\n{once}", path.display());
            assert_eq!(format(&once), once, "{}: formatting is not idempotent", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} files checked");
}

/// The layout depends only on the tokens and the line breaks: re-spacing and
/// re-indenting a file at random formats to the same text (up to the gap
/// before trailing comments, which keep their column when they can).
#[test]
fn layout_ignores_original_spacing_and_indentation() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seed = 0x2545_f491_u64;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let strip_comment_gaps = |s: &str| -> String {
        s.lines()
            .map(|l| match l.find("//") {
                Some(i) if !l[..i].trim().is_empty() => format!("{} {}", l[..i].trim_end(), &l[i..]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for dir in ["examples", "stdlib", "tests/check_ok"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("repository directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|x| x != "nn") {
                continue;
            }
            let src = std::fs::read_to_string(&path).expect("read");
            let toks = tokenize(&src);
            let mut mangled = String::new();
            let mut at_line_start = true;
            for t in &toks {
                if t.kind == TokenKind::Newline {
                    mangled.push('\n');
                    at_line_start = true;
                    continue;
                }
                let spaces = if at_line_start { rand(8) } else { 1 + rand(2) };
                mangled.push_str(&" ".repeat(spaces as usize));
                mangled.push_str(t.text(&src));
                at_line_start = false;
            }
            let a = strip_comment_gaps(&fmt(&src));
            let b = strip_comment_gaps(&fmt(&mangled));
            assert_eq!(a, b, "{}: layout depends on the original spacing", path.display());
        }
    }
}
