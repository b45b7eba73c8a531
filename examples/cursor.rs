//! Page through every match with a cursor, as `accounts.search` with `openCursor=true`.
//!
//! ```text
//! cargo run --example cursor
//! ```

use acql::engine::{Engine, SearchOptions};
use acql::store::OpenMode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path().join("accounts.db"), OpenMode::Create)?;
    engine.import_generated(3_000, 11)?;

    let options = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    // The first page comes from the query; LIMIT is the page size.
    let mut page = engine.search(
        "SELECT email FROM emailAccounts WHERE hasLiteAccount = true LIMIT 250",
        &options,
    )?;
    let total = page.total_count;
    let (mut pages, mut seen) = (1, page.results.len() as u64);
    // Each cursor id names the next page; it is signed and stateless (nothing is held on
    // the server), and expires five minutes after it was issued.
    while let Some(cursor) = page.next_cursor_id.take() {
        page = engine.search_cursor(&cursor, &options)?;
        pages += 1;
        seen += page.results.len() as u64;
    }
    println!("{seen} records in {pages} pages; totalCount {total}");
    assert_eq!(seen, total);
    assert!(pages > 1);
    Ok(())
}
