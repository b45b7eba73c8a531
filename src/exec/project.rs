//! exec::project
