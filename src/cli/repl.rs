//! The interactive shell: rustyline with history, multi-line queries, completion of
//! keywords and field paths, dot-commands, and Ctrl-C that cancels the running query.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use acql::catalog::{Catalog, Collection, IndexKind};
use acql::engine::Engine;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::args::{Format, QueryOpts};
use super::fields::{self, Fields};
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
        ".explain [analyze] QUERY",
        "the plan of QUERY (indexes used, SQLite's plan); analyze: run it, actual rows and time",
    ),
    (
        ".fields [COLLECTION] [PREFIX]",
        "the field paths, their types, document counts and sample values",
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
    (".mode MODE", "output format: {modes} (now: {mode})"),
    (
        ".output [FILE]",
        "write results to FILE (created or emptied); no FILE: back to the terminal",
    ),
    (".read FILE", "run the statements and dot-commands of FILE"),
    (".timer on|off", "print each query's run time"),
    (
        ".open FILE",
        "switch to another database (created when missing)",
    ),
    (".quit", "leave (Ctrl-D too)"),
];

/// Documents sampled per collection for path completion and the unknown-path warning.
const PATH_SAMPLE: u64 = fields::DEFAULT_SAMPLE;
/// `.read` files may read others, up to this depth (a file that reads itself stops here).
const MAX_READ_DEPTH: usize = 16;

/// How a shell runs: interactive or as a script, and its first output mode.
#[derive(Clone, Debug)]
pub struct ShellOptions {
    /// `acql DB < script`: every statement prints as `acql DB "STATEMENT"` would (tables
    /// and CSV stream every match); otherwise the REPL's pages.
    pub batch: bool,
    /// The output mode to start in.
    pub mode: Format,
    /// A script stops at its first failing command (exit 1).
    pub bail: bool,
    /// `--timeout`, `--open-cursor`, `--width` of the command line (batch mode).
    pub query: QueryOpts,
}

impl ShellOptions {
    /// The interactive REPL (and `acql repl DB < script`).
    pub fn repl(bail: bool) -> ShellOptions {
        ShellOptions {
            batch: false,
            mode: Format::Table,
            bail,
            query: QueryOpts::default(),
        }
    }
}

/// Runs the REPL on `engine` (`db` is `None` for the demo store) until `.quit` or Ctrl-D;
/// when standard input is not a terminal, runs it as a script.
pub fn run(engine: Engine, db: Option<PathBuf>, options: ShellOptions) -> Result<(), CliError> {
    let interactive = std::io::stdin().is_terminal();
    let mut shell = Shell {
        engine,
        db,
        mode: options.mode,
        timer: false,
        cancel: cancel_flag(),
        paths: Arc::new(Mutex::new(Vec::new())),
        samples: HashMap::new(),
        output: None,
        batch: options.batch,
        bail: options.bail && !interactive,
        query: options.query,
        failures: 0,
        stop: false,
        depth: 0,
    };
    if !interactive {
        shell.script(std::io::stdin().lock());
        return if shell.failures > 0 {
            Err(CliError::Reported)
        } else {
            Ok(())
        };
    }
    shell.interactive()
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
    /// Paths offered by completion.
    paths: Arc<Mutex<Vec<String>>>,
    /// The sample of each collection read so far (completion, unknown-path warnings);
    /// cleared when the data changes.
    samples: HashMap<Collection, Fields>,
    /// `.output FILE`: results go there instead of stdout.
    output: Option<(PathBuf, File)>,
    batch: bool,
    bail: bool,
    query: QueryOpts,
    failures: u32,
    /// `.quit`, a closed stdout, or a failure under `bail`: read no more input.
    stop: bool,
    /// `.read` nesting.
    depth: usize,
}

