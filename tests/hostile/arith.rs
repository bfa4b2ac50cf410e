//! Hostile inputs: arith (filled in by issue 9's work).
