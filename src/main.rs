use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Errors are typed in the library and printed once here, as a line a
    // user can act on. A panic anywhere ends the process with its message;
    // sessions never unwrap, and the store's commit-before-250 rule means no
    // acknowledged message is lost by one.
    match disclosure_mx::cli::run(disclosure_mx::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
