//! `atrest`: the operator CLI of atrest. Keyrings (`atrest keyring ...`), file encryption
//! (`encrypt`, `decrypt`), an encrypted blob store (`store ...`), inspection without keys
//! (`inspect`), password hashing (`password ...`) and a quick throughput check (`bench`). Exit codes and examples:
//! README.md and `atrest --help`.

mod bench;
mod cli;
mod crypt;
mod failure;
mod inspect;
mod keyring_cmd;
mod output;
mod password_cmd;
mod root;
mod store_cmd;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version exit 0; usage errors exit 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(failure::report(&err)),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Keyring(command) => keyring_cmd::run(global, command),
        Command::Encrypt(args) => crypt::encrypt(global, &args),
        Command::Decrypt(args) => crypt::decrypt(global, &args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Password(command) => password_cmd::run(command),
        Command::Store(args) => store_cmd::run(global, args),
        Command::Bench(args) => bench::run(&args),
    }
}
