//! Source text → AST, with syntax errors in our own words.
//!
//! Three passes, each cheap:
//! 1. a delimiter scan finds unclosed and mismatched brackets, so their
//!    errors point at the opening bracket ("expected `)` to close the call
//!    opened here") instead of wherever pest gave up;
//! 2. pest parses the whole file; on success the AST is built directly;
//! 3. on failure the file is cut at top-level declarations (a keyword at the
//!    start of a line) and each piece is parsed on its own, so one typo does
//!    not hide the rest of the file.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../nn.pest"]
struct NnParser;

/// Deeper bracket nesting than this is rejected before parsing: it would
/// only come from generated or corrupted input, and recursive descent needs
/// stack. pest spends ~13 KB per level of calls in a debug build and stops
/// (with a parse error) when 64 KB of stack remain, so on a 2 MiB thread it
/// manages ~140 levels; 100 leaves room for the passes after it.
pub const MAX_NESTING: usize = 100;

/// Parses `source`; never fails and never panics. Diagnostics carry `file`.
pub fn parse(source: &str, file: FileId) -> (File, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let delimiter_errors = scan_delimiters(source, file);
    let poisoned: Vec<Span> = delimiter_errors.iter().map(|d| d.primary.span).collect();
    diags.extend(delimiter_errors);

    if poisoned.is_empty() {
        // On an error, fall through to per-declaration recovery.
        if let Ok(mut pairs) = NnParser::parse(Rule::file, source) {
            let mut b = Builder { src: source, base: 0, file, diags: &mut diags };
            let file_pair = pairs.next();
            let mut items = file_pair.map(|p| b.items(p)).unwrap_or_default();
            depth::limit_depth(&mut items, file, &mut diags);
            return (File { items }, diags);
        }
    }

    // Expected-token detail costs time, so it is only collected on this path.
    pest::set_error_detail(true);
    let mut items = Vec::new();
    for (start, end) in split_items(source) {
        let chunk = &source[start..end];
        if chunk.trim().is_empty() {
            continue;
        }
        let chunk_span = Span::new(start, end);
        // A chunk that holds a delimiter error already has its diagnostic.
        let has_delim_error =
            poisoned.iter().any(|s| chunk_span.contains(s.start as usize) && (s.start as usize) < end);
        // pest recurses once per bracket level: a chunk nested too deeply is
        // not parsed at all (its diagnostic is the scan's).
        if bracket_depth(chunk) > MAX_NESTING {
            if !has_delim_error {
                diags.push(too_deep(file, Span::new(start, start)));
            }
            continue;
        }
        match NnParser::parse(Rule::file, chunk) {
            Ok(mut pairs) => {
                let mut b = Builder { src: source, base: start, file, diags: &mut diags };
                if let Some(p) = pairs.next() {
                    items.extend(b.items(p));
                }
            }
            Err(e) if !has_delim_error => diags.push(translate_error(e, source, start, file)),
            Err(_) => {}
        }
    }
    pest::set_error_detail(false);
    depth::limit_depth(&mut items, file, &mut diags);
    (File { items }, diags)
}

fn too_deep(file: FileId, span: Span) -> Diagnostic {
    Diagnostic::new(Code::SyntaxError, file, span, "brackets nested too deeply")
        .with_label(format!("more than {MAX_NESTING} levels of nesting"))
        .with_help("split the expression with `let` bindings")
}

/// The deepest bracket nesting of `text`, strings and comments skipped
/// (closers without an opener are ignored).
fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for mark in marks(text) {
        match mark {
            Mark::Bracket(b'(' | b'[' | b'{', _) => {
                depth += 1;
                max = max.max(depth);
            }
            Mark::Bracket(..) => depth = depth.saturating_sub(1),
            Mark::UnterminatedString(..) => {}
        }
    }
    max
}

/// What the bracket scans read of a source.
enum Mark {
    /// A bracket byte and its offset.
    Bracket(u8, usize),
    /// A string not closed on its line: its start and where the line ends.
    UnterminatedString(usize, usize),
}

/// The brackets of `text` in order, skipping `//` comments and strings
/// (which may not span lines), and the strings left open.
fn marks(text: &str) -> impl Iterator<Item = Mark> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= bytes.len() || bytes[i] != b'"' {
                        return Some(Mark::UnterminatedString(start, i.min(bytes.len())));
                    }
                    i += 1;
                }
                c @ (b'(' | b'[' | b'{' | b')' | b']' | b'}') => {
                    i += 1;
                    return Some(Mark::Bracket(c, i - 1));
                }
                _ => i += 1,
            }
        }
        None
    })
}

