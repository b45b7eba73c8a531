//! The interactive shell: rustyline with history, multi-line queries, completion of
//! keywords and field paths, dot-commands, and Ctrl-C that cancels the running query.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use acql::catalog::{Catalog, Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::args::{Format, QueryOpts};
use super::output::Out;
use super::{CliError, Extent, commands, describe, open_create, run_query, terminal_width};

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "CONTAINS",
    "GROUP",
    "BY",
    "ORDER",
    "ASC",
    "DESC",
    "START",
    "LIMIT",
    "AS",
    "true",
    "false",
    "regex(",
    "count(*)",
    "sum(",
    "min(",
    "max(",
    "avg(",
    "sum_of_squares(",
    "variance(",
    "std(",
];

const DOT_COMMANDS: &[(&str, &str)] = &[
    (".help", "this list"),
    (
        ".explain QUERY",
        "the plan of QUERY (indexes used, SQLite's plan)",
    ),
    (".indexes", "the declared indexes"),
    (
        ".index add|drop [COLLECTION] PATTERN [value|words]",
        "declare or drop an index",
    ),
    (
        ".import FILE [COLLECTION] [--skip-invalid] [--replace]",
        "load NDJSON documents",
    ),
    (
        ".export FILE [COLLECTION | QUERY]",
        "write documents as NDJSON",
    ),
    (".mode json|ndjson|table|csv", "output format (now: {mode})"),
    (".timer on|off", "print each query's run time"),
    (
        ".open FILE",
        "switch to another database (created when missing)",
    ),
    (".quit", "leave (Ctrl-D too)"),
];

/// Runs the REPL on `engine` (`db` is `None` for the demo store) until `.quit` or Ctrl-D.
pub fn run(engine: Engine, db: Option<PathBuf>) -> Result<(), CliError> {
    let paths = Arc::new(Mutex::new(Vec::new()));
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| CliError::failed(format!("cannot start the REPL: {e}")))?;
    let interactive = std::io::stdin().is_terminal();
    rl.set_helper(Some(ReplHelper {
        paths: Arc::clone(&paths),
        files: FilenameCompleter::new(),
        interactive,
    }));
    let history = history_path();
    if let Some(h) = &history {
        // A missing history file is the normal first run.
        let _ = rl.load_history(h);
    }
    let mut shell = Shell {
        engine,
        db,
        mode: Format::Table,
        timer: false,
        cancel: cancel_flag(),
        paths,
    };
    if interactive {
        shell.refresh_paths();
        eprintln!(
            "acql {} on {}. End a query with ; or a blank line; .help lists commands.",
            env!("CARGO_PKG_VERSION"),
            shell
                .db
                .as_ref()
                .map_or_else(|| "the demo store".to_string(), |p| p.display().to_string())
        );
    }

    let mut pending = String::new();
    let mut failures = 0u32;
    loop {
        let prompt = if pending.is_empty() {
            "acql> "
        } else {
            "  ...> "
        };
        let line = match rl.readline(prompt) {
            Ok(line) => line,
            // Ctrl-C at the prompt drops the input being typed, as in a shell.
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            // A script's last query may lack its `;`: run it rather than drop it.
            Err(ReadlineError::Eof) if !pending.trim().is_empty() => {
                let input = std::mem::take(&mut pending);
                if let Err(e) = shell.execute(input.trim()) {
                    failures += 1;
                    report(e);
                }
                break;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::failed(format!("cannot read input: {e}"))),
        };
        // On a terminal the validator returns whole queries; without one (piped input)
        // lines arrive one by one and are gathered here.
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if !is_complete(&pending) {
            continue;
        }
        let input = std::mem::take(&mut pending);
        let input = input.trim();
        if input.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(input);
        if let Some(h) = &history {
            // History is a convenience: a read-only home must not stop the REPL.
            let _ = rl.save_history(h);
        }
        match shell.execute(input) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(CliError::BrokenPipe) => break,
            Err(e) => {
                failures += 1;
                report(e);
            }
        }
    }
    // A script (stdin not a terminal) reports failure through its exit code.
    if failures > 0 && !interactive {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn report(e: CliError) {
    match e {
        CliError::Failed(msg) | CliError::Usage(msg) => super::print_error(&msg),
        CliError::BrokenPipe | CliError::Reported => {}
    }
}

/// Where the history lives: `$ACQL_HISTORY`, else `<data dir>/acql/history.txt`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ACQL_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let dir = dirs::data_dir()?.join("acql");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history.txt"))
}

