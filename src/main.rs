//! The `acql` command: REPL, one-shot queries, import/export, the demo store. All of the
//! terminal side lives in `cli`; the library never prints.

mod cli;

// The import's workers allocate index entries that its indexer frees: glibc's arenas made
// those cross-thread frees a tenth of a million-document import's CPU time. The library
// leaves the allocator to its users.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
