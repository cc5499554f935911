//! The storage conformance suite (feature `testing`).