/// The flag that Ctrl-C sets while a query runs.
///
/// While rustyline reads a line the terminal is in raw mode and Ctrl-C arrives as a key
/// (handled above). While a query runs it is a SIGINT, which a tokio signal listener on its
/// own thread turns into this flag; the executor polls it and stops, and the REPL goes on.
///
/// The handler must be in place before the first `readline`: rustyline swaps in its own
/// SIGINT handler while it reads and restores the one it found, so a handler that tokio
/// installed in between would be undone (and Ctrl-C would then kill the REPL). Hence the
/// handshake: the listener is registered, then this function returns.
fn cancel_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    Arc::clone(FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            let (ready, registered) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                runtime.block_on(async move {
                    #[cfg(unix)]
                    {
                        use tokio::signal::unix::{SignalKind, signal};
                        let Ok(mut interrupts) = signal(SignalKind::interrupt()) else {
                            let _ = ready.send(());
                            return;
                        };
                        let _ = ready.send(());
                        while interrupts.recv().await.is_some() {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                    #[cfg(not(unix))]
                    {
                        let _ = ready.send(());
                        while tokio::signal::ctrl_c().await.is_ok() {
                            f.store(true, Ordering::SeqCst);
                        }
                    }
                });
            });
            // Without a handler Ctrl-C still ends a query, just with the whole REPL.
            let _ = registered.recv_timeout(std::time::Duration::from_secs(2));
        }
        flag
    }))
}

enum Flow {
    Continue,
    Quit,
}

