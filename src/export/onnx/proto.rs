//! The few ONNX messages nnc writes, as prost structs with the field numbers of
//! `onnx/onnx.proto` (IR version 8). onnx.proto is proto2: a singular scalar
//! that is set must be on the wire even when it is zero (the checker counts
//! which value field of an attribute is present), so those are `Option`s;
//! repeated scalars are unpacked, as proto2 writes them (parsers accept both).

/// `ModelProto`: the file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version the file follows.
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    /// The operator sets the graph uses.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The tool that wrote the file.
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    /// Its version.
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    /// A description of the model.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Free-form key/value pairs.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `OperatorSetIdProto`: an operator set and its version.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// The domain (empty: the default `ai.onnx`).
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    /// The opset version.
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// The value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// Constant tensors (the parameters).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// A description.
    #[prost(string, optional, tag = "10")]
    pub doc_string: Option<String>,
    /// The graph's inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The graph's outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Names of the operands (an empty name: an omitted optional operand).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Names of the results.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name.
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// The operator.
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    /// Its attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto.AttributeType` values nnc writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum AttributeType {
    /// `f`
    Float = 1,
    /// `i`
    Int = 2,
    /// `t`
    Tensor = 4,
    /// `ints`
    Ints = 7,
}

/// `AttributeProto`: exactly one value field is set, the one `type` names.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// An [`AttributeType`].
    #[prost(int32, optional, tag = "20")]
    pub r#type: Option<i32>,
    /// A float value.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// An integer value.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// A string value.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// A tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Integer values.
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
}

/// `TensorProto.DataType` values nnc writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum DataType {
    /// 32-bit float.
    Float = 1,
    /// 64-bit signed integer.
    Int64 = 7,
}

/// `TensorProto`: a constant, its elements as little-endian `raw_data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The shape.
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// A [`DataType`].
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    /// The name (an initializer's: the value it defines).
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    /// The elements, row-major, little-endian.
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
}

/// `ValueInfoProto`: a named, typed value (a graph input or output).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`, of which nnc writes only the `tensor_type` case of the oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// A tensor's element type and shape.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorTypeProto {
    /// A [`DataType`].
    #[prost(int32, optional, tag = "1")]
    pub elem_type: Option<i32>,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// One entry per axis.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size or a symbolic name (a oneof: one is set).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// A known size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A symbolic size (`N`).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

impl AttributeProto {
    fn named(name: &str, ty: AttributeType) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(ty as i32), ..Default::default() }
    }
    /// An integer attribute.
    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { i: Some(v), ..Self::named(name, AttributeType::Int) }
    }
    /// A float attribute.
    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { f: Some(v), ..Self::named(name, AttributeType::Float) }
    }
    /// A list-of-integers attribute (never empty: the checker needs one value field present).
    pub fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
        AttributeProto { ints: v, ..Self::named(name, AttributeType::Ints) }
    }
    /// A tensor attribute.
    pub fn tensor(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto { t: Some(t), ..Self::named(name, AttributeType::Tensor) }
    }
}

impl TensorProto {
    /// A float tensor.
    pub fn floats(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            name: Some(name.into()),
            raw_data: Some(raw),
        }
    }
    /// An int64 tensor.
    pub fn int64s(name: &str, dims: &[usize], values: &[i64]) -> TensorProto {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.into()),
            raw_data: Some(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Bytes written by protobuf's own encoder (`onnx.helper.make_attribute("axis", 0)
    /// .SerializeToString()`): name (1), i (3) present although 0, type INT (20).
    #[test]
    fn zero_int_attribute_is_on_the_wire() {
        let bytes = AttributeProto::int("axis", 0).encode_to_vec();
        assert_eq!(bytes, b"\n\x04axis\x18\x00\xa0\x01\x02");
    }

    #[test]
    fn ints_are_unpacked_and_dims_symbolic() {
        let a = AttributeProto::ints("perm", vec![0, 3, 1, 2]).encode_to_vec();
        assert_eq!(a, b"\n\x04perm@\x00@\x03@\x01@\x02\xa0\x01\x07");
        let d = Dimension { dim_param: Some("N".into()), dim_value: None }.encode_to_vec();
        assert_eq!(d, b"\x12\x01N");
    }

    #[test]
    fn tensors_round_trip() {
        let t = TensorProto::floats("w", &[2], &[1.0, -2.5]);
        let back = TensorProto::decode(t.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.raw_data.unwrap(), [0, 0, 128, 63, 0, 0, 32, 192]);
    }
}
