//! Commands for the people who run the service rather than its cases:
//! shell completions and the man page, generated from the same clap
//! definition the parser uses, so they cannot drift from it.

use super::{Cli, CliError};
use clap::CommandFactory;

pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "disclosure-mx", &mut std::io::stdout());
    Ok(())
}

pub fn manpage() -> Result<(), CliError> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| CliError::Usage(format!("cannot write the man page: {e}")))
}
