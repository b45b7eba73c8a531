//! The subcommands other than queries and the REPL: import, export, gen, explain, index.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use acql::catalog::{Catalog, Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use acql::store::{ExportOptions, ImportOptions};

use super::args::{ExportArgs, FieldsArgs, GenArgs, ImportArgs, IndexAction, IndexArgs};
use super::output::Out;
use super::progress::Progress;
use super::{CliError, describe, open_create, open_existing, open_read_only};

/// `acql import DB FILE|-`.
pub fn import(a: &ImportArgs) -> Result<(), CliError> {
    let created = !a.db.exists() && !super::is_database_url(&a.db);
    let engine = open_create(&a.db)?;
    let job = ImportJob {
        collection: a.collection,
        skip_invalid: a.skip_invalid,
        replace: a.replace,
        quiet: a.quiet,
        shared: a.shared,
        cancel: None,
    };
    let result = import_into(&engine, &a.file, &job);
    if result.is_err() && created {
        // A failed import into a new file leaves no file behind (it would hold an empty
        // store the user never asked for).
        drop(engine);
        for suffix in ["", "-wal", "-shm", "-journal", "-acql.lock"] {
            let mut path = a.db.as_os_str().to_owned();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// How to run one import.
pub struct ImportJob {
    /// The collection to fill.
    pub collection: Collection,
    /// Skip and report bad lines instead of failing the import.
    pub skip_invalid: bool,
    /// Overwrite existing keys.
    pub replace: bool,
    /// No progress bar and no summary line.
    pub quiet: bool,
    /// Leave the store readable by other connections during the import (see
    /// [`ImportOptions::exclusive`]).
    pub shared: bool,
    /// Set (by Ctrl-C in the REPL) to abandon the import; its transaction rolls back.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Loads an NDJSON file (or `-`, stdin) into `engine`; shared with the REPL's `.import`.
///
/// Prints a summary line and every skipped line on stderr (results stay off stdout).
pub fn import_into(engine: &Engine, file: &Path, job: &ImportJob) -> Result<(), CliError> {
    let &ImportJob {
        collection,
        skip_invalid,
        replace,
        quiet,
        shared,
        ..
    } = job;
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if file == Path::new("-") {
        (
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin().lock())),
            None,
        )
    } else {
        let f = File::open(file)
            .map_err(|e| CliError::failed(format!("cannot read {}: {e}", file.display())))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), size)
    };
    let input = Cancellable {
        inner: input,
        cancel: job.cancel.clone(),
    };
    let progress = Progress::new(size, quiet);
    let mut report_progress = |p: acql::store::Progress| progress.update(p.bytes, p.lines);
    let options = ImportOptions {
        collection,
        replace,
        skip_bad_lines: skip_invalid,
        progress: Some(&mut report_progress),
        exclusive: !shared,
    };
    let started = Instant::now();
    let result = engine.import_ndjson(input, options);
    progress.finish();
    if job
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::SeqCst))
        && result.is_err()
    {
        return Err(CliError::failed("import cancelled, nothing was imported"));
    }
    let report = result.map_err(|e| {
        let e = e;
        let what = if file == Path::new("-") {
            "standard input".to_string()
        } else {
            file.display().to_string()
        };
        CliError::failed(format!(
            "import of {what} failed, nothing was imported: {}",
            describe(&e, None)
        ))
    })?;
    for bad in &report.bad_lines {
        eprintln!("skipped line {}: {}", bad.line, bad.reason);
    }
    if report.bad_line_count > report.bad_lines.len() as u64 {
        eprintln!(
            "… and {} more bad lines",
            report.bad_line_count - report.bad_lines.len() as u64
        );
    }
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        let docs = report.inserted + report.replaced;
        let mut line = format!("imported {docs} documents into {collection}");
        if report.replaced > 0 {
            let _ = write!(line, " ({} replaced)", report.replaced);
        }
        if report.bad_line_count > 0 {
            let _ = write!(line, ", skipped {} bad lines", report.bad_line_count);
        }
        // Precision beyond what a person reads would only be noise.
        #[allow(clippy::cast_precision_loss)]
        let rate = docs as f64 / secs.max(1e-9);
        let _ = write!(line, " in {secs:.2} s ({rate:.0}/s)");
        eprintln!("{line}");
    }
    Ok(())
}

