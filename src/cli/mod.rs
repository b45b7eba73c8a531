//! The `acql` binary's terminal side: argument handling, output formats, the REPL, the
//! demo store, progress bars, the bench runner. The library never prints; everything printed
//! lives here (and in the server's log setup).

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod fields;
pub mod output;
pub mod progress;
pub mod repl;
pub mod serve;

use std::io::{IsTerminal, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use acql::engine::{Engine, SearchOptions};
use acql::store::{OpenMode, Store, WaitForImport};
use clap::Parser;

use args::{Cli, Command, Format, QueryOpts};
use output::{Out, Summary};

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage that clap cannot see (exit 2).
    Usage(String),
    /// A query or data error; the message is ready to print (exit 1).
    Failed(String),
    /// Standard output was closed by the reader (`| head`): end quietly with exit 0.
    BrokenPipe,
    /// Errors were already printed (a REPL script that had failing commands): exit 1.
    Reported,
}

impl CliError {
    /// A query or data error.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::Failed(message.into())
    }

    /// A failed write to the result stream.
    pub fn from_write(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Failed(format!("cannot write output: {e}"))
        }
    }

    /// A library error; parse errors are rendered against `src` with a caret.
    pub fn from_engine(e: acql::Error, src: Option<&str>) -> CliError {
        CliError::Failed(describe(&e, src))
    }
}

/// Renders a library error for a person: a parse error shows the query line with a caret.
pub fn describe(e: &acql::Error, src: Option<&str>) -> String {
    match (e, src) {
        (acql::Error::Parse(pe), Some(src)) => acql::diagnostic::render(src, pe),
        (acql::Error::Plan(pe), Some(src)) => match pe.span() {
            Some(span) if span.start < span.end && span.end <= src.len() => {
                mark(src, span, &e.to_string())
            }
            _ => e.to_string(),
        },
        _ => e.to_string(),
    }
}

/// `message`, then the source line holding `span` with a caret run under it (the layout of
/// `diagnostic::render`, for errors found after parsing).
fn mark(src: &str, span: acql::span::Span, message: &str) -> String {
    let (line_no, col) = acql::span::Span::line_col(src, span.start);
    let line = src.lines().nth(line_no - 1).unwrap_or("");
    let start_in_line = col - 1;
    let line_chars = line.chars().count();
    let width = src
        .get(span.start..span.end)
        .map_or(1, |t| t.chars().count())
        .clamp(1, line_chars.saturating_sub(start_in_line).max(1));
    let gutter = line_no.to_string().len();
    format!(
        "error: {message}\n{:gutter$}--> line {line_no}, column {col}\n{:gutter$} |\n{line_no} | {line}\n{:gutter$} | {}{}\n",
        "",
        "",
        "",
        " ".repeat(start_in_line),
        "^".repeat(width)
    )
}

/// Prints an error on stderr with one `error:` prefix (rendered parse errors carry their own).
pub fn print_error(msg: &str) {
    let msg = msg.trim_end();
    if msg.starts_with("error:") {
        eprintln!("{msg}");
    } else {
        eprintln!("error: {msg}");
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2. A closed
            // stdout while printing help is not worth a panic either.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) | Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(CliError::Failed(msg)) => {
            print_error(&msg);
            ExitCode::from(1)
        }
        Err(CliError::Reported) => ExitCode::from(1),
        Err(CliError::Usage(msg)) => {
            print_error(&msg);
            eprintln!("\nFor more information, try '--help'.");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Query(a)) => {
            match (a.query, &a.opts.cursor_id) {
                (Some(q), _) => one_shot(&open_read_only(&a.db)?, &q, &a.opts),
                // A cursor id carries its query.
                (None, Some(_)) => one_shot(&open_read_only(&a.db)?, "", &a.opts),
                // A script may hold dot-commands that write (`.import`, `.index`).
                (None, None) => script(open_existing(&a.db)?, Some(a.db), &a.opts),
            }
        }
        Some(Command::Repl(a)) => {
            let options = repl::ShellOptions::repl(a.bail);
            match a.db {
                Some(db) => repl::run(open_create(&db)?, Some(db), options),
                None => repl::run(demo::open()?, None, options),
            }
        }
        Some(Command::Fields(a)) => commands::fields(&a),
        Some(Command::Import(a)) => commands::import(&a),
        Some(Command::Export(a)) => commands::export(&a),
        Some(Command::Gen(a)) => commands::generate(&a),
        Some(Command::Explain(a)) => {
            let query = query_text(a.query)?;
            commands::explain(&open_read_only(&a.db)?, &query, a.analyze)
        }
        Some(Command::Index(a)) => commands::index(&a),
        Some(Command::Serve(a)) => serve(&a),
        Some(Command::Bench(a)) => bench(&a),
        None => run_default(cli.run),
    }
}

