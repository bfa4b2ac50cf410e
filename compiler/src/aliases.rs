//! Keras and PyTorch spellings → nnc's names, for "did you mean".
//!
//! Newcomers write what they know: `Dense`, `nn.Linear`, `kernel_size`, `return_sequences`,
//! `learning_rate`. Edit distance cannot find `kernel` from `kernel_size` (5 edits) or `lr` from
//! `learning_rate`, so these are looked up in a table first. Names are compared after
//! `normalise` (module prefixes dropped, case and underscores ignored), so `MaxPooling2D`,
//! `max_pooling2d` and `layers.MaxPooling2D` are one entry. A foreign name may have several nnc
//! names (`kernel_size` is `kernel` on a convolution but `size` on a pooling layer): the first
//! one among the candidates of the place where it was written wins.

/// Foreign name → nnc names, most likely first. Only names that edit distance misses, or
/// would get wrong, need an entry; names equal after [`normalise`] (`LSTM`, `Conv2D`, `beta_1`)
/// match without one.
const RENAMES: &[(&str, &[&str])] = &[
    // ---- layers (Keras, then PyTorch)
    ("Linear", &["dense"]),
    ("Convolution1D", &["conv1d"]),
    ("Convolution2D", &["conv2d"]),
    ("Conv2DTranspose", &["conv2d_transpose"]),
    ("ConvTranspose2d", &["conv2d_transpose"]),
    ("Deconvolution2D", &["conv2d_transpose"]),
    // `DepthwiseConv2D`, `SeparableConv1D` … equal ours once normalised; Keras's long spellings do not.
    ("SeparableConvolution1D", &["separable_conv1d"]),
    ("SeparableConvolution2D", &["separable_conv2d"]),
    ("DepthwiseConvolution2D", &["depthwise_conv2d"]),
    ("MaxPooling1D", &["max_pool"]),
    ("MaxPooling2D", &["max_pool"]),
    ("MaxPool1d", &["max_pool"]),
    ("MaxPool2d", &["max_pool"]),
    ("AveragePooling1D", &["avg_pool"]),
    ("AveragePooling2D", &["avg_pool"]),
    ("AvgPool1d", &["avg_pool"]),
    ("AvgPool2d", &["avg_pool"]),
    ("GlobalAveragePooling1D", &["global_avg_pool"]),
    ("GlobalAveragePooling2D", &["global_avg_pool"]),
    ("AdaptiveAvgPool2d", &["global_avg_pool"]),
    ("GlobalMaxPooling1D", &["global_max_pool"]),
    ("GlobalMaxPooling2D", &["global_max_pool"]),
    ("AdaptiveMaxPool2d", &["global_max_pool"]),
    ("UpSampling1D", &["upsample"]),
    ("UpSampling2D", &["upsample"]),
    ("Upsample", &["upsample"]),
    ("Concatenate", &["concat"]),
    ("cat", &["concat"]),
    ("BatchNormalization", &["batch_norm"]),
    ("BatchNorm1d", &["batch_norm"]),
    ("BatchNorm2d", &["batch_norm"]),
    ("LayerNormalization", &["layer_norm"]),
    ("LayerNorm", &["layer_norm"]),
    ("InstanceNorm1d", &["instance_norm"]),
    ("InstanceNorm2d", &["instance_norm"]),
    ("InstanceNormalization", &["instance_norm"]),
    ("RNN", &["simple_rnn"]),
    ("MultiheadAttention", &["multi_head_attention"]),
    ("MultiHeadAttention", &["multi_head_attention"]),
    ("Attention", &["multi_head_attention"]),
    ("LeakyReLU", &["leaky_relu"]),
    ("ReLU6", &["relu6", "relu"]),
    // ---- layers of the model zoo (issue 11); `ZeroPadding2D`, `Cropping2D`, `ReLU`, `Rescaling`,
    // `Normalization`, `SiLU`, `Mish`, `Hardswish`, `LayerScale` match once normalised.
    ("ZeroPad1d", &["zero_padding1d"]),
    ("ZeroPad2d", &["zero_padding2d"]),
    ("ConstantPad2d", &["zero_padding2d"]),
    ("Swish", &["swish", "silu"]),
    ("HardSiLU", &["hard_silu", "hard_swish"]),
    ("Hardsigmoid", &["hard_sigmoid"]),
    ("StochasticDepth", &["dropout"]),
    ("DropPath", &["dropout"]),
    ("layer_scale_init_value", &["init_values"]),
    ("init_value", &["init_values"]),
    ("layerscale_init", &["init_values"]),
    ("affine", &["scale"]),
    // ---- layer options
    ("kernel_size", &["kernel", "size"]),
    ("pool_size", &["size"]),
    ("strides", &["stride"]),
    ("dilation_rate", &["dilation"]),
    ("feature_group_count", &["groups"]),
    ("channel_multiplier", &["depth_multiplier"]),
    ("depthwise_initializer", &["init"]),
    ("embeddings_initializer", &["init"]),
    ("axis", &["axes"]),
    ("pointwise_initializer", &["init"]),
    ("use_bias", &["bias"]),
    ("kernel_initializer", &["init"]),
    ("weight_init", &["init"]),
    ("bias_initializer", &["bias_init"]),
    ("recurrent_initializer", &["recurrent_init"]),
    ("out_features", &["units"]),
    ("hidden_size", &["units"]),
    ("hidden_dim", &["units"]),
    ("out_channels", &["filters"]),
    ("num_filters", &["filters"]),
    ("return_sequences", &["sequences"]),
    ("return_state", &["state"]),
    ("merge_mode", &["merge"]),
    ("p", &["rate"]),
    ("dropout_rate", &["rate", "dropout"]),
    ("drop_rate", &["rate", "dropout"]),
    ("dropout", &["rate"]),
    ("rate", &["dropout"]),
    ("eps", &["epsilon"]),
    ("num_heads", &["heads"]),
    ("n_heads", &["heads"]),
    ("embed_dim", &["key_dim"]),
    ("use_causal_mask", &["causal"]),
    ("is_causal", &["causal"]),
    ("center", &["affine"]),
    ("scale", &["affine"]),
    ("elementwise_affine", &["affine"]),
    ("negative_slope", &["alpha"]),
    ("scale_factor", &["size"]),
    ("target_shape", &["shape"]),
    ("keepdim", &["keepdims"]),
    ("dim", &["axis", "axes"]),
    ("input_dim", &["vocab"]),
    ("num_embeddings", &["vocab"]),
    ("vocab_size", &["vocab"]),
    ("output_dim", &["dim", "units"]),
    ("embedding_dim", &["dim"]),
    ("sequence_length", &["max_len"]),
    ("maxlen", &["max_len"]),
    ("num_classes", &["depth", "classes"]),
    ("stddev", &["std"]),
    ("std", &["stddev"]),
    // ---- train blocks: fields, losses, optimizers, schedules
    ("batch_size", &["batch"]),
    ("num_epochs", &["epochs"]),
    ("n_epochs", &["epochs"]),
    ("max_epochs", &["epochs"]),
    ("optimiser", &["optimizer"]),
    ("validation_split", &["validate"]),
    ("validation_data", &["validate"]),
    ("scheduler", &["lr_schedule"]),
    ("lr_scheduler", &["lr_schedule"]),
    ("random_seed", &["seed"]),
    ("callbacks", &["early_stop"]),
    ("categorical_crossentropy", &["cross_entropy"]),
    ("sparse_categorical_crossentropy", &["cross_entropy"]),
    ("CrossEntropyLoss", &["cross_entropy"]),
    ("binary_crossentropy", &["binary_cross_entropy"]),
    ("BCELoss", &["binary_cross_entropy"]),
    ("BCEWithLogitsLoss", &["bce_with_logits"]),
    ("mean_squared_error", &["mse"]),
    ("MSELoss", &["mse"]),
    ("mean_absolute_error", &["l1", "mae"]),
    ("L1Loss", &["l1"]),
    ("NLLLoss", &["nll"]),
    ("learning_rate", &["lr"]),
    ("clipnorm", &["clip_norm"]),
    ("max_norm", &["clip_norm"]),
    ("clipvalue", &["clip_value"]),
    ("initial_accumulator_value", &["initial_accumulator"]),
    ("alpha", &["rho"]),
    ("decay_rate", &["rate"]),
    ("decay_steps", &["every"]),
    ("step_size", &["every"]),
    ("gamma", &["factor", "rate"]),
    ("ExponentialLR", &["exponential_decay"]),
    ("ExponentialDecay", &["exponential_decay"]),
    ("StepLR", &["step_decay"]),
    ("ReduceLROnPlateau", &["reduce_on_plateau"]),
    ("EarlyStopping", &["early_stop"]),
    ("RMSProp", &["rmsprop"]),
];

