//! The progress bar every bulk command draws on stderr, and how a finished item is shown on it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` items, or `None` when stderr is not a terminal or there is nothing to do.
pub fn bar(len: usize) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || len == 0 {
        return None;
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} {per_sec} eta {eta} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(b)
}

/// A counter for a job whose length is not known in advance, or `None` off a terminal.
pub fn spinner(what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}} {what} {{per_sec}} {{wide_msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    Some(b)
}

/// One item done: `line` (an error or note) is printed above the bar, or on stderr when there
/// is no bar and `quiet` is false; the bar shows `label` and moves on.
pub fn item(bar: &Option<ProgressBar>, label: Option<&str>, line: Option<String>, quiet: bool) {
    match bar {
        Some(b) => {
            if let Some(l) = line {
                b.println(l);
            }
            if let Some(label) = label {
                b.set_message(label.to_string());
            }
            b.inc(1);
        }
        None => {
            if let (Some(l), false) = (line, quiet) {
                eprintln!("{l}");
            }
        }
    }
}