/// Byte ranges of top-level declarations: cut before every line that starts
/// (in column 0) with `use`, `dim`, `model`, `block`, `train`, or a `///` doc
/// comment directly above one.
fn split_items(source: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut offset = 0;
    let mut doc_start: Option<usize> = None;
    for line in source.split_inclusive('\n') {
        if line.starts_with("///") {
            doc_start.get_or_insert(offset);
        } else {
            let word: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if matches!(word.as_str(), "use" | "dim" | "model" | "block" | "train") && offset > 0 {
                starts.push(doc_start.unwrap_or(offset));
            }
            doc_start = None;
        }
        offset += line.len();
    }
    starts.dedup();
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(source.len());
        if s < e {
            out.push((s, e));
        }
    }
    out
}

fn opener_name(c: u8) -> &'static str {
    match c {
        b'(' => "the call or group",
        b'[' => "the list or shape",
        _ => "the block",
    }
}

fn closer_of(c: u8) -> u8 {
    match c {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

/// Finds unbalanced brackets, skipping strings and comments.
fn scan_delimiters(source: &str, file: FileId) -> Vec<Diagnostic> {
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut diags = Vec::new();
    let mut too_deep_reported = false;
    for mark in marks(source) {
        match mark {
            Mark::UnterminatedString(start, end) => diags.push(
                Diagnostic::new(Code::InvalidLiteral, file, Span::new(start, end), "unterminated string")
                    .with_label("this string is not closed on its line")
                    .with_help("add the closing `\"`"),
            ),
            Mark::Bracket(c @ (b'(' | b'[' | b'{'), i) => {
                stack.push((c, i));
                if stack.len() > MAX_NESTING && !too_deep_reported {
                    too_deep_reported = true;
                    diags.push(too_deep(file, Span::new(i, i + 1)));
                }
            }
            Mark::Bracket(c, i) => match stack.pop() {
                Some((open, _)) if closer_of(open) == c => {}
                Some((open, at)) => {
                    stack.push((open, at));
                    if let Some(pos) = stack.iter().rposition(|(o, _)| closer_of(*o) == c) {
                        // `c` closes an outer construct: everything opened since is unclosed.
                        for &(inner, inner_at) in stack[pos + 1..].iter().rev() {
                            let close = closer_of(inner) as char;
                            diags.push(
                                Diagnostic::new(
                                    Code::Unclosed,
                                    file,
                                    Span::new(inner_at, inner_at + 1),
                                    format!("expected `{close}` to close {} opened here", opener_name(inner)),
                                )
                                .with_label(format!("`{}` is never closed", inner as char))
                                .with_secondary(
                                    file,
                                    Span::new(i, i + 1),
                                    format!("`{}` found here, before the `{close}`", c as char),
                                ),
                            );
                        }
                        stack.truncate(pos);
                    } else {
                        diags.push(
                            Diagnostic::new(
                                Code::Unclosed,
                                file,
                                Span::new(i, i + 1),
                                format!("mismatched `{}`: expected `{}`", c as char, closer_of(open) as char),
                            )
                            .with_label(format!("expected `{}` here", closer_of(open) as char))
                            .with_secondary(
                                file,
                                Span::new(at, at + 1),
                                format!("{} opened here", opener_name(open)),
                            ),
                        );
                        // Take the wrong closer as closing the construct, so one slip gives one error.
                        stack.pop();
                    }
                }
                None => diags.push(
                    Diagnostic::new(Code::Unclosed, file, Span::new(i, i + 1), format!("unexpected `{}`", c as char))
                        .with_label("this closes nothing that was opened"),
                ),
            },
        }
    }
    for (open, at) in stack.into_iter().rev() {
        let close = closer_of(open) as char;
        diags.push(
            Diagnostic::new(
                Code::Unclosed,
                file,
                Span::new(at, at + 1),
                format!("expected `{close}` to close {} opened here", opener_name(open)),
            )
            .with_label(format!("`{}` opened here is never closed", open as char))
            .with_secondary(
                file,
                Span::new(source.len(), source.len()),
                format!("file ends before the `{close}`"),
            ),
        );
    }
    diags
}

/// Our words for what pest expected.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident | Rule::word => "a name",
        Rule::expr
        | Rule::pipe_expr
        | Rule::cmp_expr
        | Rule::range_expr
        | Rule::add_expr
        | Rule::mul_expr
        | Rule::unary
        | Rule::postfix
        | Rule::slice
        | Rule::slice_bound
        | Rule::arg => "an expression",
        Rule::int | Rule::float => "a number",
        Rule::string => "a string",
        Rule::bool => "`true` or `false`",
        Rule::call | Rule::pipe_stage => "a layer call",
        Rule::list => "a list",
        Rule::map | Rule::map_entry => "a map",
        Rule::paren => "a parenthesised expression",
        Rule::tensor_type | Rule::typed_literal | Rule::elem_type | Rule::scalar_type | Rule::tuple_type => "a type",
        Rule::use_decl | Rule::dim_decl | Rule::model_decl | Rule::block_decl | Rule::train_decl => {
            "a declaration (`use`, `dim`, `model`, `block` or `train`)"
        }
        Rule::input_stmt | Rule::let_stmt | Rule::output_stmt | Rule::return_stmt | Rule::if_stmt => {
            "a statement (`input`, `let`, `output`, `return` or `if`)"
        }
        Rule::train_field => "a field (`name = value`)",
        Rule::step_stmt => "a `step`",
        Rule::EOI => "end of file",
        Rule::cmp_op | Rule::add_op | Rule::mul_op => "an operator",
        Rule::params | Rule::param => "parameters",
        Rule::body => "`{`",
        Rule::ret_type => "`->`",
        Rule::pattern => "a name or `(a, b)`",
        Rule::module_path => "a module path such as `std.blocks`",
        Rule::kw_frozen => "`frozen`",
        _ => return None,
    })
}

