//! The `acql` command: REPL, one-shot queries, import/export, the demo store, `serve`, `bench`.
//! All of the terminal side lives in `cli`; the library never prints.

mod cli;

// The import's workers allocate index entries that its indexer frees, and glibc's arenas
// make such cross-thread frees costly (docs/measurements.md). The library leaves the
// allocator to its users.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
