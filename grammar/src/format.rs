//! The canonical layout of `.nn` files (`nnc fmt`, the language server's
//! formatting).
//!
//! A token-level reindenter rather than a pretty-printer: it keeps every
//! token, every comment and every line break where the author put them, and
//! only decides the whitespace *between* tokens and at the start of lines.
//! That is enough for one canonical layout and cannot reorder or drop code.
//!
//! The rules:
//! - indentation is 4 spaces per open bracket; a bracket's contents are
//!   indented from the line that opened it, and a line that starts with
//!   closers aligns with that line;
//! - in a body (a `{ … }` of a model, block, train, `if`) or at top level, a
//!   line that does not start a statement continues the previous one and is
//!   indented 4 more (8 more in a `model`/`block`/`train` header, so the
//!   signature does not line up with the body);
//! - one space around binary operators, `=`, `|>`, `->`, after `,` and `:`;
//!   none inside `()`/`[]`, around `.`/`..`, after unary `-`, before a call's
//!   `(` or an index `[`, or around `:` in an index (`x[:, 0:4]`);
//! - the `=` of the fields of a `train` block line up (longest key + 1);
//! - a comment alone on its line is indented like the code that follows it
//!   (at least as deep as where it is); a trailing comment keeps its column
//!   when the code still fits before it, so hand-aligned comments stay aligned;
//! - trailing whitespace goes, runs of blank lines shrink to one, the file
//!   ends with one newline; CRLF files stay CRLF.
//!
//! Safety: a file that does not parse is not formatted, and the result is
//! re-parsed and compared with the original syntax tree (spans aside); if
//! they differ — a formatter bug — the input is returned as it was.

use crate::ast::*;
use crate::{FileId, Span};

/// Why a file was left as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file has syntax errors (this many); formatting needs a parse.
    SyntaxErrors(usize),
    /// The formatted text would not parse to the same tree. A formatter bug:
    /// refusing is safer than changing the meaning of a file.
    Unstable,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::SyntaxErrors(n) => write!(f, "the file has {n} syntax error(s); fix them first (`nnc check`)"),
            FormatError::Unstable => {
                write!(f, "formatting would change the meaning of the file (a formatter bug; please report it)")
            }
        }
    }
}

impl std::error::Error for FormatError {}

/// Formats `source`; a file that cannot be formatted safely comes back unchanged.
pub fn format(source: &str) -> String {
    format_source(source).unwrap_or_else(|_| source.to_string())
}

/// Formats `source`, saying why when it cannot.
pub fn format_source(source: &str) -> Result<String, FormatError> {
    let (before, diags) = crate::parse(source, FileId(0));
    if !diags.is_empty() {
        return Err(FormatError::SyntaxErrors(diags.len()));
    }
    let tokens = tokenize(source);
    if tokens.iter().any(|t| t.kind == TokenKind::Unknown) {
        // Cannot happen in a file that parses; never guess around it.
        return Err(FormatError::Unstable);
    }
    let out = layout(source, &tokens);
    let (after, diags) = crate::parse(&out, FileId(0));
    if !diags.is_empty() || !same_modulo_spans(&before, &after) {
        return Err(FormatError::Unstable);
    }
    Ok(out)
}

// ------------------------------------------------------------------ tokens

/// What a [`Token`] is, as far as formatting and completion need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An identifier or keyword.
    Word,
    /// An integer or float literal.
    Number,
    /// A string literal, quotes included.
    Str,
    /// Brackets, separators and operators (`|>`, `==`, `..`, `(`, `,`, …).
    Punct,
    /// `// …` up to (not including) the end of the line.
    Comment,
    /// A line break (`\n`); formatting keeps blank lines from them.
    Newline,
    /// A character the grammar does not know; the file does not parse.
    Unknown,
}

/// A token of the source: what the grammar sees, plus comments and newlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What kind of token this is.
    pub kind: TokenKind,
    /// The bytes of the source the token covers.
    pub span: Span,
}

impl Token {
    /// The token's text in `source` (the text the token was produced from).
    pub fn text<'s>(&self, source: &'s str) -> &'s str {
        &source[self.span.range()]
    }
}

