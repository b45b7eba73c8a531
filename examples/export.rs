//! Stream every match of a query to an NDJSON file in constant memory.
//!
//! ```text
//! cargo run --example export
//! ```

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;

use acql::catalog::Collection;
use acql::engine::{Engine, SearchOptions};
use acql::store::{ImportOptions, OpenMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path().join("accounts.db"), OpenMode::Create)?;
    engine.import_generated(5_000, 7)?;

    // `stream_json` hands each record over as compact JSON text, rendered straight from
    // the stored bytes: no page cap (LIMIT as written), no time limit unless one is set.
    let path = dir.path().join("newsletter.ndjson");
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let mut failed = None;
    let summary = engine.stream_json(
        "SELECT * FROM emailAccounts WHERE subscriptions.newsletter.email.isSubscribed = true",
        &SearchOptions::default(),
        &mut |record| match out.write_all(record).and_then(|()| out.write_all(b"\n")) {
            Ok(()) => ControlFlow::Continue(()),
            // Stop the query at the first failed write, and report it below.
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    drop(out);

    let written = std::fs::read_to_string(&path)?;
    println!(
        "exported {} of {} matching accounts ({} bytes)",
        summary.objects_count,
        summary.total_count,
        written.len()
    );
    assert_eq!(written.lines().count() as u64, summary.objects_count);
    assert!(summary.objects_count > 0);

    // The export reads back: a verbatim restore into another store gives the same documents.
    let copy = Engine::in_memory()?;
    let restored = copy.import_ndjson(
        written.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )?;
    assert_eq!(restored.inserted, summary.objects_count);
    println!("restored {} into a second store", restored.inserted);
    Ok(())
}
