//! The server: lifecycle, dispatch, and publishing diagnostics.
//!
//! One thread owns all state (the checker's values are not `Send`); a reader
//! thread feeds it messages. Messages that arrive together are handled
//! together and diagnostics are published once the queue is empty, so a
//! burst of `didChange`s costs one check. Requests that need an analysis
//! compute it on demand. Every handler runs under `catch_unwind`: a bug
//! becomes an error answer (or a diagnostic), and the server keeps serving.

use std::collections::HashMap;
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::Receiver;

use lsp_server::{ErrorCode, Message, Notification};
use lsp_types as lsp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use nnc_compiler::sandbox::Root;

use crate::convert;
use crate::nav::DefKind;
use crate::state::State;
use crate::support::SupportFiles;
use crate::transport::{self, Incoming};

/// How the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit` after `shutdown`.
    Clean,
    /// `exit` without `shutdown`, or the input ended (LSP says exit code 1).
    Abrupt,
}

/// Why [`crate::run_stdio`] stopped other than by the protocol's `exit`.
#[derive(Debug)]
pub enum ServeError {
    /// The client is gone: stdout is closed.
    Write(io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Write(e) => write!(f, "cannot write to the client: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

enum Flow {
    Continue,
    Exit,
}

/// A handler's failure, sent back as the error of its response.
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure { code: code as i32, message: message.into() }
    }
}

/// The language server's state: open documents, their analyses, and the writer responses go to.
pub(crate) struct Server<W: Write> {
    state: State,
    out: W,
    initialized: bool,
    shutdown: bool,
    /// Diagnostics published for files that are not open (`use`d files).
    elsewhere: HashMap<lsp::Uri, Vec<lsp::Diagnostic>>,
}

impl<W: Write> Server<W> {
    pub(crate) fn new(out: W) -> Server<W> {
        Server { state: State::default(), out, initialized: false, shutdown: false, elsewhere: HashMap::new() }
    }

    pub(crate) fn serve(mut self, rx: Receiver<Incoming>) -> Result<Exit, ServeError> {
        loop {
            let Ok(first) = rx.recv() else {
                return Ok(self.exit_status());
            };
            let mut next = Some(first);
            while let Some(incoming) = next.take() {
                if let Flow::Exit = self.handle(incoming)? {
                    return Ok(self.exit_status());
                }
                next = rx.try_recv().ok();
            }
            self.publish()?;
        }
    }

    fn exit_status(&self) -> Exit {
        if self.shutdown { Exit::Clean } else { Exit::Abrupt }
    }

    fn send(&mut self, msg: Message) -> Result<(), ServeError> {
        transport::write(&mut self.out, &msg).map_err(ServeError::Write)
    }

    fn handle(&mut self, incoming: Incoming) -> Result<Flow, ServeError> {
        match incoming {
            Incoming::Malformed { id, code, error } => {
                eprintln!("nnc lsp: {error}");
                transport::write_malformed(&mut self.out, id.as_ref(), code, &error).map_err(ServeError::Write)?;
                Ok(Flow::Continue)
            }
            Incoming::Request { id, method, params } => {
                let response = self.request(method, params);
                let result = response.as_ref().map_err(|f| (f.code, f.message.as_str()));
                transport::write_response(&mut self.out, &id, result).map_err(ServeError::Write)?;
                Ok(Flow::Continue)
            }
            Incoming::Notification(n) => Ok(self.notification(n)),
            // Answers to requests we never send.
            Incoming::Response => Ok(Flow::Continue),
        }
    }

    fn request(&mut self, method: String, params: Json) -> Result<Json, Failure> {
        if method == "initialize" {
            if self.initialized {
                return Err(Failure::new(ErrorCode::InvalidRequest, "initialize was already received"));
            }
            self.initialized = true;
            self.state.support = SupportFiles::materialise();
            self.state.workspace = workspace_root(&params);
            return to_json(initialize_result());
        }
        if !self.initialized {
            return Err(Failure::new(ErrorCode::ServerNotInitialized, "the server has not been initialized"));
        }
        if self.shutdown {
            return Err(Failure::new(ErrorCode::InvalidRequest, "the server is shutting down"));
        }
        let result = catch_unwind(AssertUnwindSafe(|| self.dispatch(&method, params)));
        match result {
            Ok(r) => r,
            Err(panic) => {
                let why = panic_message(&panic);
                eprintln!("nnc lsp: internal error in {method}: {why}");
                Err(Failure::new(ErrorCode::InternalError, format!("internal error in {method}: {why}")))
            }
        }
    }

