//! Hostile inputs: runtime (filled in by issue 9's work).
