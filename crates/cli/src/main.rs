//! `labwright`: parses arguments and runs the command.

use clap::Parser;

fn main() {
    let cli = labwright_cli::Cli::parse();
    let stdout = std::io::stdout();
    if let Err(e) = labwright_cli::run(cli, &mut stdout.lock()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