const PUNCT2: &[&str] = &["|>", "->", "==", "!=", "<=", ">=", ".."];
const PUNCT1: &str = "()[]{},:=+-*/<>.";

/// Splits `source` into tokens. Whitespace other than newlines is dropped;
/// never fails (unknown characters become [`TokenKind::Unknown`]).
pub fn tokenize(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, kind, s, e| out.push(Token { kind, span: Span::new(s, e) });
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b'\n' => {
                i += 1;
                push(&mut out, TokenKind::Newline, start, i);
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                // A `\r` before the newline is line-ending, not comment.
                let end = if i > start && bytes[i - 1] == b'\r' { i - 1 } else { i };
                push(&mut out, TokenKind::Comment, start, end);
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' && i + 1 < bytes.len() && bytes[i + 1] != b'\n' { 2 } else { 1 };
                }
                if i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                    push(&mut out, TokenKind::Str, start, i);
                } else {
                    push(&mut out, TokenKind::Unknown, start, i);
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                push(&mut out, TokenKind::Word, start, i);
            }
            c if c.is_ascii_digit() => {
                i = number_end(bytes, i);
                push(&mut out, TokenKind::Number, start, i);
            }
            _ => {
                if let Some(p) = PUNCT2.iter().find(|p| source[i..].starts_with(**p)) {
                    i += p.len();
                    push(&mut out, TokenKind::Punct, start, i);
                } else if PUNCT1.as_bytes().contains(&c) {
                    i += 1;
                    push(&mut out, TokenKind::Punct, start, i);
                } else if source[i..].starts_with('\u{FEFF}') {
                    i += '\u{FEFF}'.len_utf8(); // the grammar's whitespace
                } else {
                    let len = source[i..].chars().next().map_or(1, char::len_utf8);
                    i += len;
                    push(&mut out, TokenKind::Unknown, start, i);
                }
            }
        }
    }
    out
}

/// The end of a number literal starting at `i` (the grammar's `int`/`float`).
fn number_end(bytes: &[u8], mut i: usize) -> usize {
    let digits = |mut j: usize| {
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    i = digits(i);
    // `0..784` is a range, not the float `0.`: a fraction needs a digit.
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i = digits(i + 1);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            i = digits(j);
        }
    }
    i
}

// ------------------------------------------------------------------ layout

const KEYWORDS: &[&str] = &[
    "use", "dim", "model", "block", "train", "input", "output", "let", "return", "int", "float", "true", "false",
    "step", "minimize", "over", "with", "times", "frozen", "if", "else",
];

/// Keywords that start a statement in a body or at top level.
const STATEMENT_STARTS: &[&str] =
    &["use", "dim", "model", "block", "train", "input", "output", "let", "return", "if", "else", "step"];

/// Statements whose continuation lines get a double indent: their body
/// follows, and the header should not line up with it.
const HEADERS: &[&str] = &["model", "block", "train"];

const INDENT: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    /// The `{ … }` of a model, block, train or `if`; statements inside.
    Body,
    /// A map literal `{0: 87}`.
    Map,
    Paren,
    /// A list, shape or type `[…]`.
    List,
    /// An index `x[…]`: `:` there is a slice, without spaces.
    Index,
}

#[derive(Clone, Debug)]
struct Frame {
    kind: FrameKind,
    /// Indentation of the line that opened it.
    opener_indent: usize,
    /// For bodies: the first word of the statement being read (`let`,
    /// `model`, …), to tell header continuations.
    statement: Option<String>,
    /// For `train` bodies: an id to align the `=` of its fields.
    train: Option<usize>,
    /// Added to the contents' indentation: the parameter list of a header
    /// gets a double indent, like the header's other continuation lines.
    extra: usize,
}

impl Frame {
    fn new(kind: FrameKind, opener_indent: usize) -> Frame {
        Frame { kind, opener_indent, statement: None, train: None, extra: 0 }
    }
    fn content_indent(&self) -> usize {
        self.opener_indent + INDENT + self.extra
    }
}