fn translate_error(e: pest::error::Error<Rule>, source: &str, base: usize, file: FileId) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    } + base;
    let mut pos = pos.min(source.len());
    let mut expected: Vec<String> = Vec::new();
    // pest reports where the outermost repetition stopped; the furthest
    // position any rule reached is where the user's text went wrong.
    let mut use_positives = true;
    if let Some(attempts) = e.parse_attempts() {
        let furthest = (attempts.max_position + base).min(source.len());
        if furthest > pos {
            pos = furthest;
            use_positives = false;
        }
    }
    if let Some(attempts) = e.parse_attempts() {
        for tok in attempts.expected_tokens() {
            let token = tok.to_string();
            if token == "BUILTIN_RULE"
                || token.contains("..")
                || token.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty()
            {
                continue;
            }
            // Keyword fragments tried inside `ident` are noise.
            if token.chars().all(|c| c.is_ascii_alphabetic()) && token.len() > 1 {
                continue;
            }
            let s = format!("`{token}`");
            if !expected.contains(&s) {
                expected.push(s);
            }
        }
    }
    if let (true, pest::error::ErrorVariant::ParsingError { positives, .. }) = (use_positives, &e.variant) {
        for r in positives {
            if let Some(d) = describe_rule(*r) {
                let d = d.to_string();
                if !expected.contains(&d) {
                    expected.push(d);
                }
            }
        }
    }
    expected.retain(|s| !matches!(s.as_str(), "`\"`" | "`//`" | "`_`"));
    // What usually finishes the construct comes first: closers, separators, `=`.
    let rank = |s: &String| match s.as_str() {
        "`)`" | "`]`" | "`}`" => 0,
        "`,`" => 1,
        "`=`" | "`:`" => 2,
        s if s.starts_with('`') => 4,
        _ => 3,
    };
    expected.sort_by_key(rank);
    expected.truncate(5);
    let found = describe_found(source, pos);
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", expected[0]),
        _ => {
            let (last, rest) = expected.split_last().expect("len >= 2");
            format!("expected {} or {last}, found {found}", rest.join(", "))
        }
    };
    let end = next_char_end(source, pos);
    let mut d = Diagnostic::new(Code::SyntaxError, file, Span::new(pos, end), message).with_label("unexpected here");
    if found.contains("`=`") && expected.iter().any(|e| e.contains("`==`")) {
        d = d.with_help("comparison is `==`");
    }
    if let Some(help) = newcomer_help(source, pos) {
        d = d.with_help(help);
    }
    d
}

