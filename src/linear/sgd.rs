//! SGD (placeholder module filled below).