/// A reader that fails once its cancel flag is set, so that Ctrl-C ends a running import
/// through the store's own error path (and its transaction rolls back).
struct Cancellable {
    inner: Box<dyn BufRead>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Cancellable {
    fn check(&self) -> std::io::Result<()> {
        match &self.cancel {
            // Not `ErrorKind::Interrupted`: readers retry that one.
            Some(c) if c.load(Ordering::SeqCst) => Err(std::io::Error::other("cancelled")),
            _ => Ok(()),
        }
    }
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl BufRead for Cancellable {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

/// `acql export DB [QUERY]`.
pub fn export(a: &ExportArgs) -> Result<(), CliError> {
    let engine = open_read_only(&a.db)?;
    if let Some(q) = &a.query {
        // A query that cannot run must not leave an empty output file behind.
        engine
            .plan(q)
            .map_err(|e| CliError::from_engine(e, Some(q)))?;
    }
    let mut out = match &a.output {
        Some(path) => Out::new(Box::new(std::io::BufWriter::new(
            File::create(path)
                .map_err(|e| CliError::failed(format!("cannot create {}: {e}", path.display())))?,
        ))),
        None => Out::stdout(),
    };
    let written = export_to(
        &engine,
        a.query.as_deref(),
        a.collection,
        &mut out,
        None,
        a.timeout,
    )?;
    out.flush()?;
    if let Some(path) = &a.output {
        eprintln!("exported {written} documents to {}", path.display());
    }
    Ok(())
}

/// Writes a whole collection (stored documents, verbatim, in insertion order), or a
/// query's records, as NDJSON that `import` reads back. Returns the number written.
///
/// `cancel` (Ctrl-C in the REPL) stops it; what was written so far stays written. A
/// query's export has no time limit unless `timeout` sets one.
pub fn export_to(
    engine: &Engine,
    query: Option<&str>,
    collection: Collection,
    out: &mut Out,
    cancel: Option<Arc<AtomicBool>>,
    timeout: Option<std::time::Duration>,
) -> Result<u64, CliError> {
    match query {
        None => {
            let mut w = OutWriter {
                out,
                failure: None,
                cancel: cancel.as_deref(),
            };
            let result = engine.export_ndjson(collection, &mut w, ExportOptions::default());
            if let Some(e) = w.failure {
                return Err(e);
            }
            result.map_err(|e| CliError::failed(describe(&e, None)))
        }
        Some(q) => {
            let options = SearchOptions {
                cancel: cancel.clone(),
                timeout,
                ..SearchOptions::default()
            };
            let result = super::stream_ndjson(engine, q, &options, out)?;
            if cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) && result.is_err() {
                return Err(CliError::failed(EXPORT_CANCELLED));
            }
            Ok(result
                .map_err(|e| CliError::from_engine(e, Some(q)))?
                .objects_count)
        }
    }
}

const EXPORT_CANCELLED: &str = "export cancelled; the output is incomplete";

/// Adapts [`Out`] to `io::Write` for the store's export, keeping the broken-pipe signal.
struct OutWriter<'a> {
    out: &'a mut Out,
    failure: Option<CliError>,
    cancel: Option<&'a AtomicBool>,
}

impl Write for OutWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            self.failure = Some(CliError::failed(EXPORT_CANCELLED));
            return Err(std::io::Error::other("cancelled"));
        }
        match self.out.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.failure = Some(e);
                Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "output closed",
                ))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `acql gen`.
pub fn generate(a: &GenArgs) -> Result<(), CliError> {
    let result = match &a.output {
        Some(path) => {
            let f = File::create(path)
                .map_err(|e| CliError::failed(format!("cannot create {}: {e}", path.display())))?;
            acql::datagen::generate(a.count, a.seed, std::io::BufWriter::new(f))
        }
        None => acql::datagen::generate(a.count, a.seed, std::io::stdout().lock()),
    };
    result.map_err(CliError::from_write)
}

/// `acql explain [--analyze] DB QUERY`.
pub fn explain(engine: &Engine, query: &str, analyze: bool) -> Result<(), CliError> {
    let text = if analyze {
        engine.explain_analyze(query)
    } else {
        engine.explain(query)
    }
    .map_err(|e| CliError::from_engine(e, Some(query)))?;
    let mut out = Out::stdout();
    out.str(text.trim_end())?;
    out.str("\n")?;
    out.flush()
}