/// What a newcomer from Python most likely meant, at a syntax error at `pos`.
fn newcomer_help(source: &str, pos: usize) -> Option<String> {
    let rest = &source[pos..];
    let word_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let word = &rest[..word_len];
    let after = rest[word_len..].trim_start_matches([' ', '\t']);
    let starts_word = word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    // `h = x |> dense(5)` where a statement must start: a binding without `let`.
    if starts_word && after.starts_with('=') && !after.starts_with("==") {
        let line_start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
        if source[line_start..pos].trim().is_empty() {
            return Some(format!("to bind a name in a model or block, write `let {word} = …`"));
        }
    }
    // `nn.Linear(…)`, `layers.Dense(…)`: nnc's names have no module prefix.
    if rest.starts_with('.') {
        let is_path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        let start = source[..pos].rfind(|c: char| !is_path(c)).map_or(0, |i| i + 1);
        let end = rest.find(|c: char| !is_path(c)).map_or(source.len(), |i| pos + i);
        let (prefix, name) = source[start..end].rsplit_once('.')?;
        let word = |s: &str| s.starts_with(|c: char| c.is_ascii_alphabetic());
        if word(prefix) && word(name) {
            return Some(format!(
                "nnc's layers and functions have no module prefix: write `{name}` without `{prefix}.` \
                 (nnc's own names are lower case, e.g. `dense`, `conv2d`, `lstm`)"
            ));
        }
    }
    None
}

fn next_char_end(source: &str, pos: usize) -> usize {
    source[pos..].chars().next().map_or(pos, |c| pos + c.len_utf8())
}

fn describe_found(source: &str, pos: usize) -> String {
    let rest = &source[pos..];
    match rest.chars().next() {
        None => "end of file".into(),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let w: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            format!("`{w}`")
        }
        Some(c) if c.is_ascii_digit() => {
            let w: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
            format!("`{w}`")
        }
        Some('\n') | Some('\r') => "end of line".into(),
        Some(c) => format!("`{}`", c.escape_debug()),
    }
}

/// Builds AST nodes from pest pairs. `base` is added to every pest offset
/// (non-zero when a single declaration is re-parsed during recovery).
struct Builder<'s, 'd> {
    src: &'s str,
    base: usize,
    file: FileId,
    diags: &'d mut Vec<Diagnostic>,
}