/// Foreign names with no nnc counterpart, and what to write instead.
const DROPPED: &[(&str, &str)] = &[
    ("in_features", "nnc infers input sizes from the input tensor's type: drop it"),
    ("in_channels", "nnc infers input sizes from the input tensor's type: drop it"),
    ("input_size", "nnc infers input sizes from the input tensor's type: drop it"),
    ("input_shape", "declare the shape on the model's `input` instead (`input x: [N, 28, 28, 1]`)"),
    ("num_features", "nnc infers the number of features from the input tensor's type: drop it"),
    ("normalized_shape", "nnc normalises over the last axis of the input: drop it"),
    ("batch_first", "nnc is always batch-first ([N, T, D]): drop it"),
    ("num_layers", "stack the layers instead: `|> lstm(64, sequences = true) |> lstm(64)`, or `repeat(n, …)`"),
    ("bidirectional", "wrap the layer instead: `bidirectional(lstm(64))`"),
    ("recurrent_dropout", "nnc's recurrent layers take `dropout` on their inputs only"),
    ("betas", "write `beta1 = …, beta2 = …`"),
    ("padding_mode", "nnc pads with zeros"),
    ("TimeDistributed", "dense and the activations apply to the last axis of [N, T, D] as they are: no wrapper needed"),
    ("Sequential", "write the layers as a pipeline: `x |> dense(64) |> relu |> dense(10)`"),
    ("Input", "declare inputs inside the model: `input x: [N, 784]`"),
    ("Activation", "write the activation as a layer of its own (`|> relu`) or as `activation = relu`"),
];

