//! `palisade config check`: validate and show the effective settings.

use std::process::ExitCode;

use crate::config::{Overrides, Settings};

/// Prints the effective settings, or every problem with what to fix (exit 1).
pub fn run(o: &Overrides) -> ExitCode {
    match Settings::load(o) {
        Ok(s) => {
            print!("{}", s.describe());
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::FAILURE
        }
    }
}
