//! The value semantics of the language over JSON documents: path resolution, comparison,
//! words, dates, regex dialect.
