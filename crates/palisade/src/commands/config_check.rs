//! `palisade config check`: validate and show the effective settings.

use std::process::ExitCode;

use crate::config::{Overrides, Settings};

/// Prints the effective settings, or every problem with what to fix (exit 1).
pub fn run(o: &Overrides) -> ExitCode {
    match Settings::load(o) {
        Ok(s) => {
            // What only the registered job kinds can tell (unknown kinds in schedules
            // and limits, schedule parameters a kind refuses).
            let setup = palisade_jobs::JobsSetup {
                config: s.jobs.clone(),
                ..palisade_jobs::JobsSetup::default()
            };
            if let Err(problems) = setup.registry() {
                eprintln!("the configuration has {} problem(s):", problems.len());
                for p in problems {
                    eprintln!("  - {p}");
                }
                return ExitCode::FAILURE;
            }
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
