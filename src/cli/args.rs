//! The command line: clap definitions and the dispatch between `acql DB "QUERY"` and the
//! subcommands.
//!
//! `acql DB "QUERY"` and `acql import …` share the first positional slot. Clap resolves it
//! with `args_conflicts_with_subcommands`: a first word that names a subcommand starts that
//! subcommand, anything else is a database file (a file literally named `import` is reached
//! as `./import`). The tests in `tests/cli.rs` pin both readings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Output formats of query results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One page in the response envelope (`results`, `objectsCount`, `totalCount`,
    /// `nextCursorId`), as accounts.search returns it: LIMIT defaults to 300.
    Json,
    /// Every match (LIMIT only when written), one compact JSON record per line, streamed.
    Ndjson,
    /// Every match as an aligned table that fits the terminal; nested fields become
    /// dotted columns.
    Table,
    /// Every match as RFC 4180 CSV with a header row; nested fields become dotted columns.
    Csv,
    /// One field per line (`name = value`), a blank line between records: for wide
    /// documents.
    Line,
    /// A Markdown (GitHub) table.
    Markdown,
}

impl Format {
    /// The name used on the command line and in `.mode`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Line => "line",
            Format::Markdown => "markdown",
        }
    }

    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Ndjson,
        Format::Table,
        Format::Csv,
        Format::Line,
        Format::Markdown,
    ];

    /// Parses a `.mode` argument (case-insensitive).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The names of every format, `json|ndjson|…`.
    pub fn names(sep: &str) -> String {
        Format::ALL.map(Format::name).join(sep)
    }
}

const AFTER_HELP: &str = "\
Examples:
  acql                                  REPL on the demo store (generated on first use)
  acql --demo \"SELECT * FROM emailAccounts LIMIT 3\"
  acql my.db                            REPL on my.db (created when missing)
  acql my.db \"SELECT count(*) FROM emailAccounts\"
  echo \"SELECT email FROM emailAccounts\" | acql my.db --format csv
  acql my.db < report.sql               run each ;-terminated statement; stop at the first error
  acql fields my.db profile             the paths under profile, their types and sample values
  acql gen --count 10000 --seed 7 | acql import my.db -
  acql export my.db \"SELECT * FROM emailAccounts WHERE hasFullAccount = true\"

Exit codes: 0 success, 1 query or data error, 2 usage error.";

/// acql: the accounts.search query language over a local account store.
#[derive(Debug, Parser)]
#[command(
    name = "acql",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// A subcommand; without one, acql runs a query or opens the REPL.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `acql [DB] [QUERY]`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `acql [DB] [QUERY]`: the REPL, or one query.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Database file. Without it (or with --demo) acql uses the demo store.
    #[arg(value_name = "DB")]
    pub db: Option<PathBuf>,
    /// A query to run once. Without it acql reads the query from standard input when
    /// that is not a terminal, and opens the REPL otherwise.
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,
    /// Use the demo store (then the only positional argument is the query).
    #[arg(long)]
    pub demo: bool,
    /// Query options.
    #[command(flatten)]
    pub query_opts: QueryOpts,
}