/// `acql serve`: the database file (created when missing) or the demo store, served until
/// SIGINT or SIGTERM. Inconsistent flags or config are usage errors (exit 2).
fn serve(a: &serve::ServeArgs) -> Result<(), CliError> {
    use acql::server::ServeError;
    let usage = |e: ServeError| match e {
        ServeError::Config(msg) => CliError::Usage(msg),
        other => CliError::failed(other.to_string()),
    };
    let (listen, config) = a.resolve().map_err(usage)?;
    let (engine, name) = match &a.db {
        Some(db) if !a.demo => (
            Engine::open(db, OpenMode::Create).map_err(|e| CliError::failed(e.to_string()))?,
            db.display().to_string(),
        ),
        _ => (demo::open()?, "the demo store".to_owned()),
    };
    acql::server::run(engine, &name, listen, config, a.log()).map_err(usage)
}

/// `acql bench DB QUERIES`: progress on stderr, the table on stdout; exit 1 unless every
/// query ran and agreed with its full-scan baseline.
fn bench(a: &bench::BenchArgs) -> Result<(), CliError> {
    let report = bench::execute(a, &mut |r| eprintln!("acql: timed {}", r.name))
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut out = output::Out::stdout();
    out.str(&report.to_string())?;
    out.flush()?;
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::failed(
            "some queries failed or disagreed with their full-scan baseline",
        ))
    }
}

/// `acql [--demo] [DB] [QUERY]`.
fn run_default(a: args::RunArgs) -> Result<(), CliError> {
    let (db, query) = match (a.demo, a.db, a.query) {
        (true, Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "with --demo, give only the query (no database file)".into(),
            ));
        }
        // `acql --demo "SELECT …"`: the one positional is the query.
        (true, Some(q), None) => (None, Some(q.to_string_lossy().into_owned())),
        (true, None, None) => (None, None),
        // `acql "SELECT …"` (no such file, reads as a query): the demo store, so
        // `cargo run -- "SELECT …"` shows results without a database.
        (false, Some(db), None) if !db.exists() && looks_like_query(&db.to_string_lossy()) => {
            (None, Some(db.to_string_lossy().into_owned()))
        }
        (_, db, query) => (db, query),
    };
    if let Some(db) = &db
        && !db.exists()
        && let Some(command) = misspelled_command(&db.to_string_lossy())
    {
        return Err(CliError::Usage(format!(
            "`{}` is neither a database file nor a command; did you mean `acql {command}`?",
            db.display()
        )));
    }
    let interactive = std::io::stdin().is_terminal();
    // A cursor id carries its query.
    let query = match query {
        None if a.query_opts.cursor_id.is_some() => Some(String::new()),
        q => q,
    };
    match (db, query) {
        (Some(db), Some(q)) => one_shot(&open_read_only(&db)?, &q, &a.query_opts),
        (None, Some(q)) => one_shot(&demo::open()?, &q, &a.query_opts),
        // Standard input that is not a terminal is a script: `acql DB < report.sql`.
        (Some(db), None) if !interactive => script(open_existing(&db)?, Some(db), &a.query_opts),
        (None, None) if !interactive => script(demo::open()?, None, &a.query_opts),
        (Some(db), None) => repl::run(open_create(&db)?, Some(db), repl::ShellOptions::repl(false)),
        (None, None) => repl::run(demo::open()?, None, repl::ShellOptions::repl(false)),
    }
}

