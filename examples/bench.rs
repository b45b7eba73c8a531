//! The bench runner without the CLI: times a query file on a database and prints median,
//! p95, rows, the ratio to a full-scan baseline and to hand-written SQL.
//!
//! ```text
//! cargo run --release --example bench -- DB QUERIES.txt [--json out.json] [--csv out.csv]
//! cargo run --release --example bench -- target/acql-bench/1m/acql.db scripts/bench/queries.txt --only Q2
//! ```
//!
//! The query-file format and the measurement rules are documented on `acql::bench`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

/// Times the queries of QUERIES on DB.
#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(flatten)]
    args: acql::bench::BenchArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut progress = |r: &acql::bench::QueryResult| {
        let status = match &r.acql {
            Ok(t) => acql::bench::format_duration(t.median()),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(std::io::stderr(), "  {}: {status}", r.name);
    };
    match acql::bench::execute(&cli.args, &mut progress) {
        Ok(report) => {
            print!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}
