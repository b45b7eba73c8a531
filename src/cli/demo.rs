//! The demo store: generated accounts to try acql on without a database of one's own.
//!
//! Built once from the seeded generator into the user's cache directory
//! (`~/.cache/acql/demo-v1.db` on Linux) and reused afterwards. It is written to a
//! temporary file in the same directory and renamed into place, so an interrupted build or
//! two processes building at once never leave a half-filled demo behind. When the cache
//! directory is not writable the demo lives in memory for the session.

use std::path::{Path, PathBuf};
use std::time::Instant;

use acql::engine::Engine;
use acql::store::OpenMode;

use super::{CliError, describe};

/// Documents in the demo store.
pub const DEMO_COUNT: u64 = 10_000;
/// The generator seed of the demo store.
pub const DEMO_SEED: u64 = 42;

/// The cache file's name: `demo-v<schema>-<fingerprint>.db`. The fingerprint hashes the
/// first generated documents, so a change to the generator or to the file layout builds a
/// fresh demo instead of reusing a stale one.
fn demo_file() -> String {
    let mut sample = String::new();
    for i in 0..3 {
        acql::datagen::document(DEMO_SEED, i, &mut sample);
    }
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = sample.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "demo-v{}-{:08x}.db",
        acql::store::SCHEMA_VERSION,
        hash & 0xffff_ffff
    )
}

/// Opens the demo store, building it on first use, and prints a one-line banner on stderr.
pub fn open() -> Result<Engine, CliError> {
    let cached = dirs::cache_dir().map(|d| d.join("acql").join(demo_file()));
    if let Some(path) = &cached
        && path.exists()
        && let Ok(engine) = Engine::open(path, OpenMode::MustExist)
    {
        banner(Some(path));
        return Ok(engine);
    }
    let started = Instant::now();
    eprintln!(
        "acql: building the demo store ({DEMO_COUNT} generated accounts, seed {DEMO_SEED}) …"
    );
    let engine = match cached.as_deref().map(build_file) {
        Some(Ok(engine)) => {
            banner(cached.as_deref());
            engine
        }
        other => {
            if let Some(Err(e)) = other {
                eprintln!("acql: cannot cache the demo store ({e}); keeping it in memory");
            }
            let engine = Engine::in_memory().map_err(|e| CliError::failed(describe(&e, None)))?;
            fill(&engine)?;
            banner(None);
            engine
        }
    };
    eprintln!(
        "acql: demo store built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(engine)
}

fn banner(path: Option<&Path>) {
    let place = path.map_or_else(
        || "in memory".to_string(),
        |p| format!("cached at {}", p.display()),
    );
    eprintln!(
        "acql: using the demo store ({DEMO_COUNT} generated email accounts, {place}); pass a database file to use your own"
    );
}

/// Builds the demo into `path` through a temporary file and a rename.
fn build_file(path: &Path) -> Result<Engine, String> {
    let dir = path.parent().ok_or("no cache directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let built = (|| {
        let engine = Engine::open(&tmp, OpenMode::Create).map_err(|e| describe(&e, None))?;
        fill(&engine).map_err(|e| format!("{e:?}"))?;
        // Closing the last connection checkpoints the WAL into the main file, so the
        // rename below moves a complete database.
        drop(engine);
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
        remove_stale(dir, &name);
        Ok(())
    })();
    if let Err(e) = built {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
        return Err(e);
    }
    Engine::open(path, OpenMode::MustExist).map_err(|e| describe(&e, None))
}

/// Removes demo stores of other generator versions (`demo-*.db` and their WAL files).
fn remove_stale(dir: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name.trim_end_matches("-wal").trim_end_matches("-shm");
        if base.starts_with("demo-") && base.ends_with(".db") && base != current {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Generates the demo documents and imports them.
fn fill(engine: &Engine) -> Result<(), CliError> {
    engine
        .import_generated(DEMO_COUNT, DEMO_SEED)
        .map_err(|e| CliError::failed(describe(&e, None)))?;
    Ok(())
}