/// Options of one query.
#[derive(Clone, Debug, Default, Args)]
pub struct QueryOpts {
    /// Output format [default: json for one query, table in the REPL].
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Open a cursor (`openCursor=true`): print one page and its `nextCursorId`.
    #[arg(long, visible_alias = "cursor")]
    pub open_cursor: bool,
    /// Print the page that a cursor id names (from a previous `--open-cursor` call).
    #[arg(long, value_name = "ID", conflicts_with = "open_cursor")]
    pub cursor_id: Option<String>,
    /// Query timeout in seconds. A json page keeps the vendor's limits (default 20, at
    /// most 60); streamed output (ndjson, csv, table, export) has no timeout unless this
    /// sets one, and any value is honoured.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Table width in columns [default: the terminal's width; unlimited when not a terminal].
    #[arg(long, value_name = "COLUMNS")]
    pub width: Option<usize>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one query (the same as `acql DB QUERY`).
    Query(QueryArgs),
    /// Open the REPL (the same as `acql [DB]`).
    Repl(ReplArgs),
    /// Load NDJSON documents into a database (created when missing).
    Import(ImportArgs),
    /// Write documents as NDJSON (a whole collection, or what a query selects).
    Export(ExportArgs),
    /// Write a seeded synthetic dataset of email accounts as NDJSON.
    Gen(GenArgs),
    /// Show the plan of a query and SQLite's plan for it.
    Explain(ExplainArgs),
    /// List the field paths of a collection with their JSON types, how many documents
    /// have each, and sample values (from a sample of documents, stated in the output).
    Fields(FieldsArgs),
    /// List, add or drop indexes.
    Index(IndexArgs),
    /// Serve the vendor's REST methods (accounts.search, importLiteAccount, …) over HTTP.
    Serve(super::serve::ServeArgs),
    /// Time the queries of a file on a database: median, p95, rows, and the ratio to a
    /// full scan and to hand-written SQL.
    Bench(super::bench::BenchArgs),
}

/// `acql query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Database file (must exist).
    pub db: PathBuf,
    /// The query; read from standard input when omitted.
    pub query: Option<String>,
    /// Query options.
    #[command(flatten)]
    pub opts: QueryOpts,
}

/// `acql repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// Database file (created when missing); the demo store when omitted.
    pub db: Option<PathBuf>,
    /// With a script on standard input: stop at the first failing command (exit 1)
    /// instead of going on. `acql DB < script` always stops there.
    #[arg(long)]
    pub bail: bool,
}

/// `acql fields`.
#[derive(Debug, Args)]
pub struct FieldsArgs {
    /// Database file (must exist).
    pub db: PathBuf,
    /// Show only paths that start with this (`profile`, `subscriptions.news`).
    pub prefix: Option<String>,
    /// Collection.
    #[arg(long, short = 'c', default_value = "emailAccounts", value_parser = parse_collection)]
    pub collection: acql::catalog::Collection,
    /// Documents to read (the first N in insertion order).
    #[arg(long, value_name = "N", default_value_t = 1000, conflicts_with = "all")]
    pub sample: u64,
    /// Read every document instead of a sample.
    #[arg(long)]
    pub all: bool,
}

/// `acql import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Database file (created when missing).
    pub db: PathBuf,
    /// NDJSON file, or `-` for standard input.
    pub file: PathBuf,
    /// Collection to load into.
    #[arg(long, short = 'c', default_value = "emailAccounts", value_parser = parse_collection)]
    pub collection: acql::catalog::Collection,
    /// Skip invalid lines (each is reported) instead of rolling the whole import back.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Overwrite documents whose key already exists instead of failing.
    #[arg(long)]
    pub replace: bool,
    /// No progress bar and no summary line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Let other processes read the store while it loads. By default an import takes a
    /// store no one else has open for itself, writing each page once instead of through
    /// the write-ahead log (faster; other connections wait until it commits).
    #[arg(long)]
    pub shared: bool,
}

/// `acql export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Database file (must exist).
    pub db: PathBuf,
    /// A query whose records to write; the whole collection when omitted.
    pub query: Option<String>,
    /// Collection to export when no query is given.
    #[arg(long, short = 'c', default_value = "emailAccounts", value_parser = parse_collection)]
    pub collection: acql::catalog::Collection,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up after this many seconds (by default an export runs to the end).
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
}

/// `acql gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of documents.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub count: u64,
    /// Random seed: the same seed gives the same documents.
    #[arg(long, short = 's', default_value_t = 42)]
    pub seed: u64,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `acql explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Database file (must exist); its indexes decide the plan.
    pub db: PathBuf,
    /// The query; read from standard input when omitted.
    pub query: Option<String>,
    /// Run the query and show each statement's actual rows, runs and time.
    #[arg(long)]
    pub analyze: bool,
}

/// `acql index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Database file.
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: IndexAction,
}