/// Runs standard input as a script: each statement prints as `acql DB "STATEMENT"` would
/// (`--format`, json by default), dot-commands work, and the first failure stops it
/// (exit 1).
fn script(engine: Engine, db: Option<PathBuf>, opts: &QueryOpts) -> Result<(), CliError> {
    let options = repl::ShellOptions {
        batch: true,
        mode: opts.format.unwrap_or(Format::Json),
        bail: true,
        query: opts.clone(),
    };
    repl::run(engine, db, options)
}

/// The subcommands' names (a test checks them against clap's).
const COMMANDS: [&str; 10] = [
    "query", "repl", "import", "export", "gen", "explain", "fields", "index", "serve", "bench",
];

/// The subcommand that `word` (a first argument that is no file) misspells, if any:
/// `serv` → `serve`.
fn misspelled_command(word: &str) -> Option<&'static str> {
    if word.contains(['.', '/', '\\']) || looks_like_query(word) {
        return None;
    }
    let lower = word.to_lowercase();
    COMMANDS
        .into_iter()
        .map(|n| (acql::diagnostic::edit_distance(&lower, n), n))
        .filter(|(d, n)| *d <= if n.len() <= 4 { 1 } else { 2 })
        .min()
        .map(|(_, n)| n)
}

/// A lone argument that is no file but starts like a query is a query (on the demo store).
fn looks_like_query(text: &str) -> bool {
    let t = text.trim_start();
    t.get(..7)
        .is_some_and(|head| head.eq_ignore_ascii_case("select "))
}

/// The query argument, or standard input when it is absent.
fn query_text(arg: Option<String>) -> Result<String, CliError> {
    if let Some(q) = arg {
        return Ok(q);
    }
    if std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no query: pass it as an argument or on standard input".into(),
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::failed(format!("cannot read the query from standard input: {e}")))?;
    if text.trim().is_empty() {
        return Err(CliError::Usage("no query: standard input was empty".into()));
    }
    Ok(text)
}

/// Whether a database argument is a PostgreSQL URL (`postgres://…`) rather than a file.
pub fn is_database_url(db: &Path) -> bool {
    #[cfg(feature = "postgres")]
    if let Some(text) = db.to_str() {
        return acql::pg::is_url(text);
    }
    let _ = db;
    false
}

/// Opens a database read-only (queries, `explain`, `export`, `index list`): never creates,
/// migrates or otherwise writes the file.
pub fn open_read_only(db: &Path) -> Result<Engine, CliError> {
    open_engine(db, OpenMode::ReadOnly)
}

/// Opens a database that must exist, for a command that writes (`index drop`).
pub fn open_existing(db: &Path) -> Result<Engine, CliError> {
    open_engine(db, OpenMode::MustExist)
}

/// Opens a database, creating it when missing (commands that write).
pub fn open_create(db: &Path) -> Result<Engine, CliError> {
    if !db.exists() && !is_database_url(db) {
        // Said on stderr so that a typo in the path does not go unnoticed.
        eprintln!("acql: creating a new database at {}", db.display());
    }
    open_engine(db, OpenMode::Create)
}

/// Opens `db`, waiting (and saying so on stderr) while another process imports into it
/// exclusively.
fn open_engine(db: &Path, mode: OpenMode) -> Result<Engine, CliError> {
    if is_database_url(db) {
        return Engine::open(db, mode).map_err(|e| {
            CliError::failed(format!(
                "cannot open {}: {}",
                db.display(),
                describe(&e, None)
            ))
        });
    }
    if mode != OpenMode::Create && !db.exists() {
        return Err(CliError::failed(format!(
            "no database at {} (commands that only read never create one; `acql import` or the REPL do)",
            db.display()
        )));
    }
    let wait = WaitForImport {
        limit: None,
        notice: Some(|db| {
            eprintln!(
                "acql: an import into {} is in progress; waiting for it to commit (Ctrl-C to give up)",
                db.display()
            );
        }),
    };
    Store::open_with(db, mode, &wait)
        .map(Engine::from_store)
        .map_err(|e| {
            CliError::failed(format!(
                "cannot open {}: {}",
                db.display(),
                describe(&e.into(), None)
            ))
        })
}