    fn dispatch(&mut self, method: &str, req_params: Json) -> Result<Json, Failure> {
        match method {
            "shutdown" => {
                self.shutdown = true;
                Ok(Json::Null)
            }
            "textDocument/hover" => {
                let p: lsp::HoverParams = params(req_params)?;
                to_json(self.hover(&p.text_document_position_params))
            }
            "textDocument/inlayHint" => {
                let p: lsp::InlayHintParams = params(req_params)?;
                to_json(self.inlay_hints(&p.text_document.uri, p.range))
            }
            "textDocument/completion" => {
                let p: lsp::CompletionParams = params(req_params)?;
                to_json(self.completion(&p.text_document_position).map(lsp::CompletionResponse::Array))
            }
            "textDocument/definition" => {
                let p: lsp::GotoDefinitionParams = params(req_params)?;
                to_json(self.definition(&p.text_document_position_params).map(lsp::GotoDefinitionResponse::Scalar))
            }
            "textDocument/references" => {
                let p: lsp::ReferenceParams = params(req_params)?;
                to_json(self.references(&p.text_document_position, p.context.include_declaration))
            }
            "textDocument/documentSymbol" => {
                let p: lsp::DocumentSymbolParams = params(req_params)?;
                to_json(self.symbols(&p.text_document.uri).map(lsp::DocumentSymbolResponse::Nested))
            }
            "textDocument/formatting" => {
                let p: lsp::DocumentFormattingParams = params(req_params)?;
                self.formatting(&p.text_document.uri)
            }
            // Lets the tests check that a panicking handler becomes an error answer.
            #[cfg(test)]
            "nnc/testPanic" => panic!("a deliberate test panic"),
            other => Err(Failure::new(ErrorCode::MethodNotFound, format!("unknown method `{other}`"))),
        }
    }

    fn notification(&mut self, n: Notification) -> Flow {
        match n.method.as_str() {
            "exit" => return Flow::Exit,
            "initialized" | "$/cancelRequest" | "$/setTrace" | "workspace/didChangeConfiguration" => {}
            _ if !self.initialized => {} // the spec drops notifications before `initialize`
            method => {
                let method = method.to_string();
                let outcome = catch_unwind(AssertUnwindSafe(|| self.document_notification(n)));
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("nnc lsp: {method}: {}", e.message),
                    Err(panic) => eprintln!("nnc lsp: internal error in {method}: {}", panic_message(&panic)),
                }
            }
        }
        Flow::Continue
    }

