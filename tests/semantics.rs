//! Integration tests: semantics.