/// `acql index DB add|drop|count|list`.
#[derive(Debug, Subcommand)]
pub enum IndexAction {
    /// List the declared indexes.
    List,
    /// Declare an index and build it (the file is created when missing).
    Add(IndexSpec),
    /// Drop an index.
    Drop(IndexSpec),
    /// Keep a table of per-key document counts for a value or composite index, so counts,
    /// aggregates and groups over it read one row per key (an import into an empty
    /// collection and `add` give one to indexes whose keys repeat by themselves).
    Count(CountSpec),
}

/// `acql index DB count`.
#[derive(Debug, Args)]
pub struct CountSpec {
    /// Which index.
    #[command(flatten)]
    pub index: IndexSpec,
    /// Stop counting its keys instead (single writes skip the upkeep), and keep imports
    /// and `add` from counting them again until `count` without `--off`.
    #[arg(long)]
    pub off: bool,
}

/// Which index.
#[derive(Debug, Args)]
pub struct IndexSpec {
    /// Path pattern, e.g. `data.loyalty.tier` or `subscriptions.*.email.isSubscribed`; two
    /// patterns without `*`, e.g. `"profile.country, profile.age"`, make a composite index.
    pub pattern: String,
    /// Collection.
    #[arg(long, short = 'c', default_value = "emailAccounts", value_parser = parse_collection)]
    pub collection: acql::catalog::Collection,
    /// `value` (=, IN, ranges, ORDER BY) or `words` (CONTAINS) [default: value; for
    /// drop, the one index on PATTERN, and required when both kinds exist].
    #[arg(long, short = 'k', value_parser = parse_kind)]
    pub kind: Option<acql::catalog::IndexKind>,
}

/// Parses `--timeout`: positive, finite seconds that a `Duration` can hold (`0`, `-1`,
/// `NaN`, `inf` and `1e20` are usage errors, not silently ignored or a panic).
pub fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a timeout: expected seconds from 1e-9 to 1e18");
    let secs: f64 = text.trim().parse().map_err(|_| bad())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(bad());
    }
    match std::time::Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() && secs <= 1e18 => Ok(d),
        _ => Err(bad()),
    }
}

/// Parses a collection name, case-insensitively.
pub fn parse_collection(name: &str) -> Result<acql::catalog::Collection, String> {
    acql::catalog::Collection::from_name(name)
        .ok_or_else(|| format!("unknown collection `{name}` (expected emailAccounts or accounts)"))
}

/// Parses an index kind.
pub fn parse_kind(name: &str) -> Result<acql::catalog::IndexKind, String> {
    match name.to_ascii_lowercase().as_str() {
        "value" => Ok(acql::catalog::IndexKind::Value),
        "words" => Ok(acql::catalog::IndexKind::Words),
        "composite" => Ok(acql::catalog::IndexKind::Composite),
        _ => Err(format!(
            "unknown index kind `{name}` (expected value, words or composite)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn first_word_names_a_subcommand_or_a_database() {
        let cli = Cli::try_parse_from(["acql", "import", "x.db", "-"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Import(_))));
        let cli = Cli::try_parse_from(["acql", "x.db", "SELECT * FROM accounts"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.db.as_deref(), Some(std::path::Path::new("x.db")));
        assert_eq!(cli.run.query.as_deref(), Some("SELECT * FROM accounts"));
        let cli = Cli::try_parse_from(["acql", "--format", "csv", "./import", "q"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.query_opts.format, Some(Format::Csv));
        let cli =
            Cli::try_parse_from(["acql", "serve", "x.db", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(_))));
        let cli = Cli::try_parse_from(["acql"]).unwrap();
        assert!(cli.command.is_none() && cli.run.db.is_none());
    }
}
