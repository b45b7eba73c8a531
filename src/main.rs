//! The `acql` command: REPL, one-shot queries, import/export, the demo store. All of the
//! terminal side lives in `cli`; the library never prints.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