/// One output line before the final assembly.
enum Line {
    Blank,
    /// A line with code (and possibly a trailing comment).
    Code {
        indent: usize,
        /// For a train field: its key and the train it belongs to; `text`
        /// then starts with `=`.
        field: Option<(String, usize)>,
        text: String,
        /// `(original column, comment)`.
        comment: Option<(usize, String)>,
    },
    /// A comment alone on its line; `floor` is the indentation of where it
    /// is, the final indentation also looks at the next code line.
    Comment {
        floor: usize,
        text: String,
    },
}

fn is_keyword(w: &str) -> bool {
    KEYWORDS.contains(&w)
}

/// Whether a token ends an operand (so a following `-` is binary).
fn ends_operand(src: &str, t: &Token) -> bool {
    let text = t.text(src);
    match t.kind {
        TokenKind::Number | TokenKind::Str => true,
        TokenKind::Word => !is_keyword(text) || text == "true" || text == "false",
        TokenKind::Punct => matches!(text, ")" | "]" | "}"),
        _ => false,
    }
}

// long: one pass over the lines that carries the bracket stack and the previous two tokens from line to line;
// split, each piece would take and return all of that state.
fn layout(src: &str, tokens: &[Token]) -> String {
    // Source lines as token lists (newline tokens removed).
    let mut lines: Vec<&[Token]> = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.kind == TokenKind::Newline {
            lines.push(&tokens[start..i]);
            start = i + 1;
        }
    }
    lines.push(&tokens[start..]);

    let mut stack: Vec<Frame> = Vec::new();
    // The top level: a body whose contents are not indented.
    let mut top = Frame::new(FrameKind::Body, 0);
    // The previous two code tokens, across lines: they decide unary minus,
    // calls versus groups, indexes versus lists.
    let mut prev: Option<Token> = None;
    let mut prev2: Option<Token> = None;
    let mut trains = 0usize;
    let mut out: Vec<Line> = Vec::new();

    for line in &lines {
        let (code, comment) = match line.last() {
            Some(t) if t.kind == TokenKind::Comment => (&line[..line.len() - 1], Some(*t)),
            _ => (&line[..], None),
        };
        if code.is_empty() {
            match comment {
                None => out.push(Line::Blank),
                Some(c) => {
                    let floor = stack.last().map_or(0, Frame::content_indent);
                    out.push(Line::Comment { floor, text: c.text(src).trim_end().to_string() });
                }
            }
            continue;
        }

        // Indentation: leading closers align with the line that opened them.
        let first = code[0].text(src);
        let closes = matches!(first, ")" | "]" | "}");
        let indent = if closes {
            stack.last().map_or(0, |f| f.opener_indent)
        } else {
            let (frame, content) = match stack.last() {
                Some(f) => (f, f.content_indent()),
                None => (&top, 0),
            };
            if frame.kind == FrameKind::Body && !starts_statement(src, code, frame) {
                let header = frame.statement.as_deref().is_some_and(|s| HEADERS.contains(&s));
                content + if header { 2 * INDENT } else { INDENT }
            } else {
                content
            }
        };

        // Train fields: `key = value` directly in a train body.
        let field_train = match stack.last() {
            Some(f) if f.kind == FrameKind::Body && f.train.is_some() && is_field(src, code) => f.train,
            _ => None,
        };

        // A statement start in a body records its first word.
        {
            let frame = stack.last_mut().unwrap_or(&mut top);
            if frame.kind == FrameKind::Body && !closes && starts_statement(src, code, frame) {
                frame.statement = Some(first.to_string());
            }
        }

        // Render the line, updating the bracket stack token by token.
        let mut text = String::new();
        let mut field = None;
        for (i, t) in code.iter().enumerate() {
            let tt = t.text(src);
            if i > 0 && space_between(src, prev2.as_ref(), prev.as_ref(), t, stack.last()) {
                text.push(' ');
            }
            if let (1, Some(id)) = (i, field_train) {
                // The key was written; the rest of the line starts at `=`.
                field = Some((std::mem::take(&mut text).trim_end().to_string(), id));
            }
            text.push_str(tt);
            match tt {
                "(" => {
                    let outer = stack.last().unwrap_or(&top);
                    let header = outer.kind == FrameKind::Body
                        && outer.statement.as_deref().is_some_and(|s| HEADERS.contains(&s));
                    let mut frame = Frame::new(FrameKind::Paren, indent);
                    frame.extra = if header { INDENT } else { 0 };
                    stack.push(frame);
                }
                "[" => {
                    let kind = match &prev {
                        Some(p) if is_index_base(src, p) => FrameKind::Index,
                        _ => FrameKind::List,
                    };
                    stack.push(Frame::new(kind, indent));
                }
                "{" => {
                    let is_map = prev.is_some_and(|p| matches!(p.text(src), "=" | "(" | "," | ":" | "[" | "{"));
                    let kind = if is_map { FrameKind::Map } else { FrameKind::Body };
                    let outer = stack.last().unwrap_or(&top);
                    let in_train = outer.kind == FrameKind::Body && outer.statement.as_deref() == Some("train");
                    let train = (kind == FrameKind::Body && in_train).then(|| {
                        trains += 1;
                        trains
                    });
                    // A body lines up with its statement, even when its `{`
                    // ends a continuation line (`-> [N, C] {`).
                    let opener_indent = match kind {
                        FrameKind::Body => stack.last().map_or(0, Frame::content_indent),
                        _ => indent,
                    };
                    let mut frame = Frame::new(kind, opener_indent);
                    frame.train = train;
                    stack.push(frame);
                }
                ")" | "]" | "}" => {
                    stack.pop();
                }
                _ => {}
            }
            prev2 = prev;
            prev = Some(*t);
        }
        let comment = comment.map(|c| {
            let line_start = src[..c.span.start as usize].rfind('\n').map_or(0, |p| p + 1);
            let column = src[line_start..c.span.start as usize].chars().count();
            (column, c.text(src).trim_end().to_string())
        });
        out.push(Line::Code { indent, field, text, comment });
    }

    assemble(src, out)
}

