//! `nnc export`: a checked model in another framework's format.

pub mod onnx;