/// Runs one query and prints it to stdout.
fn one_shot(engine: &Engine, query: &str, opts: &QueryOpts) -> Result<(), CliError> {
    let mut out = Out::stdout();
    let format = opts.format.unwrap_or(Format::Json);
    let width = opts.width.or_else(|| {
        if out.is_terminal {
            terminal_width()
        } else {
            None
        }
    });
    let search = search_options(opts, None);
    run_query(
        engine,
        query,
        format,
        Extent::All,
        width,
        opts,
        &search,
        false,
        &mut out,
    )?;
    out.flush()?;
    if opts.cursor_id.is_none() {
        for w in fields::unknown_path_warnings(engine, query, None) {
            eprintln!("{w}");
        }
    }
    Ok(())
}

/// The terminal's width, when stdout is one.
pub fn terminal_width() -> Option<usize> {
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
}

/// Engine options from command-line options.
pub fn search_options(opts: &QueryOpts, cancel: Option<Arc<AtomicBool>>) -> SearchOptions {
    SearchOptions {
        open_cursor: opts.open_cursor,
        timeout: opts.timeout,
        cancel,
    }
}

/// How many records a query prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// One page, as `accounts.search` returns it (LIMIT defaults to 300, at most 10000).
    Page,
    /// Every match (LIMIT only when written), streamed in constant memory.
    All,
}