    fn document_notification(&mut self, n: Notification) -> Result<(), Failure> {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let p: lsp::DidOpenTextDocumentParams = params(n.params)?;
                self.state.open(p.text_document.uri, p.text_document.version, p.text_document.text);
            }
            "textDocument/didChange" => {
                let p: lsp::DidChangeTextDocumentParams = params(n.params)?;
                // Full sync: the last change holds the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    if change.range.is_some() {
                        return Err(Failure::new(
                            ErrorCode::InvalidParams,
                            "incremental changes are not supported (the server asked for full sync)",
                        ));
                    }
                    self.state.change(&p.text_document.uri, p.text_document.version, change.text);
                }
            }
            "textDocument/didSave" | "workspace/didChangeWatchedFiles" => self.state.invalidate_all(),
            "textDocument/didClose" => {
                let p: lsp::DidCloseTextDocumentParams = params(n.params)?;
                let uri = p.text_document.uri;
                self.state.close(&uri);
                // Its diagnostics go; if another open file uses it, they come back from there.
                self.publish_for(uri.clone(), Vec::new(), None)
                    .map_err(|e| Failure::new(ErrorCode::InternalError, e.to_string()))?;
                self.elsewhere.remove(&uri);
                self.state.invalidate_all();
            }
            _ => {} // unknown notifications are ignored, as the spec asks
        }
        Ok(())
    }

    fn publish_for(
        &mut self,
        uri: lsp::Uri,
        diagnostics: Vec<lsp::Diagnostic>,
        version: Option<i32>,
    ) -> Result<(), ServeError> {
        let params = lsp::PublishDiagnosticsParams { uri, diagnostics, version };
        self.send(Message::Notification(Notification::new("textDocument/publishDiagnostics".into(), params)))
    }

    /// Publishes diagnostics of stale documents, and of the files they `use`
    /// that are not open themselves.
    fn publish(&mut self) -> Result<(), ServeError> {
        let stale: Vec<lsp::Uri> = std::mem::take(&mut self.state.stale).into_iter().collect();
        if stale.is_empty() {
            return Ok(());
        }
        for uri in &stale {
            let Some(version) = self.state.docs.get(uri).map(|d| d.version) else { continue };
            let computed = catch_unwind(AssertUnwindSafe(|| self.state.ensure(uri)));
            let diags = match computed {
                Ok(true) => {
                    let state = &self.state;
                    match state.get(uri) {
                        Some(c) => {
                            convert::diagnostics(state, uri, &c.analysis, true, false).remove(uri).unwrap_or_default()
                        }
                        None => Vec::new(),
                    }
                }
                Ok(false) => Vec::new(),
                Err(panic) => {
                    let why = panic_message(&panic);
                    eprintln!("nnc lsp: internal error checking {}: {why}", uri.as_str());
                    vec![internal_error(&why)]
                }
            };
            self.publish_for(uri.clone(), diags, Some(version))?;
        }
        // `use`d files that are not open: what their users' analyses say.
        let mut now: HashMap<lsp::Uri, Vec<lsp::Diagnostic>> = HashMap::new();
        for (root, cached) in self.state.cached() {
            for (u, ds) in convert::diagnostics(&self.state, root, &cached.analysis, false, true) {
                if self.state.docs.contains_key(&u) {
                    continue;
                }
                let list = now.entry(u).or_default();
                for d in ds {
                    if !list.contains(&d) {
                        list.push(d);
                    }
                }
            }
        }
        // Files no longer used by anything lose their diagnostics; an open
        // document publishes its own (just above), which must not be cleared.
        let gone: Vec<lsp::Uri> = self
            .elsewhere
            .keys()
            .filter(|u| !now.contains_key(*u) && !self.state.docs.contains_key(*u))
            .cloned()
            .collect();
        for u in gone {
            self.publish_for(u, Vec::new(), None)?;
        }
        let mut changed: Vec<(lsp::Uri, Vec<lsp::Diagnostic>)> = now
            .iter()
            .filter(|(u, ds)| self.elsewhere.get(*u) != Some(*ds))
            .map(|(u, ds)| (u.clone(), ds.clone()))
            .collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        for (u, ds) in changed {
            self.publish_for(u, ds, None)?;
        }
        self.elsewhere = now;
        Ok(())
    }

    /// The analysis of an open document and the byte offset of a position in it.
    fn locate(&mut self, uri: &lsp::Uri, pos: lsp::Position) -> Option<usize> {
        let doc = self.state.docs.get(uri)?;
        let offset = convert::offset(&doc.lines, &doc.text, pos)?;
        self.state.ensure(uri).then_some(offset)
    }

    fn hover(&mut self, p: &lsp::TextDocumentPositionParams) -> Option<lsp::Hover> {
        let uri = &p.text_document.uri;
        let offset = self.locate(uri, p.position)?;
        let c = self.state.get(uri)?;
        let (value, span) = crate::hover::hover(&c.analysis, c.index(), offset)?;
        let root = convert::root(&c.analysis);
        Some(lsp::Hover {
            contents: lsp::HoverContents::Markup(lsp::MarkupContent { kind: lsp::MarkupKind::Markdown, value }),
            range: Some(convert::file_range(root, span)),
        })
    }

    fn inlay_hints(&mut self, uri: &lsp::Uri, range: lsp::Range) -> Option<Vec<lsp::InlayHint>> {
        let doc = self.state.docs.get(uri)?;
        let start = convert::offset(&doc.lines, &doc.text, range.start).unwrap_or(doc.text.len());
        let end = convert::offset(&doc.lines, &doc.text, range.end).unwrap_or(doc.text.len());
        if !self.state.ensure(uri) {
            return None;
        }
        let c = self.state.get(uri)?;
        let root = convert::root(&c.analysis);
        let within = nnc_syntax::Span::new(start.min(end), end.max(start));
        Some(
            crate::inlay::hints(&c.analysis, within)
                .into_iter()
                .map(|h| lsp::InlayHint {
                    position: convert::position(&root.lines, &root.text, h.offset),
                    label: lsp::InlayHintLabel::String(h.label),
                    kind: Some(lsp::InlayHintKind::TYPE),
                    text_edits: None,
                    tooltip: None,
                    padding_left: Some(false),
                    padding_right: Some(false),
                    data: None,
                })
                .collect(),
        )
    }

    fn completion(&mut self, p: &lsp::TextDocumentPositionParams) -> Option<Vec<lsp::CompletionItem>> {
        let uri = &p.text_document.uri;
        let offset = self.locate(uri, p.position)?;
        let c = self.state.get(uri)?;
        let text = &convert::root(&c.analysis).text;
        Some(crate::completion::complete(&c.analysis, c.index(), text, offset))
    }

    fn definition(&mut self, p: &lsp::TextDocumentPositionParams) -> Option<lsp::Location> {
        let uri = &p.text_document.uri;
        let offset = self.locate(uri, p.position)?;
        let c = self.state.get(uri)?;
        let index = c.index();
        let root = nnc_syntax::FileId(0);
        if let Some(link) = index.use_at(root, offset) {
            let target = self.state.uri_of_file(uri, &c.analysis, link.target)?;
            return Some(lsp::Location { uri: target, range: lsp::Range::default() });
        }
        let o = index.at(root, offset)?;
        let d = &index.defs[o.def];
        let target = self.state.uri_of_file(uri, &c.analysis, d.file)?;
        Some(lsp::Location { uri: target, range: convert::file_range(c.analysis.program.file(d.file), d.span) })
    }

    /// References in the document's own program, and in the programs of
    /// other open documents that load the same definition.
    fn references(
        &mut self,
        p: &lsp::TextDocumentPositionParams,
        include_declaration: bool,
    ) -> Option<Vec<lsp::Location>> {
        let uri = &p.text_document.uri;
        let offset = self.locate(uri, p.position)?;
        let c = self.state.get(uri)?;
        let index = c.index();
        let o = index.at(nnc_syntax::FileId(0), offset)?;
        let d = &index.defs[o.def];
        let def_uri = self.state.uri_of_file(uri, &c.analysis, d.file)?;
        let (def_span, def_name) = (d.span, d.name.clone());
        let others: Vec<lsp::Uri> = self.state.docs.keys().filter(|u| *u != uri).cloned().collect();
        for u in &others {
            self.state.ensure(u);
        }
        let mut out: Vec<lsp::Location> = Vec::new();
        let mut roots = vec![uri.clone()];
        roots.extend(others);
        for root in &roots {
            let Some(c) = self.state.get(root) else { continue };
            let index = c.index();
            // The same definition: same file and name span in that program.
            let def = index.defs.iter().position(|x| {
                x.span == def_span
                    && x.name == def_name
                    && self.state.uri_of_file(root, &c.analysis, x.file).as_ref() == Some(&def_uri)
            });
            let Some(def) = def else { continue };
            for occ in index.references(def) {
                let is_decl = occ.span == index.defs[def].span && occ.file == index.defs[def].file;
                if is_decl && !include_declaration {
                    continue;
                }
                let Some(u) = self.state.uri_of_file(root, &c.analysis, occ.file) else { continue };
                let loc =
                    lsp::Location { uri: u, range: convert::file_range(c.analysis.program.file(occ.file), occ.span) };
                if !out.contains(&loc) {
                    out.push(loc);
                }
            }
        }
        Some(out)
    }

    fn symbols(&mut self, uri: &lsp::Uri) -> Option<Vec<lsp::DocumentSymbol>> {
        if !self.state.ensure(uri) {
            return None;
        }
        let c = self.state.get(uri)?;
        let index = c.index();
        let root = convert::root(&c.analysis);
        let hints = crate::hover::hint_map(&c.analysis);
        let symbol = |d: &crate::nav::Def, children: Option<Vec<lsp::DocumentSymbol>>| {
            let detail = hints.get(&(d.file, d.span)).filter(|v| !v.is_unknown()).map(|v| v.to_string());
            #[allow(deprecated)] // `deprecated` is a required field of the struct
            lsp::DocumentSymbol {
                name: d.name.clone(),
                detail,
                kind: symbol_kind(d.kind),
                tags: None,
                deprecated: None,
                range: convert::file_range(root, d.decl.to(d.span)),
                selection_range: convert::file_range(root, d.span),
                children,
            }
        };
        let mut out = Vec::new();
        for (i, d) in index.defs.iter().enumerate() {
            if d.file != nnc_syntax::FileId(0) || d.owner.is_some() {
                continue;
            }
            let children: Vec<lsp::DocumentSymbol> = index
                .children(i)
                .filter(|(_, c)| {
                    matches!(c.kind, DefKind::Param | DefKind::Input | DefKind::Let | DefKind::Output | DefKind::Step)
                })
                .map(|(_, c)| symbol(c, None))
                .collect();
            let has_children = matches!(d.kind, DefKind::Model | DefKind::Block | DefKind::Train);
            out.push(symbol(d, has_children.then_some(children)));
        }
        Some(out)
    }

    fn formatting(&mut self, uri: &lsp::Uri) -> Result<Json, Failure> {
        let Some(doc) = self.state.docs.get(uri) else { return Ok(Json::Null) };
        match nnc_syntax::format::format_source(&doc.text) {
            Ok(formatted) if formatted == doc.text => to_json(Vec::<lsp::TextEdit>::new()),
            Ok(formatted) => {
                let end = convert::position(&doc.lines, &doc.text, doc.text.len());
                let edit =
                    lsp::TextEdit { range: lsp::Range { start: lsp::Position::default(), end }, new_text: formatted };
                to_json(vec![edit])
            }
            // Format-on-save of a half-written file: nothing to do, quietly.
            Err(nnc_syntax::format::FormatError::SyntaxErrors(_)) => Ok(Json::Null),
            Err(e) => Err(Failure::new(ErrorCode::RequestFailed, e.to_string())),
        }
    }
}

