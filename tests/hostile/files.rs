//! Hostile inputs: files (filled in by issue 9's work).
