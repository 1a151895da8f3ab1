//! The `facio` command line: the binary edge, where errors become one-line messages.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
