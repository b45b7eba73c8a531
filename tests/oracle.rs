//! Integration tests: oracle.