/// Whether a line starts a statement of the body `frame`.
fn starts_statement(src: &str, code: &[Token], frame: &Frame) -> bool {
    let first = code[0].text(src);
    if STATEMENT_STARTS.contains(&first) || matches!(first, "}" | "{") {
        return true;
    }
    frame.train.is_some() && is_field(src, code)
}

/// `word = …` (a train field), not `word == …`.
fn is_field(src: &str, code: &[Token]) -> bool {
    code.len() >= 2 && code[0].kind == TokenKind::Word && code[1].text(src) == "=" && code[0].text(src) != "let"
}

/// Whether `[` after this token indexes (`x[…]`, `f(x)[…]`) rather than
/// opening a list or shape. `int[…]`/`float[…]` are types, not indexes.
fn is_index_base(src: &str, t: &Token) -> bool {
    let text = t.text(src);
    match t.kind {
        TokenKind::Word => !is_keyword(text),
        TokenKind::Punct => matches!(text, ")" | "]"),
        _ => false,
    }
}

/// Whether one space goes between `prev` (the previous code token, possibly
/// on an earlier line; `prev2` the one before it) and `next` on the same
/// line. `frame` is the innermost open bracket before `next`.
fn space_between(src: &str, prev2: Option<&Token>, prev: Option<&Token>, next: &Token, frame: Option<&Frame>) -> bool {
    let Some(prev) = prev else { return false };
    let p = prev.text(src);
    let n = next.text(src);
    let frame_kind = frame.map(|f| f.kind);

    // Separators and closers hug what precedes them.
    if matches!(n, "," | ")" | "]" | ":") || matches!(p, "(" | "[") {
        return false;
    }
    if matches!(n, "." | "..") || matches!(p, "." | "..") {
        return false;
    }
    if p == ":" {
        // `x: [N]`, `{0: 87}`, but `x[:, 0:4]`.
        return frame_kind != Some(FrameKind::Index);
    }
    if p == "{" {
        // `{0: 87}` versus `{ input x: [N] }`; `{}` stays closed.
        return frame_kind == Some(FrameKind::Body) && n != "}";
    }
    if n == "}" {
        return frame_kind == Some(FrameKind::Body) && p != "{";
    }
    if p == "," {
        return true;
    }
    // A unary minus hugs its operand: nothing that ends an operand precedes it.
    if p == "-" && !prev2.is_some_and(|t| ends_operand(src, t)) {
        return false;
    }
    if n == "(" {
        // A call `f(…)` versus `let (a, b)`, `frozen (…)`, `= (a, b)`.
        return prev.kind != TokenKind::Word || is_keyword(p);
    }
    if n == "[" {
        return !(is_index_base(src, prev) || matches!(p, "int" | "float"));
    }
    true
}