/// Streams a query's records to `out` as NDJSON lines. The engine renders each record as
/// JSON text itself (straight from the stored bytes for `SELECT *`): no `Value` is built
/// per record. The outer error is a failed write (which stops the query and wins over its
/// result); the inner one is the engine's, for the caller to describe.
pub fn stream_ndjson(
    engine: &Engine,
    query: &str,
    search: &SearchOptions,
    out: &mut Out,
) -> Result<acql::Result<acql::engine::StreamSummary>, CliError> {
    let mut failure = None;
    let streamed = engine.stream_json(query, search, &mut |json| match out
        .write(json)
        .and_then(|()| out.write(b"\n"))
    {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failure = Some(e);
            ControlFlow::Break(())
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(streamed),
    }
}

/// Runs `query` and writes it in `format`.
///
/// `json` always prints one page in the response envelope (what `accounts.search`
/// returns), and so does any format when a cursor is involved (the next cursor id goes to
/// stderr). Otherwise `extent` decides: one page, or every record streamed through
/// `Engine::stream` in constant memory.
///
/// A page that holds fewer records than match, when the query did not ask for that
/// (no LIMIT, or one above the 10,000 cap), says so and how to get the rest: in the
/// table's footer, on stderr for the other formats. `repl` words that advice for the REPL.
#[allow(clippy::too_many_arguments)] // each is one independent choice of the caller
pub fn run_query(
    engine: &Engine,
    query: &str,
    format: Format,
    extent: Extent,
    width: Option<usize>,
    opts: &QueryOpts,
    search: &SearchOptions,
    repl: bool,
    out: &mut Out,
) -> Result<Summary, CliError> {
    let paged = extent == Extent::Page
        || format == Format::Json
        || opts.open_cursor
        || opts.cursor_id.is_some();
    if paged {
        let page = match &opts.cursor_id {
            Some(id) => engine
                .search_cursor(id, search)
                .map_err(|e| CliError::from_engine(e, None))?,
            None => engine
                .search(query, search)
                .map_err(|e| CliError::from_engine(e, Some(query)))?,
        };
        let mut summary = Summary {
            objects_count: page.results.len() as u64,
            total_count: page.total_count,
            next_cursor_id: page.next_cursor_id,
            notice: None,
        };
        if opts.cursor_id.is_none() && !opts.open_cursor {
            summary.notice = cut_notice(engine, query, &summary, repl);
        }
        if format == Format::Json {
            output::write_envelope(out, &page.results, &summary)?;
            if let Some(n) = &summary.notice {
                out.flush()?;
                eprintln!("acql: {n}");
            }
        } else {
            let mut sink = output::sink_for(format, width);
            for r in &page.results {
                sink.record(out, r)?;
            }
            sink.finish(out, &summary)?;
            if let Some(id) = &summary.next_cursor_id {
                eprintln!("nextCursorId: {id}");
            }
            if let (Some(n), false) = (&summary.notice, format == Format::Table) {
                out.flush()?;
                eprintln!("acql: {n}");
            }
        }
        return Ok(summary);
    }
    if format == Format::Ndjson {
        let s = stream_ndjson(engine, query, search, out)?
            .map_err(|e| CliError::from_engine(e, Some(query)))?;
        return Ok(Summary {
            objects_count: s.objects_count,
            total_count: s.total_count,
            next_cursor_id: None,
            notice: None,
        });
    }
    let mut failure = None;
    let mut sink = output::sink_for(format, width);
    let streamed = engine.stream(
        query,
        search,
        &mut |record| match sink.record(out, record) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let s = streamed.map_err(|e| CliError::from_engine(e, Some(query)))?;
    let summary = Summary {
        objects_count: s.objects_count,
        total_count: s.total_count,
        next_cursor_id: None,
        notice: None,
    };
    sink.finish(out, &summary)?;
    Ok(summary)
}

/// The notice for a page cut short of what the query asked for, e.g.
/// `showing 300 of 85,658 — add LIMIT, use .mode ndjson, or export`.
fn cut_notice(engine: &Engine, query: &str, summary: &Summary, repl: bool) -> Option<String> {
    let ast = acql::parse(query).ok()?;
    // Aggregates without GROUP BY are one row; totalCount counts the documents.
    if ast.group_by.is_empty()
        && ast
            .select
            .iter()
            .any(|s| matches!(s, acql::ast::SelectItem::Aggregate(_)))
    {
        return None;
    }
    let plan = engine.plan(query).ok()?;
    let shown = summary.objects_count;
    if plan.start.saturating_add(shown) >= summary.total_count {
        return None;
    }
    let (stream, export) = if repl {
        (".mode ndjson", "export")
    } else {
        ("--format ndjson", "acql export")
    };
    let advice = match plan.limit_written {
        // The query asked for exactly this many.
        Some(n) if n <= shown => return None,
        Some(_) => format!(
            "a page holds at most {}: use {stream}, or {export}",
            output::thousands(shown)
        ),
        None => format!("add LIMIT, use {stream}, or {export}"),
    };
    Some(format!(
        "showing {} of {} — {advice}",
        output::thousands(shown),
        output::thousands(summary.total_count)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_query_is_told_from_a_file_name() {
        assert!(looks_like_query("SELECT * FROM accounts"));
        assert!(looks_like_query("  select email from emailAccounts"));
        assert!(!looks_like_query("my.db"));
        assert!(!looks_like_query("SELECTé"));
        assert!(!looks_like_query("séléct * from x"));
    }

    #[test]
    fn misspelled_commands_are_named() {
        use clap::CommandFactory;
        let mut names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        names.sort();
        let mut listed: Vec<&str> = COMMANDS.to_vec();
        listed.sort_unstable();
        assert_eq!(names, listed);
        assert_eq!(misspelled_command("serv"), Some("serve"));
        assert_eq!(misspelled_command("imprt"), Some("import"));
        assert_eq!(misspelled_command("Explian"), Some("explain"));
        assert_eq!(misspelled_command("my.db"), None);
        assert_eq!(misspelled_command("people"), None);
    }

    #[test]
    fn plan_errors_are_marked_under_their_span() {
        let src = "SELECT *\nFROM users";
        let text = mark(
            src,
            acql::span::Span::new(14, 19),
            "unknown collection `users`",
        );
        assert_eq!(
            text,
            "error: unknown collection `users`\n --> line 2, column 6\n  |\n2 | FROM users\n  |      ^^^^^\n"
        );
    }
}
