//! exec::aggregate