fn assemble(src: &str, lines: Vec<Line>) -> String {
    let newline = match src.find('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    };
    // Field alignment: the longest key of each train block.
    let mut key_width: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for l in &lines {
        if let Line::Code { field: Some((key, id)), .. } = l {
            let w = key_width.entry(*id).or_insert(0);
            *w = (*w).max(key.chars().count());
        }
    }
    // Comment lines take the indentation of the next code line when deeper.
    let mut next_code_indent = 0;
    let mut comment_indents = vec![0; lines.len()];
    for (i, l) in lines.iter().enumerate().rev() {
        match l {
            Line::Code { indent, .. } => next_code_indent = *indent,
            Line::Comment { floor, .. } => comment_indents[i] = (*floor).max(next_code_indent),
            Line::Blank => {}
        }
    }

    let mut out = String::with_capacity(src.len() + src.len() / 8);
    if src.starts_with('\u{FEFF}') {
        out.push('\u{FEFF}');
    }
    let mut pending_blank = false;
    let mut wrote_any = false;
    for (i, l) in lines.iter().enumerate() {
        let rendered = match l {
            Line::Blank => {
                pending_blank = wrote_any;
                continue;
            }
            Line::Comment { text, .. } => format!("{}{text}", " ".repeat(comment_indents[i])),
            Line::Code { indent, field, text, comment } => {
                let mut s = " ".repeat(*indent);
                if let Some((key, id)) = field {
                    s.push_str(key);
                    let pad = key_width[id] - key.chars().count() + 1;
                    s.push_str(&" ".repeat(pad));
                }
                s.push_str(text);
                if let Some((column, c)) = comment {
                    let width = s.chars().count();
                    let gap = if *column > width { column - width } else { 1 };
                    s.push_str(&" ".repeat(gap));
                    s.push_str(c);
                }
                s
            }
        };
        if pending_blank {
            out.push_str(newline);
            pending_blank = false;
        }
        out.push_str(&rendered);
        out.push_str(newline);
        wrote_any = true;
    }
    out
}

// ------------------------------------------------------------------ comparing trees

/// Whether two trees are equal once spans are ignored (and doc comments
/// compared without trailing whitespace, which the formatter removes).
pub fn same_modulo_spans(a: &File, b: &File) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    erase_file(&mut a);
    erase_file(&mut b);
    a == b
}

fn erase_file(f: &mut File) {
    for item in &mut f.items {
        match item {
            Item::Use(u) => {
                u.span = Span::default();
                match &mut u.target {
                    UseTarget::Module(parts) => parts.iter_mut().for_each(erase_ident),
                    UseTarget::File { span, .. } => *span = Span::default(),
                }
            }
            Item::Dim(d) => {
                d.span = Span::default();
                for def in &mut d.dims {
                    erase_ident(&mut def.name);
                    if let Some(v) = &mut def.value {
                        erase_expr(v);
                    }
                }
            }
            Item::Model(m) => {
                m.span = Span::default();
                erase_ident(&mut m.name);
                m.params.iter_mut().for_each(erase_param);
                m.body.iter_mut().for_each(erase_stmt);
                erase_doc(&mut m.doc);
            }
            Item::Block(b) => {
                b.span = Span::default();
                erase_ident(&mut b.name);
                b.params.iter_mut().for_each(erase_param);
                if let Some(t) = &mut b.ret {
                    erase_type(t);
                }
                b.body.iter_mut().for_each(erase_stmt);
                erase_doc(&mut b.doc);
            }
            Item::Train(t) => {
                t.span = Span::default();
                erase_ident(&mut t.name);
                erase_doc(&mut t.doc);
                for it in &mut t.items {
                    match it {
                        TrainItem::Field { key, value } => {
                            erase_ident(key);
                            erase_expr(value);
                        }
                        TrainItem::Let(l) => erase_let(l),
                        TrainItem::Step(s) => {
                            s.span = Span::default();
                            erase_ident(&mut s.name);
                            if let Some(t) = &mut s.times {
                                erase_expr(t);
                            }
                            erase_expr(&mut s.loss);
                            s.over.iter_mut().for_each(erase_ident);
                            erase_expr(&mut s.optimizer);
                        }
                    }
                }
            }
        }
    }
}

