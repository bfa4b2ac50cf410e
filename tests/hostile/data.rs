//! Hostile inputs: data (filled in by issue 9's work).