impl Shell {
    /// The interactive loop: rustyline with history, a continuation prompt and completion.
    fn interactive(&mut self) -> Result<(), CliError> {
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .completion_type(CompletionType::List)
            .build();
        let mut rl: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)
            .map_err(|e| CliError::failed(format!("cannot start the REPL: {e}")))?;
        rl.set_helper(Some(ReplHelper {
            paths: Arc::clone(&self.paths),
            files: FilenameCompleter::new(),
        }));
        let history = history_path();
        if let Some(h) = &history {
            // A missing history file is the normal first run.
            let _ = rl.load_history(h);
        }
        self.refresh_paths();
        eprintln!(
            "acql {} on {}. End a query with ; or a blank line; .help lists commands.",
            env!("CARGO_PKG_VERSION"),
            self.db
                .as_ref()
                .map_or_else(|| "the demo store".to_string(), |p| p.display().to_string())
        );
        let mut splitter = Splitter::default();
        // The lines of the statement being typed, for one history entry per statement.
        let mut typed = String::new();
        while !self.stop {
            let prompt = if splitter.is_empty() {
                "acql> "
            } else {
                "   ...> "
            };
            let line = match rl.readline(prompt) {
                Ok(line) => line,
                // Ctrl-C at the prompt drops the input being typed, as in a shell.
                Err(ReadlineError::Interrupted) => {
                    splitter = Splitter::default();
                    typed.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => {
                    if let Some(last) = splitter.finish() {
                        self.run_all(vec![last]);
                    }
                    break;
                }
                Err(e) => return Err(CliError::failed(format!("cannot read input: {e}"))),
            };
            if !typed.is_empty() {
                typed.push('\n');
            }
            typed.push_str(&line);
            let inputs = splitter.push_line(&line);
            if splitter.is_empty() {
                let entry = typed.trim();
                if !entry.is_empty() {
                    let _ = rl.add_history_entry(entry);
                    if let Some(h) = &history {
                        // History is a convenience: a read-only home must not stop the REPL.
                        let _ = rl.save_history(h);
                    }
                }
                typed.clear();
            }
            self.run_all(inputs);
        }
        Ok(())
    }

    /// Runs a script: each `;`-terminated statement (or one ended by a blank line or the
    /// end of input) and each dot-command line.
    fn script(&mut self, input: impl BufRead) {
        let mut splitter = Splitter::default();
        for line in input.lines() {
            if self.stop {
                return;
            }
            match line {
                Ok(line) => {
                    let inputs = splitter.push_line(&line);
                    self.run_all(inputs);
                }
                Err(e) => {
                    self.failures += 1;
                    report(CliError::failed(format!("cannot read input: {e}")));
                    self.stop = true;
                    return;
                }
            }
        }
        // A script's last statement may lack its `;`: run it rather than drop it.
        if !self.stop
            && let Some(last) = splitter.finish()
        {
            self.run_all(vec![last]);
        }
    }

