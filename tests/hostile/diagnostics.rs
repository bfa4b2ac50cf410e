//! Hostile inputs: diagnostics (filled in by issue 9's work).