/// The name with module prefixes (`tf.keras.layers.`, `nn.`, `F.`, …) dropped, lower case,
/// without underscores.
fn normalise(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.chars().filter(|&c| c != '_').flat_map(char::to_lowercase).collect()
}

/// The nnc name among `candidates` that a Keras or PyTorch spelling stands for.
pub fn rename<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let key = normalise(name);
    for (foreign, targets) in RENAMES {
        if normalise(foreign) == key {
            for t in *targets {
                if let Some(c) = candidates.iter().find(|c| *c == t) {
                    return Some(c);
                }
            }
        }
    }
    // `LSTM`, `Conv2D`, `BatchNorm`-less spellings of our own names: equal once normalised.
    candidates.iter().copied().filter(|c| *c != name).find(|c| normalise(c) == key)
}

/// What to write instead of a Keras or PyTorch name that nnc has no counterpart for.
pub fn dropped(name: &str) -> Option<&'static str> {
    let key = normalise(name);
    DROPPED.iter().find(|(foreign, _)| normalise(foreign) == key).map(|(_, why)| *why)
}

/// The help for an unknown `name`: "did you mean" (a Keras/PyTorch alias, or a near miss
/// by edit distance), else what to write instead of a foreign name nnc does without.
pub fn help<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    // A known foreign name beats a near miss (`betas` is not a typo of `beta1`).
    if let (None, Some(instead)) = (rename(name, &candidates), dropped(name)) {
        return Some(instead.to_string());
    }
    crate::layers::suggest(name, candidates).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_and_pytorch_names_find_ours() {
        let conv = ["filters", "kernel", "stride", "padding", "dilation", "bias", "activation", "init"];
        assert_eq!(rename("kernel_size", &conv), Some("kernel"));
        assert_eq!(rename("kernel_size", &["size", "stride", "padding"]), Some("size"));
        assert_eq!(rename("strides", &conv), Some("stride"));
        assert_eq!(rename("use_bias", &conv), Some("bias"));
        assert_eq!(rename("out_channels", &conv), Some("filters"));
        assert_eq!(rename("return_sequences", &["units", "sequences", "state"]), Some("sequences"));
        assert_eq!(rename("learning_rate", &["lr", "momentum"]), Some("lr"));
        assert_eq!(rename("beta_1", &["lr", "beta1", "beta2"]), Some("beta1"));
        let layers = ["dense", "conv2d", "max_pool", "lstm", "batch_norm", "leaky_relu", "simple_rnn"];
        for (foreign, ours) in [
            ("Dense", "dense"),
            ("nn.Linear", "dense"),
            ("tf.keras.layers.Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pool"),
            ("LSTM", "lstm"),
            ("BatchNormalization", "batch_norm"),
            ("nn.BatchNorm2d", "batch_norm"),
            ("LeakyReLU", "leaky_relu"),
            ("SimpleRNN", "simple_rnn"),
        ] {
            assert_eq!(rename(foreign, &layers), Some(ours), "{foreign}");
        }
        // Only names the place takes.
        let zoo = ["zero_padding1d", "zero_padding2d", "cropping2d", "relu", "relu6", "rescaling", "normalization"];
        let zoo = [&zoo[..], &["silu", "swish", "hard_swish", "hard_silu", "mish", "layer_scale", "dropout"]].concat();
        for (foreign, ours) in [
            ("ZeroPadding2D", "zero_padding2d"),
            ("layers.ZeroPadding1D", "zero_padding1d"),
            ("nn.ZeroPad2d", "zero_padding2d"),
            ("Cropping2D", "cropping2d"),
            ("ReLU", "relu"),
            ("ReLU6", "relu6"),
            ("Rescaling", "rescaling"),
            ("Normalization", "normalization"),
            ("nn.SiLU", "silu"),
            ("nn.Hardswish", "hard_swish"),
            ("Mish", "mish"),
            ("LayerScale", "layer_scale"),
            ("StochasticDepth", "dropout"),
        ] {
            assert_eq!(rename(foreign, &zoo), Some(ours), "{foreign}");
        }
        assert_eq!(rename("layer_scale_init_value", &["init_values"]), Some("init_values"));
        assert_eq!(rename("kernel_size", &["units"]), None);
        assert_eq!(rename("dense", &layers), None, "a name is not its own alias");
    }

    #[test]
    fn depthwise_separable_and_grouped_spellings_find_ours() {
        let layers = ["conv2d", "depthwise_conv1d", "depthwise_conv2d", "separable_conv1d", "separable_conv2d"];
        for (foreign, ours) in [
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("keras.layers.DepthwiseConv1D", "depthwise_conv1d"),
            ("SeparableConv2D", "separable_conv2d"),
            ("SeparableConvolution2D", "separable_conv2d"),
            ("SeparableConv1D", "separable_conv1d"),
            ("nn.Conv2d", "conv2d"),
        ] {
            assert_eq!(rename(foreign, &layers), Some(ours), "{foreign}");
        }
        let opts = ["kernel", "depth_multiplier", "stride", "groups", "init"];
        assert_eq!(rename("channel_multiplier", &opts), Some("depth_multiplier"));
        assert_eq!(rename("feature_group_count", &opts), Some("groups"));
        assert_eq!(rename("depthwise_initializer", &opts), Some("init"));
    }

    #[test]
    fn names_without_a_counterpart_say_what_to_do() {
        assert!(dropped("in_features").is_some_and(|h| h.contains("infers")));
        assert!(dropped("batch_first").is_some());
        assert_eq!(dropped("units"), None);
        assert_eq!(help("kernel_size", ["kernel", "stride"]).as_deref(), Some("did you mean `kernel`?"));
        assert_eq!(help("kernal", ["kernel", "stride"]).as_deref(), Some("did you mean `kernel`?"));
        assert!(help("betas", ["beta1", "beta2"]).is_some_and(|h| h.contains("beta1 = …, beta2 = …")));
    }
}