struct Shell {
    engine: Engine,
    db: Option<PathBuf>,
    mode: Format,
    timer: bool,
    cancel: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Shell {
    fn execute(&mut self, input: &str) -> Result<Flow, CliError> {
        if let Some(command) = input.strip_prefix('.') {
            return self.dot(command);
        }
        let started = Instant::now();
        self.cancel.store(false, Ordering::SeqCst);
        let search = SearchOptions {
            cancel: Some(Arc::clone(&self.cancel)),
            ..SearchOptions::default()
        };
        let mut out = Out::stdout();
        let width = terminal_width();
        let result = run_query(
            &self.engine,
            input,
            self.mode,
            Extent::Page,
            width,
            &QueryOpts::default(),
            &search,
            &mut out,
        )
        .and_then(|_| out.flush());
        if let Err(CliError::Failed(_)) = &result
            && self.cancel.load(Ordering::SeqCst)
        {
            return Err(CliError::failed("query cancelled"));
        }
        result?;
        if self.timer {
            eprintln!(
                "Run time: {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        Ok(Flow::Continue)
    }

    fn dot(&mut self, command: &str) -> Result<Flow, CliError> {
        let command = command.trim().trim_end_matches(';').trim_end();
        let (name, rest) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let rest = rest.trim();
        let words: Vec<&str> = rest.split_whitespace().collect();
        match name {
            "help" => eprint!("{}", help_text(self.mode)),
            "quit" | "exit" | "q" => return Ok(Flow::Quit),
            "mode" => match words.as_slice() {
                [] => eprintln!("mode: {}", self.mode.name()),
                [m] => {
                    self.mode =
                        Format::from_name(m).ok_or_else(|| usage(format!("unknown mode `{m}`")))?
                }
                _ => return Err(usage("usage: .mode json|ndjson|table|csv")),
            },
            "timer" => match words.as_slice() {
                ["on"] => self.timer = true,
                ["off"] => self.timer = false,
                _ => return Err(usage("usage: .timer on|off")),
            },
            "explain" => {
                if rest.is_empty() {
                    return Err(usage("usage: .explain QUERY"));
                }
                let text = self
                    .engine
                    .explain(rest)
                    .map_err(|e| CliError::from_engine(e, Some(rest)))?;
                let mut out = Out::stdout();
                out.str(text.trim_end())?;
                out.str("\n")?;
                out.flush()?;
            }
            "indexes" => {
                let catalog = self.catalog()?;
                let mut out = Out::stdout();
                out.str(&commands::format_catalog(&catalog))?;
                out.flush()?;
            }
            "index" => {
                let (action, args) = words.split_first().ok_or_else(|| usage(INDEX_USAGE))?;
                let (collection, pattern, kind) = parse_index_args(args)?;
                let done = match *action {
                    "add" => commands::add_index(&self.engine, collection, &pattern, kind)?,
                    "drop" => commands::drop_index(&self.engine, collection, &pattern, kind)?,
                    _ => return Err(usage(INDEX_USAGE)),
                };
                eprintln!("{done}");
                self.refresh_paths();
            }
            "import" => {
                let (file, flags) = words.split_first().ok_or_else(|| usage(IMPORT_USAGE))?;
                let mut collection = Collection::EmailAccounts;
                let (mut skip, mut replace) = (false, false);
                for flag in flags {
                    match *flag {
                        "--skip-invalid" => skip = true,
                        "--replace" => replace = true,
                        other => {
                            collection =
                                Collection::from_name(other).ok_or_else(|| usage(IMPORT_USAGE))?;
                        }
                    }
                }
                self.cancel.store(false, Ordering::SeqCst);
                let job = commands::ImportJob {
                    collection,
                    skip_invalid: skip,
                    replace,
                    quiet: false,
                    shared: false,
                    cancel: Some(Arc::clone(&self.cancel)),
                };
                commands::import_into(&self.engine, Path::new(file), &job)?;
                self.refresh_paths();
            }
            "export" => {
                let Some((file, what)) = rest
                    .split_once(char::is_whitespace)
                    .or(Some((rest, "")))
                    .filter(|(f, _)| !f.is_empty())
                else {
                    return Err(usage(EXPORT_USAGE));
                };
                let what = what.trim();
                let (collection, query) = match Collection::from_name(what) {
                    Some(c) => (c, None),
                    None if what.is_empty() => (Collection::EmailAccounts, None),
                    None => (Collection::EmailAccounts, Some(what)),
                };
                if let Some(q) = query {
                    // A query that cannot run must not leave an empty file behind.
                    self.engine
                        .plan(q)
                        .map_err(|e| CliError::from_engine(e, Some(q)))?;
                }
                let handle = std::fs::File::create(file)
                    .map_err(|e| CliError::failed(format!("cannot create {file}: {e}")))?;
                let mut out = Out::new(Box::new(std::io::BufWriter::new(handle)));
                self.cancel.store(false, Ordering::SeqCst);
                let cancel = Some(Arc::clone(&self.cancel));
                let written =
                    commands::export_to(&self.engine, query, collection, &mut out, cancel)?;
                out.flush()?;
                eprintln!("exported {written} documents to {file}");
            }
            "open" => {
                let [file] = words.as_slice() else {
                    return Err(usage("usage: .open FILE"));
                };
                self.engine = open_create(Path::new(file))?;
                self.db = Some(PathBuf::from(file));
                self.refresh_paths();
                eprintln!("opened {file}");
            }
            other => {
                return Err(usage(format!(
                    "unknown command `.{other}`; .help lists the commands"
                )));
            }
        }
        Ok(Flow::Continue)
    }

    fn catalog(&self) -> Result<Catalog, CliError> {
        self.engine
            .store()
            .catalog()
            .map_err(|e| CliError::failed(describe(&e.into(), None)))
    }

    /// Re-reads the paths offered by completion (the console offers the same ones).
    fn refresh_paths(&self) {
        let paths = acql::server::console::known_paths(&self.engine);
        *self
            .paths
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = paths;
    }
}

const INDEX_USAGE: &str =
    "usage: .index add|drop [COLLECTION] PATTERN[, PATTERN] [value|words|composite]";
const IMPORT_USAGE: &str =
    "usage: .import FILE [emailAccounts|accounts] [--skip-invalid] [--replace]";
const EXPORT_USAGE: &str = "usage: .export FILE [emailAccounts|accounts|QUERY]";

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// `[COLLECTION] PATTERN [KIND]`; a composite index's patterns may be written with a
/// space after the comma (`profile.country, profile.age`).
fn parse_index_args(args: &[&str]) -> Result<(Collection, String, IndexKind), CliError> {
    let mut collection = Collection::EmailAccounts;
    let mut kind = IndexKind::Value;
    let mut rest = args;
    if let [first, tail @ ..] = rest
        && let Some(c) = Collection::from_name(first)
        && !tail.is_empty()
    {
        collection = c;
        rest = tail;
    }
    if let [head @ .., last] = rest
        && !head.is_empty()
        && let Ok(k) = super::args::parse_kind(last)
    {
        kind = k;
        rest = head;
    }
    match rest {
        [] => Err(usage(INDEX_USAGE)),
        [pattern] => Ok((collection, (*pattern).to_string(), kind)),
        many if many[..many.len() - 1].iter().all(|w| w.ends_with(',')) => {
            Ok((collection, many.join(" "), kind))
        }
        _ => Err(usage(INDEX_USAGE)),
    }
}

fn help_text(mode: Format) -> String {
    let mut text = String::from(
        "Queries end with ; or a blank line. Ctrl-C cancels a running query; Ctrl-D leaves.\n",
    );
    let width = DOT_COMMANDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (cmd, what) in DOT_COMMANDS {
        let _ = writeln!(
            text,
            "  {cmd:<width$}  {}",
            what.replace("{mode}", mode.name())
        );
    }
    text
}

/// Whether `text` is a whole input: a dot-command (one line), a query ending in `;` outside
/// quotes, or anything followed by a blank line.
pub fn is_complete(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('.') {
        return true;
    }
    if text
        .rsplit_once('\n')
        .is_some_and(|(_, last)| last.trim().is_empty())
    {
        return true;
    }
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut last_outside = None;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                } else if !c.is_whitespace() {
                    last_outside = Some(c);
                }
            }
        }
    }
    quote.is_none() && last_outside == Some(';')
}