fn symbol_kind(k: DefKind) -> lsp::SymbolKind {
    match k {
        DefKind::Model => lsp::SymbolKind::CLASS,
        DefKind::Block => lsp::SymbolKind::FUNCTION,
        DefKind::Train => lsp::SymbolKind::EVENT,
        DefKind::Dim | DefKind::PatternDim => lsp::SymbolKind::CONSTANT,
        DefKind::Param => lsp::SymbolKind::TYPE_PARAMETER,
        DefKind::Input => lsp::SymbolKind::FIELD,
        DefKind::Let => lsp::SymbolKind::VARIABLE,
        DefKind::Output => lsp::SymbolKind::PROPERTY,
        DefKind::DataArray => lsp::SymbolKind::ARRAY,
        DefKind::Step => lsp::SymbolKind::METHOD,
    }
}

/// The project root of the session: the first workspace folder, else
/// `rootUri`, else the deprecated `rootPath` of `initialize`'s parameters.
/// Files outside it are not read (a diagnostic says so).
fn workspace_root(params: &Json) -> Option<Root> {
    let folder = params.get("workspaceFolders").and_then(|f| f.get(0)).and_then(|f| f.get("uri"));
    let uri = folder.or_else(|| params.get("rootUri")).and_then(Json::as_str);
    let path = match uri.and_then(|u| u.parse::<lsp::Uri>().ok()) {
        Some(u) => crate::uri::to_path(&u)?,
        None => std::path::PathBuf::from(params.get("rootPath").and_then(Json::as_str)?),
    };
    Some(Root::workspace(&path))
}

