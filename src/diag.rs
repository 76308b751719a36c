//! Diagnostics on standard error that never take the run down (issue 26,
//! item 15): `eprintln!` panics when standard error cannot be written (a
//! full disk where it is logged, `2>/dev/full`, a log pipe whose reader
//! died), which lost the run's output with exit 101. `say!` and
//! `say_text!` write the same text and ignore a failed write: the run
//! goes on, its outputs and exit status unchanged. Every diagnostic of
//! the command goes through them (none uses `eprint!`/`eprintln!`).

use std::fmt;
use std::io::Write;

/// Writes `text` to standard error, ignoring any error.
pub fn write_stderr(text: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(text);
}

/// `eprintln!` that ignores a standard error that cannot be written.
macro_rules! say {
    () => {
        $crate::diag::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::diag::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that ignores a standard error that cannot be written.
macro_rules! say_text {
    ($($arg:tt)*) => {
        $crate::diag::write_stderr(format_args!($($arg)*))
    };
}
