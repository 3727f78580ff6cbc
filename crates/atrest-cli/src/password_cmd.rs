//! `atrest password hash | verify | calibrate`.

use std::io::{self, BufRead as _, IsTerminal as _};
use std::time::Duration;

use anyhow::Context as _;
use atrest_password::{Hasher, Policy, Verification, calibrate};
use zeroize::Zeroizing;

use crate::cli::{PasswordCommand, Preset};
use crate::failure::{Code, Failure};
use crate::units::format_bytes;

fn policy(preset: Preset) -> Policy {
    match preset {
        Preset::Owasp => Policy::owasp(),
        Preset::Rfc9106 => Policy::rfc9106_second(),
    }
}

/// Runs a password subcommand.
///
/// # Errors
/// Usage failures, a mismatch (integrity failure), hashing errors.
pub(crate) fn run(command: PasswordCommand) -> anyhow::Result<()> {
    match command {
        PasswordCommand::Hash { policy: preset } => {
            let password = read_password(true)?;
            let hash = Hasher::new(policy(preset))
                .hash(password.as_bytes())
                .context("hashing the password")?;
            println!("{hash}");
            Ok(())
        }
        PasswordCommand::Verify {
            hash,
            policy: preset,
        } => {
            let password = read_password(false)?;
            let outcome = Hasher::new(policy(preset))
                .verify(hash.trim(), password.as_bytes())
                .context("verifying the password")?;
            match outcome {
                Verification::Match => {
                    println!("match");
                    Ok(())
                }
                Verification::MatchNeedsRehash(reason) => {
                    println!(
                        "match (needs rehash: {reason:?}; store `atrest password hash` of it instead)"
                    );
                    Ok(())
                }
                Verification::Mismatch => Err(Failure::new(
                    Code::Integrity,
                    "the password does not match the hash",
                )
                .into()),
            }
        }
        PasswordCommand::Calibrate {
            target,
            floor,
            max_memory,
        } => calibrate_cmd(target, floor, max_memory),
    }
}

fn calibrate_cmd(target: Duration, floor: Preset, max_memory: u64) -> anyhow::Result<()> {
    let max_memory_kib = u32::try_from(max_memory / 1024).unwrap_or(u32::MAX);
    eprintln!("calibrating (takes about ten times the target)...");
    let calibration = calibrate(&policy(floor), target, max_memory_kib)
        .map_err(|err| Failure::new(Code::Usage, format!("cannot calibrate: {err}")))?;
    let chosen = &calibration.policy;
    println!("{calibration}");
    println!(
        "parameters: m={} KiB ({}), t={}, p={}",
        chosen.memory_kib(),
        format_bytes(u64::from(chosen.memory_kib()) * 1024),
        chosen.iterations(),
        chosen.lanes()
    );
    println!(
        "configure: Policy::builder().memory_kib({}).iterations({}).lanes({}).build()",
        chosen.memory_kib(),
        chosen.iterations(),
        chosen.lanes()
    );
    Ok(())
}

/// A password from the terminal (asked twice when `confirm`), or one line of stdin.
fn read_password(confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let password = if io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("Password: ").context("reading the password")?,
        );
        if confirm {
            let second = Zeroizing::new(
                rpassword::prompt_password("Repeat the password: ")
                    .context("reading the password")?,
            );
            if *first != *second {
                return Err(Failure::new(Code::Usage, "the passwords do not match").into());
            }
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        line
    };
    if password.is_empty() {
        return Err(Failure::new(Code::Usage, "empty password")
            .hint("type it at the prompt, or pipe one line: `printf '%s\\n' \"$PW\" | atrest password ...`")
            .into());
    }
    Ok(password)
}
