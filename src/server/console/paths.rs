//! The field paths offered by completion, in the console and in the REPL: one source, so
//! both front ends suggest the same names.
//!
//! The paths are the index catalog's patterns (up to their first `*`) and every path that
//! occurs in a sample of documents of each collection, written as a query must write them
//! (a key that is not a plain segment goes in backticks).

use std::ops::ControlFlow;

use crate::catalog::Collection;
use crate::engine::{Engine, SearchOptions};

/// Documents sampled per collection.
pub const PATH_SAMPLE: u32 = 200;
/// At most this many distinct paths are offered (subscription ids can be many).
pub const MAX_PATHS: usize = 5000;
/// Array elements looked into per array: paths run through arrays (`profile.likes.name`),
/// and the first elements show their shape.
const ARRAY_SAMPLE: usize = 8;

/// The known paths of `engine`'s store, sorted. A failing catalog read or sample only means
/// fewer paths, never an error: completion is a convenience.
pub fn known_paths(engine: &Engine) -> Vec<String> {
    let mut set = engine
        .catalog()
        .map(|c| c.path_prefixes())
        .unwrap_or_default();
    for c in Collection::ALL {
        let query = format!("SELECT * FROM {c} LIMIT {PATH_SAMPLE}");
        let _ = engine.stream(&query, &SearchOptions::default(), &mut |doc| {
            crate::value::for_each_path(doc, ARRAY_SAMPLE, &mut |path, _| {
                set.insert(path.to_owned());
                true
            });
            if set.len() >= MAX_PATHS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }
    set.into_iter().take(MAX_PATHS).collect()
}

pub use crate::ast::quote_segment;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ImportOptions;

    #[test]
    fn paths_come_from_documents_and_the_catalog() {
        let engine = Engine::in_memory().unwrap();
        let doc = r#"{"email":"a@b.c","profile":{"likes":[{"name":"x"}]},"subscriptions":{"jun4th.a001":{"email":{"isSubscribed":true}}}}"#;
        engine
            .import_ndjson(
                doc.as_bytes(),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        let paths = known_paths(&engine);
        for p in [
            "email",
            "profile.likes.name",
            "subscriptions.`jun4th.a001`.email.isSubscribed",
            // From the default catalog, before its first `*`.
            "subscriptions",
        ] {
            assert!(paths.iter().any(|q| q == p), "{p} missing from {paths:?}");
        }
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    }

    #[test]
    fn odd_keys_are_backticked() {
        assert_eq!(quote_segment("isSubscribed"), "isSubscribed");
        assert_eq!(quote_segment("a b"), "`a b`");
        assert_eq!(quote_segment(""), "``");
    }
}