struct ReplHelper {
    paths: Arc<Mutex<Vec<String>>>,
    files: FilenameCompleter,
    /// On a terminal rustyline gathers multi-line queries through the validator; from a
    /// pipe the loop gathers them itself, so that a last query without `;` survives EOF.
    interactive: bool,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        if trimmed.starts_with('.') {
            if !trimmed.contains(char::is_whitespace) {
                let start = pos - trimmed.len();
                let names = DOT_COMMANDS
                    .iter()
                    .map(|(c, _)| c.split_whitespace().next().unwrap_or(c));
                let pairs = names
                    .filter(|n| n.starts_with(trimmed))
                    .map(|n| Pair {
                        display: n.to_string(),
                        replacement: format!("{n} "),
                    })
                    .collect();
                return Ok((start, pairs));
            }
            if [".import", ".open", ".export"]
                .iter()
                .any(|c| trimmed.starts_with(c))
            {
                return self.files.complete(line, pos, ctx);
            }
            if trimmed.starts_with(".mode") {
                let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
                let word = &before[start..];
                let pairs = ["json", "ndjson", "table", "csv"]
                    .iter()
                    .filter(|m| m.starts_with(word))
                    .map(|m| Pair {
                        display: (*m).into(),
                        replacement: (*m).into(),
                    })
                    .collect();
                return Ok((start, pairs));
            }
        }
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(acql::ast::is_segment_char(*c) || *c == '.' || *c == '`' || *c == '('))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        Ok((
            start,
            candidates(
                word,
                &self
                    .paths
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
        ))
    }
}

