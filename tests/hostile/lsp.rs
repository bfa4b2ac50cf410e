//! Hostile inputs: lsp (filled in by issue 9's work).
