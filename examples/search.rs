//! Open a store, fill it with generated accounts, and search it.
//!
//! ```text
//! cargo run --example search
//! ```

use acql::engine::{Engine, SearchOptions};
use acql::store::OpenMode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // `OpenMode::Create` makes the file when it is missing (with the default indexes).
    let engine = Engine::open(dir.path().join("accounts.db"), OpenMode::Create)?;

    // 2,000 realistic email accounts from the seeded generator, imported in one transaction.
    let report = engine.import_generated(2_000, 42)?;
    println!("imported {} accounts", report.inserted);

    let query = "SELECT email, profile.firstName, profile.age FROM emailAccounts \
                 WHERE profile.country = \"DE\" AND profile.age >= 30 \
                 ORDER BY profile.age DESC LIMIT 5";
    let page = engine.search(query, &SearchOptions::default())?;
    println!("{} of {} matches:", page.results.len(), page.total_count);
    for record in &page.results {
        println!("  {record}");
    }
    assert!(page.total_count > 0 && page.results.len() <= 5);

    // Aggregates and groups come back as records too.
    let groups = engine.search(
        "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country LIMIT 3",
        &SearchOptions::default(),
    )?;
    println!(
        "top countries: {}",
        serde_json::Value::Array(groups.results)
    );

    // The plan names the index it uses; a query error points at its position.
    println!("{}", engine.explain(query)?);
    let bad = "SELECT * FROM emailAccounts WHERE profile.country = DE";
    let err = engine.search(bad, &SearchOptions::default()).unwrap_err();
    println!("error {}: {}", err.vendor_code(), err.details(Some(bad)));
    Ok(())
}
