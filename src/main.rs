use clap::Parser;

fn main() -> anyhow::Result<()> {
    // A panic anywhere ends the process with its message; sessions never
    // unwrap, so a panic here is a bug, and the store's commit-before-250
    // rule means no acknowledged message is lost by it.
    disclosure_mx::cli::run(disclosure_mx::cli::Cli::parse())?;
    Ok(())
}