/// `acql index DB list|add|drop`.
pub fn index(a: &IndexArgs) -> Result<(), CliError> {
    let mut out = Out::stdout();
    match &a.action {
        IndexAction::List => {
            let engine = open_read_only(&a.db)?;
            let catalog = engine
                .catalog()
                .map_err(|e| CliError::failed(describe(&e, None)))?;
            out.str(&format_catalog(&catalog))?;
        }
        IndexAction::Add(spec) => {
            let engine = open_create(&a.db)?;
            let kind = spec.kind.unwrap_or(IndexKind::Value);
            let done = add_index(&engine, spec.collection, &spec.pattern, kind)?;
            out.str(&format!("{done}\n"))?;
        }
        IndexAction::Drop(spec) => {
            let engine = open_existing(&a.db)?;
            let done = drop_index(&engine, spec.collection, &spec.pattern, spec.kind)?;
            out.str(&format!("{done}\n"))?;
        }
        IndexAction::Count(count) => {
            let spec = &count.index;
            let engine = open_existing(&a.db)?;
            let kind = spec.kind.unwrap_or(IndexKind::Value);
            let verb = if count.off {
                "not counting keys of"
            } else {
                "counting keys of"
            };
            let done = engine.set_key_counts(spec.collection, &spec.pattern, kind, !count.off);
            done.map_err(|e| CliError::failed(describe(&e, None)))?;
            out.str(&format!(
                "{}\n",
                index_changed(verb, spec.collection, &spec.pattern, kind)
            ))?;
        }
    }
    out.flush()
}

/// `acql fields DB [PREFIX]`.
pub fn fields(a: &FieldsArgs) -> Result<(), CliError> {
    let engine = open_read_only(&a.db)?;
    let limit = (!a.all).then_some(a.sample);
    let f = super::fields::sample(&engine, a.collection, limit, None)?;
    let mut out = Out::stdout();
    out.str(&super::fields::render(&f, a.prefix.as_deref()))?;
    out.flush()
}

/// Declares and builds an index; returns the line that reports it.
pub fn add_index(
    engine: &Engine,
    c: Collection,
    pattern: &str,
    kind: IndexKind,
) -> Result<String, CliError> {
    engine
        .add_index(c, pattern, kind)
        .map_err(|e| CliError::failed(describe(&e, None)))?;
    Ok(index_changed("added", c, pattern, kind))
}

/// Drops an index; returns the line that reports it. Without a kind, the one index on
/// `pattern` is dropped; when a value and a words index share it, the kind must be said.
pub fn drop_index(
    engine: &Engine,
    c: Collection,
    pattern: &str,
    kind: Option<IndexKind>,
) -> Result<String, CliError> {
    let kind = match kind {
        Some(k) => k,
        None => {
            let patterns = acql::catalog::parse_patterns(pattern).map_err(CliError::Usage)?;
            let catalog = engine
                .catalog()
                .map_err(|e| CliError::failed(describe(&e, None)))?;
            let kinds: Vec<IndexKind> = catalog
                .of(c)
                .filter(|d| d.pattern == patterns[0] && d.second.as_ref() == patterns.get(1))
                .map(|d| d.kind)
                .collect();
            match kinds.as_slice() {
                [one] => *one,
                [] => IndexKind::Value,
                _ => {
                    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                    return Err(CliError::Usage(format!(
                        "{c} has a {} index on `{}`: say which to drop with -k {}",
                        names.join(" and a "),
                        pattern.trim(),
                        names.join(" or -k ")
                    )));
                }
            }
        }
    };
    engine
        .drop_index(c, pattern, kind)
        .map_err(|e| CliError::failed(describe(&e, None)))?;
    Ok(index_changed("dropped", c, pattern, kind))
}

fn index_changed(verb: &str, c: Collection, pattern: &str, kind: IndexKind) -> String {
    if pattern.contains(',') {
        format!("{verb} composite index on {c}({})", pattern.trim())
    } else {
        format!("{verb} {} index on {c}.{}", kind.as_str(), pattern.trim())
    }
}

/// The catalog as aligned text, one index per line.
pub fn format_catalog(catalog: &Catalog) -> String {
    let mut lines = String::new();
    let width = catalog
        .indexes
        .iter()
        .map(|i| i.collection.name().len())
        .max()
        .unwrap_or(0);
    for ix in &catalog.indexes {
        let counted = match (ix.counted, ix.presence_counted, ix.uncounted) {
            (true, _, _) => "  (key counts)",
            (false, true, _) => "  (key counts: first path)",
            (false, false, true) => "  (no key counts)",
            (false, false, false) => "",
        };
        let _ = writeln!(
            lines,
            "{:<width$}  {:<9}  {}{counted}",
            ix.collection.name(),
            ix.kind.as_str(),
            ix.spec()
        );
    }
    if catalog.indexes.is_empty() {
        lines.push_str("(no indexes)\n");
    }
    lines
}
