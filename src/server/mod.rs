//! The HTTP server: the vendor REST methods over an `Engine`.