/// Completions of `word`: keywords and collections (any case, written in the case the
/// user started with), then known paths (case-sensitive, as paths are).
fn candidates(word: &str, paths: &[String]) -> Vec<Pair> {
    let lower = word.chars().next().is_some_and(char::is_lowercase);
    let mut out: Vec<Pair> = KEYWORDS
        .iter()
        .copied()
        .chain(Collection::ALL.iter().map(|c| c.name()))
        .filter(|k| k.len() >= word.len() && k[..word.len()].eq_ignore_ascii_case(word))
        .map(|k| {
            let is_collection = Collection::from_name(k).is_some();
            let text = if is_collection || k.chars().any(char::is_lowercase) {
                k.to_string()
            } else if lower {
                k.to_lowercase()
            } else {
                k.to_string()
            };
            Pair {
                display: text.clone(),
                replacement: text,
            }
        })
        .collect();
    // Offer the next segment only, so a long subscription list does not flood the screen.
    let mut seen = BTreeSet::new();
    for p in paths.iter().filter(|p| p.starts_with(word)) {
        let rest = &p[word.len()..];
        let cut = rest
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '.')
            .map_or(p.len(), |(i, _)| word.len() + i);
        let next = &p[..cut];
        if seen.insert(next.to_string()) {
            out.push(Pair {
                display: next.to_string(),
                replacement: next.to_string(),
            });
        }
    }
    out
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if !self.interactive || is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_end_at_a_semicolon_or_a_blank_line() {
        assert!(!is_complete("SELECT * FROM accounts"));
        assert!(is_complete("SELECT * FROM accounts;"));
        assert!(is_complete("SELECT *\nFROM accounts ;  "));
        assert!(is_complete("SELECT *\nFROM accounts\n"));
        assert!(is_complete("SELECT *\nFROM accounts\n  "));
        assert!(!is_complete("SELECT * FROM accounts WHERE a = 'x;"));
        assert!(!is_complete("SELECT * FROM accounts WHERE a = \"\\\";"));
        assert!(is_complete(".mode csv"));
        assert!(is_complete(""));
    }

    #[test]
    fn completes_keywords_in_the_typed_case_and_paths_by_segment() {
        let paths = vec![
            "profile".to_string(),
            "profile.firstName".to_string(),
            "profile.fav.x".to_string(),
        ];
        let names = |w: &str| {
            candidates(w, &paths)
                .into_iter()
                .map(|p| p.replacement)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("sel"), ["select"]);
        assert_eq!(names("SEL"), ["SELECT"]);
        assert_eq!(names("emailA"), ["emailAccounts"]);
        assert_eq!(names("profile.f"), ["profile.firstName", "profile.fav"]);
        assert_eq!(names("pro"), ["profile"]);
    }

    #[test]
    fn index_arguments() {
        let (c, p, k) = parse_index_args(&["accounts", "data.tier", "words"]).unwrap();
        assert_eq!(
            (c, p, k),
            (
                Collection::Accounts,
                "data.tier".to_string(),
                IndexKind::Words
            )
        );
        let (c, p, k) = parse_index_args(&["data.tier"]).unwrap();
        assert_eq!(
            (c, p, k),
            (
                Collection::EmailAccounts,
                "data.tier".to_string(),
                IndexKind::Value
            )
        );
        assert!(parse_index_args(&[]).is_err());
        let (_, p, k) =
            parse_index_args(&["profile.country,", "profile.age", "composite"]).unwrap();
        assert_eq!(
            (p.as_str(), k),
            ("profile.country, profile.age", IndexKind::Composite)
        );
        assert!(parse_index_args(&["profile.country", "profile.age"]).is_err());
    }
}