impl Builder<'_, '_> {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(s.start() + self.base, s.end() + self.base)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident { name: p.as_str().to_string(), span: self.span(&p) }
    }

    /// The `///` lines directly above byte offset `at`.
    fn doc_above(&self, at: usize) -> Option<String> {
        // An indented declaration still owns the doc comment above it.
        let before = self.src[..at].trim_end_matches([' ', '\t']);
        let mut lines: Vec<&str> = Vec::new();
        for line in before.lines().rev() {
            let t = line.trim_start();
            if let Some(doc) = t.strip_prefix("///") {
                lines.push(doc.strip_prefix(' ').unwrap_or(doc));
            } else if t.is_empty() && lines.is_empty() && before.ends_with('\n') && line.is_empty() {
                // The line the declaration sits on starts here.
                continue;
            } else {
                break;
            }
        }
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    fn items(&mut self, file: Pair<Rule>) -> Vec<Item> {
        kids(file).filter_map(|p| self.item(p)).collect()
    }

    fn item(&mut self, p: Pair<Rule>) -> Option<Item> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = kids(p);
        Some(match rule {
            Rule::use_decl => {
                let t = inner.next()?;
                let target = match t.as_rule() {
                    Rule::string => {
                        let sp = self.span(&t);
                        UseTarget::File { path: unquote(t.as_str()), span: sp }
                    }
                    _ => UseTarget::Module(kids(t).map(|i| self.ident(i)).collect()),
                };
                Item::Use(UseDecl { target, span })
            }
            Rule::dim_decl => {
                let dims = inner
                    .map(|d| {
                        let mut di = kids(d);
                        let name = di.next().map(|n| self.ident(n)).unwrap_or_else(|| self.missing_ident(span));
                        let value = di.next().map(|e| self.expr(e));
                        DimDef { name, value }
                    })
                    .collect();
                Item::Dim(DimDecl { dims, span })
            }
            Rule::model_decl => {
                let name = self.ident(inner.next()?);
                let mut params = Vec::new();
                let mut body = Vec::new();
                for part in inner {
                    match part.as_rule() {
                        Rule::params => params = self.params(part),
                        Rule::body => body = self.body(part),
                        _ => {}
                    }
                }
                let doc = self.doc_above(span.start as usize);
                Item::Model(ModelDecl { name, params, body, doc, span })
            }
            Rule::block_decl => {
                let name = self.ident(inner.next()?);
                let mut params = Vec::new();
                let mut body = Vec::new();
                let mut ret = None;
                for part in inner {
                    match part.as_rule() {
                        Rule::params => params = self.params(part),
                        Rule::ret_type => ret = kids(part).next().map(|t| self.type_expr(t)),
                        Rule::body => body = self.body(part),
                        _ => {}
                    }
                }
                let doc = self.doc_above(span.start as usize);
                Item::Block(BlockDecl { name, params, ret, body, doc, span })
            }
            Rule::train_decl => {
                let name = self.ident(inner.next()?);
                let items = inner.filter_map(|p| self.train_item(p)).collect();
                let doc = self.doc_above(span.start as usize);
                Item::Train(TrainDecl { name, items, doc, span })
            }
            _ => return None,
        })
    }

    fn missing_ident(&self, span: Span) -> Ident {
        Ident { name: String::new(), span }
    }

    fn params(&mut self, p: Pair<Rule>) -> Vec<Param> {
        kids(p)
            .map(|param| {
                let span = self.span(&param);
                let mut name = None;
                let mut ty = None;
                let mut default = None;
                for part in kids(param) {
                    match part.as_rule() {
                        Rule::ident => name = Some(self.ident(part)),
                        Rule::expr => default = Some(self.expr(part)),
                        _ => ty = Some(self.type_expr(part)),
                    }
                }
                Param { name: name.unwrap_or_else(|| self.missing_ident(span)), ty, default, span }
            })
            .collect()
    }

    fn body(&mut self, p: Pair<Rule>) -> Vec<Stmt> {
        kids(p).filter_map(|s| self.stmt(s)).collect()
    }

    fn stmt(&mut self, p: Pair<Rule>) -> Option<Stmt> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = kids(p);
        Some(match rule {
            Rule::input_stmt => {
                let name = self.ident(inner.next()?);
                let ty = self.type_expr(inner.next()?);
                Stmt::Input { name, ty, span }
            }
            Rule::let_stmt => Stmt::Let(self.let_stmt(span, inner)?),
            Rule::output_stmt => {
                let name = self.ident(inner.next()?);
                let mut ty = None;
                let mut value = None;
                for part in inner {
                    match part.as_rule() {
                        Rule::expr => value = Some(self.expr(part)),
                        _ => ty = Some(self.type_expr(part)),
                    }
                }
                Stmt::Output { name, ty, value, span }
            }
            Rule::return_stmt => Stmt::Return { value: self.expr(inner.next()?), span },
            Rule::if_stmt => self.if_stmt(span, inner)?,
            _ => return None,
        })
    }

    fn if_stmt<'i>(&mut self, span: Span, mut inner: impl Iterator<Item = Pair<'i, Rule>>) -> Option<Stmt> {
        let cond = self.expr(inner.next()?);
        let then_body = self.body(inner.next()?);
        // `else if` links, then the final `else` body; the links nest as
        // `if`s in the `else` of the one before, built from the last.
        let mut links = Vec::new();
        let mut else_body = Vec::new();
        for part in inner {
            if part.as_rule() == Rule::else_if {
                // From its `if` to the end of the whole chain, as a nested `if` statement spans.
                let kw_if = part.clone().into_inner().find(|p| p.as_rule() == Rule::kw_if);
                let start = kw_if.map_or(span.start, |k| self.span(&k).start);
                let mut parts = kids(part);
                let (c, b) = (parts.next()?, parts.next()?);
                links.push((self.expr(c), self.body(b), Span::new(start as usize, span.end as usize)));
            } else {
                else_body = self.body(part);
            }
        }
        for (cond, then_body, span) in links.into_iter().rev() {
            else_body = vec![Stmt::If { cond, then_body, else_body, span }];
        }
        Some(Stmt::If { cond, then_body, else_body, span })
    }

    fn let_stmt<'i>(&mut self, span: Span, mut inner: impl Iterator<Item = Pair<'i, Rule>>) -> Option<LetStmt> {
        let pat = inner.next()?;
        let pat_span = self.span(&pat);
        let is_tuple = pat.as_str().trim_start().starts_with('(');
        let idents: Vec<Ident> = kids(pat).map(|i| self.ident(i)).collect();
        let pattern =
            if is_tuple { Pattern::Tuple(idents, pat_span) } else { Pattern::Name(idents.into_iter().next()?) };
        let mut ty = None;
        let mut value = None;
        for part in inner {
            match part.as_rule() {
                Rule::expr => value = Some(self.expr(part)),
                _ => ty = Some(self.type_expr(part)),
            }
        }
        Some(LetStmt { pattern, ty, value: value?, span })
    }

    fn train_item(&mut self, p: Pair<Rule>) -> Option<TrainItem> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = kids(p);
        Some(match rule {
            Rule::let_stmt => TrainItem::Let(self.let_stmt(span, inner)?),
            Rule::train_field => {
                let key = self.ident(inner.next()?);
                let value = self.expr(inner.next()?);
                TrainItem::Field { key, value }
            }
            Rule::step_stmt => {
                let name = self.ident(inner.next()?);
                let mut times = None;
                let mut exprs = Vec::new();
                let mut over = Vec::new();
                for part in inner {
                    match part.as_rule() {
                        Rule::expr => exprs.push(self.expr(part)),
                        Rule::ident_list => over = kids(part).map(|i| self.ident(i)).collect(),
                        _ => {}
                    }
                }
                // exprs: [times?, loss, optimizer]
                if exprs.len() == 3 {
                    times = Some(exprs.remove(0));
                }
                let mut it = exprs.into_iter();
                let loss = it.next()?;
                let optimizer = it.next()?;
                TrainItem::Step(StepStmt { name, times, loss, over, optimizer, span })
            }
            _ => return None,
        })
    }

    fn type_expr(&mut self, p: Pair<Rule>) -> TypeExpr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::tensor_type | Rule::typed_literal => {
                let mut elem = ElemType::Float;
                let mut dims = Vec::new();
                for part in kids(p) {
                    match part.as_rule() {
                        Rule::elem_type => {
                            if part.as_str().starts_with("int") {
                                elem = ElemType::Int;
                            }
                        }
                        _ => dims.push(self.expr(part)),
                    }
                }
                TypeExpr::Tensor { elem, dims, span }
            }
            Rule::scalar_type => {
                let t = match p.as_str() {
                    "int" => ScalarType::Int,
                    "float" => ScalarType::Float,
                    "bool" => ScalarType::Bool,
                    _ => ScalarType::Mode,
                };
                TypeExpr::Scalar(t, span)
            }
            _ => TypeExpr::Tuple(kids(p).map(|t| self.type_expr(t)).collect(), span),
        }
    }

    fn expr(&mut self, p: Pair<Rule>) -> Expr {
        // Every bracket level passes through ~10 precedence rules that
        // usually have one child: step through those in a loop rather than a
        // call each. Each rule with work to do has its own function, so this
        // frame, paid once per nesting level, stays small (one big `match`
        // took 10 KB per level in debug builds).
        let mut p = p;
        while matches!(
            p.as_rule(),
            Rule::expr
                | Rule::pipe_expr
                | Rule::cmp_expr
                | Rule::range_expr
                | Rule::add_expr
                | Rule::mul_expr
                | Rule::unary
                | Rule::postfix
                | Rule::slice_bound
        ) {
            let mut inner = p.clone().into_inner();
            match (inner.next(), inner.next()) {
                (Some(only), None) if only.as_rule() != Rule::kw_frozen && only.as_rule() != Rule::neg => p = only,
                _ => break,
            }
        }
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr | Rule::slice_bound => match kids(p).next() {
                Some(inner) => self.expr(inner),
                None => Expr { kind: ExprKind::Tuple(Vec::new()), span },
            },
            Rule::pipe_expr => self.pipe_expr(p, span),
            Rule::cmp_expr => self.cmp_expr(p, span),
            Rule::range_expr => self.range_expr(p, span),
            Rule::add_expr | Rule::mul_expr => self.binary_chain(p, span),
            Rule::unary => self.unary(p, span),
            Rule::postfix => self.postfix(p, span),
            Rule::int | Rule::float | Rule::string | Rule::bool => self.literal(p, span),
            Rule::ident => Expr { kind: ExprKind::Name(self.ident(p)), span },
            Rule::call => Expr { kind: ExprKind::Call(self.call(p)), span },
            Rule::list => self.list(p, span),
            Rule::map => self.map(p, span),
            Rule::paren => self.paren(p, span),
            Rule::typed_literal => Expr { kind: ExprKind::TensorType(self.type_expr(p)), span },
            _ => error_expr(span),
        }
    }

    #[inline(never)]
    fn pipe_expr(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut inner = kids(p);
        let Some(first) = inner.next() else { return error_expr(span) };
        let mut acc = self.expr(first);
        for stage in inner {
            let stage_span = self.span(&stage);
            let call = match kids(stage).next() {
                Some(c) if c.as_rule() == Rule::call => self.call(c),
                Some(id) => Call { callee: self.ident(id), args: Vec::new(), parens: false, span: stage_span },
                None => continue,
            };
            let sp = acc.span.to(stage_span);
            acc = Expr { kind: ExprKind::Pipe { input: Box::new(acc), stage: call }, span: sp };
        }
        acc
    }

    #[inline(never)]
    fn cmp_expr(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut inner = kids(p);
        let Some(first) = inner.next() else { return error_expr(span) };
        let lhs = self.expr(first);
        match (inner.next(), inner.next()) {
            (Some(op), Some(rhs)) => {
                let op = match op.as_str() {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<=" => CmpOp::Le,
                    ">=" => CmpOp::Ge,
                    "<" => CmpOp::Lt,
                    _ => CmpOp::Gt,
                };
                let rhs = self.expr(rhs);
                Expr { kind: ExprKind::Compare { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
            }
            _ => lhs,
        }
    }

    #[inline(never)]
    fn range_expr(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut inner = kids(p);
        let Some(first) = inner.next() else { return error_expr(span) };
        let start = self.expr(first);
        match inner.next() {
            Some(end) => {
                let end = self.expr(end);
                Expr { kind: ExprKind::Range { start: Box::new(start), end: Box::new(end) }, span }
            }
            None => start,
        }
    }

    #[inline(never)]
    fn binary_chain(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut inner = kids(p);
        let Some(first) = inner.next() else { return error_expr(span) };
        let mut acc = self.expr(first);
        while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
            let op = match op.as_str() {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                _ => BinOp::Div,
            };
            let rhs = self.expr(rhs);
            let sp = acc.span.to(rhs.span);
            acc = Expr { kind: ExprKind::Binary { op, lhs: Box::new(acc), rhs: Box::new(rhs) }, span: sp };
        }
        acc
    }

    #[inline(never)]
    fn unary(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut negs = 0usize;
        let mut frozen = false;
        let mut operand = None;
        for part in kids(p) {
            match part.as_rule() {
                Rule::neg => negs += 1,
                Rule::kw_frozen => frozen = true,
                _ => operand = Some(self.expr(part)),
            }
        }
        let Some(mut e) = operand else { return error_expr(span) };
        // `--x` is `x`: fold repeated prefixes so no input builds a deep tree.
        if negs % 2 == 1 {
            e = fold_negation(e, span);
        }
        if frozen {
            e = Expr { kind: ExprKind::Frozen(Box::new(e)), span };
        }
        e
    }

    #[inline(never)]
    fn postfix(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut inner = kids(p);
        let Some(first) = inner.next() else { return error_expr(span) };
        let mut acc = self.expr(first);
        for idx in inner {
            let isp = self.span(&idx);
            let indices = kids(idx).filter_map(|s| self.index_item(s)).collect();
            let sp = acc.span.to(isp);
            acc = Expr { kind: ExprKind::Index { base: Box::new(acc), indices }, span: sp };
        }
        acc
    }

    #[inline(never)]
    fn literal(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        match p.as_rule() {
            Rule::int => match p.as_str().parse::<i64>() {
                Ok(v) => Expr { kind: ExprKind::Int(v), span },
                Err(_) => {
                    self.diags.push(
                        Diagnostic::new(Code::InvalidLiteral, self.file, span, "integer literal too large")
                            .with_label("does not fit in 64 bits"),
                    );
                    error_expr(span)
                }
            },
            Rule::float => match p.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => Expr { kind: ExprKind::Float(v), span },
                _ => {
                    self.diags.push(
                        Diagnostic::new(Code::InvalidLiteral, self.file, span, "number literal out of range")
                            .with_label("not a finite number"),
                    );
                    error_expr(span)
                }
            },
            Rule::string => Expr { kind: ExprKind::Str(unquote(p.as_str())), span },
            _ => Expr { kind: ExprKind::Bool(p.as_str() == "true"), span },
        }
    }

    #[inline(never)]
    fn list(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        Expr { kind: ExprKind::List(kids(p).map(|e| self.expr(e)).collect()), span }
    }

    #[inline(never)]
    fn map(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let entries = p
            .into_inner()
            .filter_map(|entry| {
                let mut it = kids(entry);
                let k = it.next()?;
                let v = it.next()?;
                let key = match k.as_rule() {
                    Rule::ident => {
                        let ksp = self.span(&k);
                        Expr { kind: ExprKind::Name(self.ident(k)), span: ksp }
                    }
                    _ => self.expr(k),
                };
                Some((key, self.expr(v)))
            })
            .collect();
        Expr { kind: ExprKind::Map(entries), span }
    }

    #[inline(never)]
    fn paren(&mut self, p: Pair<Rule>, span: Span) -> Expr {
        let mut elems = Vec::new();
        let mut trailing = false;
        for part in kids(p) {
            match part.as_rule() {
                Rule::trailing_comma => trailing = true,
                _ => elems.push(self.expr(part)),
            }
        }
        if elems.len() == 1 && !trailing {
            let mut e = elems.pop().expect("one element");
            e.span = span; // keep the parentheses in the span
            e
        } else {
            Expr { kind: ExprKind::Tuple(elems), span }
        }
    }

    fn index_item(&mut self, p: Pair<Rule>) -> Option<IndexItem> {
        let inner = kids(p).next()?;
        match inner.as_rule() {
            Rule::slice_range => {
                let span = self.span(&inner);
                let text = inner.as_str();
                let colon = text.find(':').unwrap_or(0) + span.start as usize;
                let mut start = None;
                let mut end = None;
                for b in kids(inner) {
                    let e = self.expr(b);
                    if (e.span.start as usize) < colon {
                        start = Some(e);
                    } else {
                        end = Some(e);
                    }
                }
                Some(IndexItem::Slice { start, end, span })
            }
            _ => Some(IndexItem::At(self.expr(inner))),
        }
    }

    fn call(&mut self, p: Pair<Rule>) -> Call {
        let span = self.span(&p);
        let mut inner = kids(p);
        let callee = match inner.next() {
            Some(c) => self.ident(c),
            None => self.missing_ident(span),
        };
        let args = inner
            .filter_map(|arg| {
                let a = kids(arg).next()?;
                Some(match a.as_rule() {
                    Rule::kwarg => {
                        let mut kv = kids(a);
                        let name = self.ident(kv.next()?);
                        let value = self.expr(kv.next()?);
                        Arg { name: Some(name), value }
                    }
                    _ => Arg { name: None, value: self.expr(a) },
                })
            })
            .collect();
        Call { callee, args, parens: true, span }
    }
}

