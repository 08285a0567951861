//! Block quantisation formats of GGML (layouts, dequantisation, quantisation).