    /// Runs complete inputs in order; sets `stop` at `.quit`, on a closed stdout, and at
    /// a failure when bailing.
    fn run_all(&mut self, inputs: Vec<String>) {
        for input in inputs {
            if self.stop {
                return;
            }
            match self.execute(&input) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) | Err(CliError::BrokenPipe) => self.stop = true,
                Err(e) => {
                    self.failures += 1;
                    report(e);
                    if self.bail {
                        self.stop = true;
                    }
                }
            }
        }
    }

    /// Where results go: `.output`'s file, else stdout.
    fn out(&self) -> Result<Out, CliError> {
        match &self.output {
            Some((path, file)) => {
                let f = file.try_clone().map_err(|e| {
                    CliError::failed(format!("cannot write to {}: {e}", path.display()))
                })?;
                Ok(Out::new(Box::new(std::io::BufWriter::new(f))))
            }
            None => Ok(Out::stdout()),
        }
    }

    fn execute(&mut self, input: &str) -> Result<Flow, CliError> {
        if let Some(command) = input.strip_prefix('.') {
            return self.dot(command);
        }
        let started = Instant::now();
        self.cancel.store(false, Ordering::SeqCst);
        let mut search = super::search_options(&self.query, Some(Arc::clone(&self.cancel)));
        if !self.batch {
            search.open_cursor = false;
        }
        let mut out = self.out()?;
        let width = self.query.width.or_else(|| {
            if out.is_terminal {
                terminal_width()
            } else {
                None
            }
        });
        // People read tables, lines and json a page at a time; ndjson and csv are for
        // files and pipes, and a script prints as the one-shot command does.
        let extent = match self.mode {
            Format::Json => Extent::Page,
            _ if self.batch => Extent::All,
            Format::Ndjson | Format::Csv => Extent::All,
            Format::Table | Format::Line | Format::Markdown => Extent::Page,
        };
        let opts = QueryOpts {
            cursor_id: None,
            ..self.query.clone()
        };
        let result = run_query(
            &self.engine,
            input,
            self.mode,
            extent,
            width,
            &opts,
            &search,
            !self.batch,
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
        self.warn_unknown_paths(input);
        Ok(Flow::Continue)
    }

    /// Warns about paths of `query` that no document has (never fails the query).
    fn warn_unknown_paths(&mut self, query: &str) {
        let collection = acql::parse(query)
            .ok()
            .and_then(|q| Collection::from_name(&q.from.node));
        let Some(collection) = collection else { return };
        if !self.samples.contains_key(&collection)
            && let Ok(f) = fields::sample(&self.engine, collection, Some(PATH_SAMPLE), None)
        {
            self.samples.insert(collection, f);
        }
        for w in fields::unknown_path_warnings(&self.engine, query, self.samples.get(&collection)) {
            eprintln!("{w}");
        }
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
                    self.mode = Format::from_name(m).ok_or_else(|| {
                        usage(format!(
                            "unknown mode `{m}`; the modes are {}",
                            Format::names(", ")
                        ))
                    })?;
                }
                _ => return Err(usage(format!("usage: .mode {}", Format::names("|")))),
            },
            "timer" => match words.as_slice() {
                ["on"] => self.timer = true,
                ["off"] => self.timer = false,
                _ => return Err(usage("usage: .timer on|off")),
            },
            "output" => match words.as_slice() {
                [] | ["stdout"] => self.output = None,
                [file] => {
                    let f = File::create(file)
                        .map_err(|e| CliError::failed(format!("cannot create {file}: {e}")))?;
                    self.output = Some((PathBuf::from(file), f));
                }
                _ => return Err(usage("usage: .output [FILE]")),
            },
            "read" => {
                let [file] = words.as_slice() else {
                    return Err(usage("usage: .read FILE"));
                };
                if self.depth >= MAX_READ_DEPTH {
                    return Err(CliError::failed(format!(
                        ".read nested more than {MAX_READ_DEPTH} deep (does {file} read itself?)"
                    )));
                }
                let f = File::open(file)
                    .map_err(|e| CliError::failed(format!("cannot read {file}: {e}")))?;
                self.depth += 1;
                self.script(BufReader::new(f));
                self.depth -= 1;
            }
            "fields" => {
                let (collection, prefix) = match words.as_slice() {
                    [] => (Collection::EmailAccounts, None),
                    [one] => match Collection::from_name(one) {
                        Some(c) => (c, None),
                        None => (Collection::EmailAccounts, Some(*one)),
                    },
                    [c, p] => (
                        Collection::from_name(c).ok_or_else(|| usage(FIELDS_USAGE))?,
                        Some(*p),
                    ),
                    _ => return Err(usage(FIELDS_USAGE)),
                };
                self.cancel.store(false, Ordering::SeqCst);
                let f = fields::sample(
                    &self.engine,
                    collection,
                    Some(PATH_SAMPLE),
                    Some(Arc::clone(&self.cancel)),
                )?;
                let mut out = self.out()?;
                out.str(&fields::render(&f, prefix))?;
                out.flush()?;
                self.samples.insert(collection, f);
            }
            "explain" => {
                let analyzed = rest
                    .split_once(char::is_whitespace)
                    .filter(|(first, _)| first.eq_ignore_ascii_case("analyze"))
                    .map(|(_, query)| query.trim());
                let query = analyzed.unwrap_or(rest);
                if query.is_empty() {
                    return Err(usage("usage: .explain [analyze] QUERY"));
                }
                let text = match analyzed {
                    Some(_) => self.engine.explain_analyze(query),
                    None => self.engine.explain(query),
                }
                .map_err(|e| CliError::from_engine(e, Some(query)))?;
                let mut out = self.out()?;
                out.str(text.trim_end())?;
                out.str("\n")?;
                out.flush()?;
            }
            "indexes" => {
                let catalog = self.catalog()?;
                let mut out = self.out()?;
                out.str(&commands::format_catalog(&catalog))?;
                out.flush()?;
            }
            "index" => {
                let (action, args) = words.split_first().ok_or_else(|| usage(INDEX_USAGE))?;
                let (collection, pattern, kind) = parse_index_args(args)?;
                let done = match *action {
                    "add" => commands::add_index(
                        &self.engine,
                        collection,
                        &pattern,
                        kind.unwrap_or(IndexKind::Value),
                    )?,
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
                let imported = commands::import_into(&self.engine, Path::new(file), &job);
                self.refresh_paths();
                imported?;
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
                let written = commands::export_to(
                    &self.engine,
                    query,
                    collection,
                    &mut out,
                    cancel,
                    self.query.timeout,
                )?;
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
            .catalog()
            .map_err(|e| CliError::failed(describe(&e, None)))
    }

    /// Forgets the samples (the data or the database changed) and, in a terminal,
    /// re-reads the paths offered by completion: the catalog's patterns, and every path in
    /// a sample of documents of each collection.
    fn refresh_paths(&mut self) {
        self.samples.clear();
        if !std::io::stdin().is_terminal() {
            return;
        }
        let mut set = self
            .catalog()
            .map(|c| c.path_prefixes())
            .unwrap_or_default();
        for c in Collection::ALL {
            // A failing sample only means fewer completions.
            if let Ok(f) = fields::sample(&self.engine, c, Some(PATH_SAMPLE), None) {
                set.extend(f.paths.keys().cloned());
                self.samples.insert(c, f);
            }
        }
        *self
            .paths
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = set.into_iter().collect();
    }
}

