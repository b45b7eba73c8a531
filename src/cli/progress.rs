//! Progress bars for long imports: shown on a terminal, silent otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display over bytes read (when the total is known) or documents loaded.
pub struct Progress {
    bar: Option<ProgressBar>,
    by_bytes: bool,
}

impl Progress {
    /// A bar for reading `total_bytes` (a file), or a spinner with a rate (stdin).
    /// Hidden unless stderr is a terminal and `quiet` is off, so logs and pipes stay clean.
    pub fn new(total_bytes: Option<u64>, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                by_bytes: false,
            };
        }
        let bar = match total_bytes {
            Some(total) => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({bytes_per_sec}, ETA {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {pos} documents ({per_sec})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            by_bytes: total_bytes.is_some(),
        }
    }

    /// Reports `docs` documents loaded after `bytes` bytes read.
    pub fn update(&self, bytes: u64, docs: u64) {
        if let Some(bar) = &self.bar {
            if self.by_bytes {
                bar.set_position(bytes);
                // After the last line the transaction still has to commit (and indexes to
                // settle): say so rather than sit silently at 100%.
                let done = bar.length().is_some_and(|len| bytes >= len);
                bar.set_message(if done {
                    format!("{docs} documents, committing…")
                } else {
                    format!("{docs} documents")
                });
            } else {
                bar.set_position(docs);
            }
        }
    }

    /// Removes the bar (the caller prints a summary line).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
