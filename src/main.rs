//! The `acql` command.

fn main() {}