fn initialize_result() -> lsp::InitializeResult {
    let capabilities = lsp::ServerCapabilities {
        position_encoding: Some(lsp::PositionEncodingKind::UTF16),
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(lsp::TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(lsp::TextDocumentSyncKind::FULL),
            will_save: None,
            will_save_wait_until: None,
            save: Some(lsp::TextDocumentSyncSaveOptions::Supported(true)),
        })),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        inlay_hint_provider: Some(lsp::OneOf::Left(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        references_provider: Some(lsp::OneOf::Left(true)),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        completion_provider: Some(lsp::CompletionOptions {
            trigger_characters: Some(vec!["(".into(), ",".into(), "=".into(), ">".into()]),
            ..lsp::CompletionOptions::default()
        }),
        ..lsp::ServerCapabilities::default()
    };
    lsp::InitializeResult {
        capabilities,
        server_info: Some(lsp::ServerInfo { name: "nnc".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
    }
}

fn params<P: DeserializeOwned>(v: Json) -> Result<P, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::new(ErrorCode::InvalidParams, format!("invalid params: {e}")))
}

fn to_json<T: Serialize>(v: T) -> Result<Json, Failure> {
    serde_json::to_value(v).map_err(|e| Failure::new(ErrorCode::InternalError, e.to_string()))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

fn internal_error(why: &str) -> lsp::Diagnostic {
    lsp::Diagnostic {
        severity: Some(lsp::DiagnosticSeverity::ERROR),
        source: Some("nnc".into()),
        message: format!("internal error: the checker failed on this file ({why}); please report it"),
        ..lsp::Diagnostic::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn request(id: i32, method: &str, params: Json) -> Incoming {
        let id = serde_json::value::RawValue::from_string(id.to_string()).expect("an integer is JSON");
        Incoming::Request {
            id: transport::Id::parse(&id).expect("an integer id is valid"),
            method: method.into(),
            params,
        }
    }

    fn notification(method: &str, params: Json) -> Incoming {
        Incoming::Notification(Notification { method: method.into(), params })
    }

    /// The JSON bodies written, in order.
    fn bodies(out: &Shared) -> Vec<Json> {
        let bytes = out.0.lock().expect("lock").clone();
        let text = String::from_utf8(bytes).expect("utf-8");
        text.split("Content-Length: ")
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::from_str(s.split_once("\r\n\r\n").expect("frame").1).expect("json"))
            .collect()
    }

    #[test]
    fn a_panicking_handler_is_an_internal_error_and_serving_goes_on() {
        let out = Shared::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let hover =
            serde_json::json!({"textDocument": {"uri": "file:///a.nn"}, "position": {"line": 0, "character": 0}});
        for m in [
            request(1, "textDocument/hover", hover.clone()),
            request(2, "initialize", serde_json::json!({"capabilities": {}})),
            notification("initialized", serde_json::json!({})),
            request(3, "nnc/testPanic", Json::Null),
            request(4, "textDocument/hover", hover),
            request(5, "shutdown", Json::Null),
            request(6, "textDocument/hover", Json::Null),
            notification("exit", Json::Null),
        ] {
            tx.send(m).expect("send");
        }
        let exit = Server::new(out.clone()).serve(rx).expect("serve");
        assert_eq!(exit, Exit::Clean);
        let got = bodies(&out);
        let by_id =
            |id: i32| got.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no answer to {id}: {got:?}"));
        assert_eq!(by_id(1)["error"]["code"], ErrorCode::ServerNotInitialized as i32);
        assert!(by_id(2)["result"]["capabilities"]["hoverProvider"].as_bool().unwrap_or(false));
        assert_eq!(by_id(3)["error"]["code"], ErrorCode::InternalError as i32);
        assert!(by_id(3)["error"]["message"].as_str().is_some_and(|m| m.contains("deliberate")));
        assert_eq!(by_id(4)["result"], Json::Null);
        assert_eq!(by_id(5)["result"], Json::Null);
        assert_eq!(by_id(6)["error"]["code"], ErrorCode::InvalidRequest as i32);
    }
}
