//! `labwright`: parses arguments and runs the command; the exit code says how it ended.

use clap::Parser;
use labwright_cli::failure;

fn main() {
    let cli = labwright_cli::Cli::parse();
    let stdout = std::io::stdout();
    if let Err(e) = labwright_cli::run(cli, &mut stdout.lock()) {
        if failure::is_closed_pipe(&e) {
            // `labwright builds list | head -1`: the reader has what it wanted.
            return;
        }
        eprintln!("error: {e:#}");
        std::process::exit(failure::exit_code(&e));
    }
}
