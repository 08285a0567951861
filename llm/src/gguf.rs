//! GGUF reader (v2, v3).