fn erase_doc(doc: &mut Option<String>) {
    if let Some(d) = doc {
        *d = d.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    }
}

fn erase_ident(i: &mut Ident) {
    i.span = Span::default();
}

fn erase_param(p: &mut Param) {
    p.span = Span::default();
    erase_ident(&mut p.name);
    if let Some(t) = &mut p.ty {
        erase_type(t);
    }
    if let Some(d) = &mut p.default {
        erase_expr(d);
    }
}

fn erase_let(l: &mut LetStmt) {
    l.span = Span::default();
    match &mut l.pattern {
        Pattern::Name(n) => erase_ident(n),
        Pattern::Tuple(ns, span) => {
            ns.iter_mut().for_each(erase_ident);
            *span = Span::default();
        }
    }
    if let Some(t) = &mut l.ty {
        erase_type(t);
    }
    erase_expr(&mut l.value);
}

fn erase_stmt(s: &mut Stmt) {
    match s {
        Stmt::Input { name, ty, span } => {
            erase_ident(name);
            erase_type(ty);
            *span = Span::default();
        }
        Stmt::Let(l) => erase_let(l),
        Stmt::Output { name, ty, value, span } => {
            erase_ident(name);
            if let Some(t) = ty {
                erase_type(t);
            }
            if let Some(v) = value {
                erase_expr(v);
            }
            *span = Span::default();
        }
        Stmt::Return { value, span } => {
            erase_expr(value);
            *span = Span::default();
        }
        Stmt::If { cond, then_body, else_body, span } => {
            erase_expr(cond);
            then_body.iter_mut().for_each(erase_stmt);
            else_body.iter_mut().for_each(erase_stmt);
            *span = Span::default();
        }
    }
}

fn erase_type(t: &mut TypeExpr) {
    match t {
        TypeExpr::Tensor { dims, span, .. } => {
            dims.iter_mut().for_each(erase_expr);
            *span = Span::default();
        }
        TypeExpr::Scalar(_, span) => *span = Span::default(),
        TypeExpr::Tuple(ts, span) => {
            ts.iter_mut().for_each(erase_type);
            *span = Span::default();
        }
    }
}

fn erase_call(c: &mut Call) {
    erase_ident(&mut c.callee);
    c.span = Span::default();
    for a in &mut c.args {
        if let Some(n) = &mut a.name {
            erase_ident(n);
        }
        erase_expr(&mut a.value);
    }
}

fn erase_expr(e: &mut Expr) {
    e.span = Span::default();
    match &mut e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Error => {}
        ExprKind::Name(n) => erase_ident(n),
        ExprKind::Call(c) => erase_call(c),
        ExprKind::Pipe { input, stage } => {
            erase_expr(input);
            erase_call(stage);
        }
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::Compare { lhs, rhs, .. } => {
            erase_expr(lhs);
            erase_expr(rhs);
        }
        ExprKind::Range { start, end } => {
            erase_expr(start);
            erase_expr(end);
        }
        ExprKind::Neg(x) | ExprKind::Frozen(x) => erase_expr(x),
        ExprKind::List(xs) | ExprKind::Tuple(xs) => xs.iter_mut().for_each(erase_expr),
        ExprKind::Map(entries) => {
            for (k, v) in entries {
                erase_expr(k);
                erase_expr(v);
            }
        }
        ExprKind::Index { base, indices } => {
            erase_expr(base);
            for ix in indices {
                match ix {
                    IndexItem::At(x) => erase_expr(x),
                    IndexItem::Slice { start, end, span } => {
                        if let Some(s) = start {
                            erase_expr(s);
                        }
                        if let Some(x) = end {
                            erase_expr(x);
                        }
                        *span = Span::default();
                    }
                }
            }
        }
        ExprKind::TensorType(t) => erase_type(t),
    }
}

#[cfg(test)]
mod tests;
