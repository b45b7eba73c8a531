//! `Display` for the syntax tree: canonical query text (written with the parser).