/// Children of a pair, without keyword tokens (they carry no information
/// once the rule has matched). `frozen` is kept: it is an operator.
fn kids(p: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    p.into_inner().filter(|c| {
        !matches!(
            c.as_rule(),
            Rule::kw_use
                | Rule::kw_dim
                | Rule::kw_model
                | Rule::kw_block
                | Rule::kw_train
                | Rule::kw_input
                | Rule::kw_output
                | Rule::kw_let
                | Rule::kw_return
                | Rule::kw_step
                | Rule::kw_minimize
                | Rule::kw_over
                | Rule::kw_with
                | Rule::kw_times
                | Rule::kw_if
                | Rule::kw_else
        )
    })
}

fn fold_negation(e: Expr, span: Span) -> Expr {
    match e.kind {
        ExprKind::Int(v) => Expr { kind: ExprKind::Int(v.wrapping_neg()), span },
        ExprKind::Float(v) => Expr { kind: ExprKind::Float(-v), span },
        _ => Expr { kind: ExprKind::Neg(Box::new(e)), span },
    }
}

fn error_expr(span: Span) -> Expr {
    // Stands in for a node that could not be built (its error is reported);
    // the checker gives it a value that never reports again.
    Expr { kind: ExprKind::Error, span }
}

fn unquote(s: &str) -> String {
    let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;

mod depth;
pub use depth::MAX_DEPTH;
