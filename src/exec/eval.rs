//! exec::eval