/// Gathers input lines into complete inputs: a dot-command is one line; a statement ends
/// at a `;` outside quotes (several may share a line) or at a blank line. `--` starts a
/// comment that runs to the end of the line (outside quotes); comments are removed.
#[derive(Default)]
pub struct Splitter {
    /// The text of the statement begun so far, comments removed.
    pending: String,
    /// The quote that the pending text leaves open.
    quote: Option<char>,
}

impl Splitter {
    /// Whether no statement is begun (only blanks so far).
    pub fn is_empty(&self) -> bool {
        self.pending.trim().is_empty()
    }

    /// Adds one line; returns the inputs it completes, in order.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        let mut done = Vec::new();
        if self.is_empty() && self.quote.is_none() && line.trim_start().starts_with('.') {
            let (text, _) = strip_comment(line.trim(), None);
            self.pending.clear();
            done.push(text.trim_end().to_string());
            return done;
        }
        if line.trim().is_empty() {
            // A blank line ends a statement (outside a string), as in the REPL's tour.
            if self.quote.is_none() && !self.is_empty() {
                done.push(std::mem::take(&mut self.pending).trim().to_string());
            }
            if self.quote.is_some() {
                self.pending.push('\n');
            }
            return done;
        }
        if !self.pending.is_empty() {
            self.pending.push('\n');
        }
        let mut escaped = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match self.quote {
                Some(q) => {
                    self.pending.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q != '`' {
                        escaped = true;
                    } else if c == q {
                        self.quote = None;
                    }
                }
                None => match c {
                    '-' if chars.peek() == Some(&'-') => {
                        let kept = self.pending.trim_end().len();
                        self.pending.truncate(kept);
                        break;
                    }
                    ';' => {
                        self.pending.push(';');
                        let statement = std::mem::take(&mut self.pending);
                        let statement = statement.trim();
                        if statement != ";" {
                            done.push(statement.to_string());
                        }
                    }
                    '"' | '\'' | '`' => {
                        self.quote = Some(c);
                        self.pending.push(c);
                    }
                    _ => self.pending.push(c),
                },
            }
        }
        if self.is_empty() && self.quote.is_none() {
            self.pending.clear();
        }
        done
    }

    /// The unfinished statement at the end of input, if any.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        self.quote = None;
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }
}

/// `line` without its `--` comment (outside quotes; `quote` is the one open at its start).
fn strip_comment(line: &str, mut quote: Option<char>) -> (String, Option<char>) {
    let mut out = String::with_capacity(line.len());
    let mut escaped = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
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
            None if c == '-' && chars.peek() == Some(&'-') => break,
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None => {}
        }
        out.push(c);
    }
    (out, quote)
}

