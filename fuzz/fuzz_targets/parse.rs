//! Fuzz target: the parser never panics, errors render, and every query it accepts
//! round-trips through `Display`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match acql::parse(src) {
        Ok(q) => {
            let printed = q.to_string();
            let again = acql::parse(&printed).expect("the printed form parses");
            assert_eq!(again, q, "round trip changed the tree: {printed}");
            assert_eq!(again.to_string(), printed, "printing is idempotent");
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= src.len());
            let _ = acql::diagnostic::render(src, &e);
            let _ = acql::diagnostic::summary(src, &e);
        }
    }
});
