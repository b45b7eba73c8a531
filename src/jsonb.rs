//! SQLite's JSONB format: encoding, decoding and rendering, in Rust.