const FIELDS_USAGE: &str = "usage: .fields [emailAccounts|accounts] [PREFIX]";
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
fn parse_index_args(args: &[&str]) -> Result<(Collection, String, Option<IndexKind>), CliError> {
    let mut collection = Collection::EmailAccounts;
    let mut kind = None;
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
        kind = Some(k);
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
                .replace("{modes}", &Format::names(", "))
        );
    }
    text
}

struct ReplHelper {
    paths: Arc<Mutex<Vec<String>>>,
    files: FilenameCompleter,
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
            if [".import", ".open", ".export", ".read", ".output"]
                .iter()
                .any(|c| trimmed.starts_with(c))
            {
                return self.files.complete(line, pos, ctx);
            }
            if trimmed.starts_with(".mode") {
                let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
                let word = &before[start..];
                let pairs = Format::ALL
                    .iter()
                    .map(|m| m.name())
                    .filter(|m| m.starts_with(word))
                    .map(|m| Pair {
                        display: m.into(),
                        replacement: m.into(),
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
        // After FROM only a collection name fits.
        let after_from = before[..start]
            .split_whitespace()
            .next_back()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        if after_from {
            return Ok((start, collections(word)));
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

/// The collection names that start with `word` (any case).
fn collections(word: &str) -> Vec<Pair> {
    Collection::ALL
        .iter()
        .map(|c| c.name())
        .filter(|n| n.len() >= word.len() && n[..word.len()].eq_ignore_ascii_case(word))
        .map(|n| Pair {
            display: n.to_string(),
            replacement: n.to_string(),
        })
        .collect()
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

/// Every line is accepted as typed: the shell gathers statements itself (with the
/// continuation prompt), so what a terminal and a script see is the same.
impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(script: &str) -> Vec<String> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for line in script.lines() {
            out.extend(s.push_line(line));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn statements_end_at_a_semicolon_or_a_blank_line() {
        assert_eq!(split("SELECT * FROM accounts"), ["SELECT * FROM accounts"]);
        assert_eq!(
            split("SELECT *\nFROM accounts ;  SELECT 2;\n.mode csv"),
            ["SELECT *\nFROM accounts ;", "SELECT 2;", ".mode csv"]
        );
        assert_eq!(
            split("SELECT *\nFROM accounts\n\n.mode csv"),
            ["SELECT *\nFROM accounts", ".mode csv"]
        );
        // `;` and `--` inside quotes are text; a blank line inside a string does not end it.
        assert_eq!(
            split("SELECT * FROM a WHERE x = 'y;--z\n\nw';"),
            ["SELECT * FROM a WHERE x = 'y;--z\n\nw';"]
        );
        assert_eq!(
            split("SELECT * FROM a WHERE x = \"\\\";\";"),
            ["SELECT * FROM a WHERE x = \"\\\";\";"]
        );
        // A dot starts a command only at the start of a statement.
        assert_eq!(split("SELECT a\n.b FROM c;"), ["SELECT a\n.b FROM c;"]);
        assert_eq!(split(";;\n;"), Vec::<String>::new());
    }

    #[test]
    fn comments_run_to_the_end_of_the_line() {
        assert_eq!(
            split(
                "-- a report\nSELECT a -- the key; not the end\nFROM b; -- done\n.mode csv -- why"
            ),
            ["SELECT a\nFROM b;", ".mode csv"]
        );
        assert_eq!(split("-- only a comment\n"), Vec::<String>::new());
        let mut s = Splitter::default();
        s.push_line("-- note");
        assert!(s.is_empty(), "a comment alone begins no statement");
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
                Some(IndexKind::Words)
            )
        );
        let (c, p, k) = parse_index_args(&["data.tier"]).unwrap();
        assert_eq!(
            (c, p, k),
            (Collection::EmailAccounts, "data.tier".to_string(), None)
        );
        assert!(parse_index_args(&[]).is_err());
        let (_, p, k) =
            parse_index_args(&["profile.country,", "profile.age", "composite"]).unwrap();
        assert_eq!(
            (p.as_str(), k),
            ("profile.country, profile.age", Some(IndexKind::Composite))
        );
        assert!(parse_index_args(&["profile.country", "profile.age"]).is_err());
    }
}
