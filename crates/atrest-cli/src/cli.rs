//! The command tree (clap derive). Doc comments are the help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{parse_duration, parse_size};

const AFTER_LONG_HELP: &str = "\
Root key (to open the keyring), first match wins:
  --key-file PATH        32 raw bytes or 64 hex digits, mode 0600 (keyring init --generate-key-file makes one)
  ATREST_ROOT_KEY        64 hex digits or base64 of 32 bytes
  ATREST_PASSPHRASE      a passphrase (Argon2id, RFC 9106 second recommended parameters)
  an interactive prompt  only when stdin is a terminal; otherwise the command fails at once

Exit codes:
  0  success
  1  generic failure
  2  usage: bad arguments, no root-key source, keyring sealed under another kind of root
  3  authentication or integrity failure: modified/truncated data, wrong --context, wrong
     passphrase or root key, not an atrest file, password does not match
  4  key unavailable: no keyring file, unknown key or version, or a version that is retired,
     disabled, scheduled for destruction or destroyed
  5  I/O error reading or writing files, stdin or stdout

Environment (tests only): ATREST_TEST_FAST_KDF=1 seals new passphrase keyrings with tiny
Argon2id parameters. It makes the passphrase trivial to brute-force: never set it outside tests.";

/// Encryption at rest: keyrings, file encryption, inspection, password hashing.
#[derive(Debug, Parser)]
#[command(name = "atrest", version, about, after_long_help = AFTER_LONG_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The sealed keyring file.
    #[arg(
        long,
        global = true,
        env = "ATREST_KEYRING",
        default_value = "./.atrest/keyring",
        value_name = "PATH"
    )]
    pub(crate) keyring: PathBuf,
    /// Root key from a key file instead of a passphrase.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Manage the keyring: keys, versions, states, rotation policies.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Encrypt a file or stdin into an envelope (attached, or detached with --detached).
    Encrypt(EncryptArgs),
    /// Decrypt an envelope made by `atrest encrypt`.
    Decrypt(DecryptArgs),
    /// Describe an envelope, envelope header or stream without any key: no secrets shown.
    Inspect(InspectArgs),
    /// Hash and verify passwords (Argon2id), calibrate parameters for this machine.
    #[command(subcommand)]
    Password(PasswordCommand),
    /// An encrypted blob store (atrest-store) in a local directory, or S3 (`s3` feature).
    Store(StoreArgs),
    /// A quick throughput table of the stream cipher on this machine, per crypto provider.
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyringCommand {
    /// Create a new, empty keyring file (refuses to overwrite one).
    Init {
        /// Generate a fresh random root key into --key-file PATH (mode 0600; refuses to
        /// overwrite) and seal the keyring under it.
        #[arg(long)]
        generate_key_file: bool,
    },
    /// Show every key and version and what it may do (no key material).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Create a key (version 1 becomes its primary).
    CreateKey {
        /// The key's name, e.g. `tenant-acme`.
        name: String,
    },
    /// Add a fresh version to a key and make it the primary.
    Rotate {
        /// The key.
        key: String,
        /// Add the version without promoting it (two-step rotation: `promote` it once every
        /// reader has the new keyring).
        #[arg(long)]
        no_promote: bool,
    },
    /// Rotate every key whose rotation policy says its primary is too old.
    RotateDue,
    /// Make a version the primary (second step of a two-step rotation, or a rollback).
    Promote {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// Disable a version (reversible with `enable`): it neither encrypts nor decrypts.
    Disable {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// Enable a disabled version again.
    Enable {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// Schedule a version for destruction after a restore window, or destroy it now.
    Destroy {
        /// The key.
        key: String,
        /// The version.
        version: u32,
        /// How long `restore` can still undo it (e.g. 7d, 24h).
        #[arg(long, default_value = "7d", value_parser = parse_duration, conflicts_with = "now")]
        window: Duration,
        /// Destroy immediately: data under this version becomes unrecoverable. Needs --yes.
        #[arg(long)]
        now: bool,
        /// Confirm immediate destruction.
        #[arg(long)]
        yes: bool,
    },
    /// Cancel a scheduled destruction (the version comes back disabled).
    Restore {
        /// The key.
        key: String,
        /// The version.
        version: u32,
    },
    /// Crypto-shred a whole key: every version destroyed at once. Needs --yes.
    Shred {
        /// The key.
        key: String,
        /// Confirm: everything encrypted under this key becomes unrecoverable.
        #[arg(long)]
        yes: bool,
    },
    /// Set or clear a key's rotation policy (maximum age of the primary version).
    Policy {
        /// The key.
        key: String,
        /// Rotate when the primary is this old (e.g. 90d).
        #[arg(long, value_parser = parse_duration, required_unless_present = "clear")]
        max_age: Option<Duration>,
        /// Remove the policy.
        #[arg(long, conflicts_with = "max_age")]
        clear: bool,
    },
}

/// Encryption context pairs and output handling shared by encrypt and decrypt.
#[derive(Debug, Args)]
pub(crate) struct Io {
    /// Input file, or `-` for stdin.
    #[arg(default_value = "-", value_name = "INPUT")]
    pub(crate) input: String,
    /// Output file, or `-` for stdout. Files are written next to the destination and
    /// renamed into place only on success.
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub(crate) output: String,
    /// Replace existing output files.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Encryption context `key=value` (repeatable); decryption needs exactly the same pairs.
    #[arg(long = "context", value_name = "K=V", value_parser = parse_pair)]
    pub(crate) context: Vec<(String, String)>,
    /// Detached form: the envelope header lives in this file, the output/input is the body.
    #[arg(long, value_name = "HEADER_PATH")]
    pub(crate) detached: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// The keyring key whose primary version wraps the data key.
    #[arg(long)]
    pub(crate) key: String,
    /// Plaintext bytes per segment (4 KiB to 16 MiB).
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub(crate) segment_size: u64,
    /// Worker threads: 0 = automatic (all cores for large inputs), 1 = sequential. The
    /// output is the same whatever the count.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// The AES-GCM implementation. The output is the same with either.
    #[arg(long, value_enum, default_value = "ring")]
    pub(crate) provider: Provider,
    #[command(flatten)]
    pub(crate) io: Io,
}

#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// Worker threads: 0 = automatic (all cores for large inputs), 1 = sequential.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// The AES-GCM implementation. Either opens what either sealed.
    #[arg(long, value_enum, default_value = "ring")]
    pub(crate) provider: Provider,
    #[command(flatten)]
    pub(crate) io: Io,
}

/// The crypto provider behind `encrypt`, `decrypt` and `store` (AES-GCM, HKDF, randomness). Both
/// produce and accept the same bytes; they differ only in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Provider {
    /// ring's assembly AES-GCM (VAES and AVX2 where the CPU has them): about 3x RustCrypto's
    /// speed on a recent x86-64 (`atrest bench` measures both).
    Ring,
    /// RustCrypto's pure-Rust aes-gcm, the library's default.
    Rustcrypto,
}

impl Provider {
    /// The provider value this choice names.
    pub(crate) fn get(self) -> &'static atrest_crypto::CryptoProvider {
        match self {
            Self::Ring => &atrest_ring::PROVIDER,
            Self::Rustcrypto => atrest_crypto::DEFAULT_PROVIDER,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// An attached envelope, a detached envelope header, or a bare atrest/Tink stream.
    pub(crate) file: PathBuf,
    /// For a detached header: the body, to report its sizes.
    #[arg(long, value_name = "PATH")]
    pub(crate) body: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Argon2id parameter presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Preset {
    /// OWASP: m=19456 KiB, t=2, p=1.
    Owasp,
    /// RFC 9106 second recommended option: m=65536 KiB, t=3, p=4.
    Rfc9106,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PasswordCommand {
    /// Hash a password read from the terminal (asked twice) or one line of stdin.
    Hash {
        /// Parameters for new hashes.
        #[arg(long, value_enum, default_value = "owasp")]
        policy: Preset,
    },
    /// Check a password (terminal or one line of stdin) against a stored hash. Exit 0 on a
    /// match (says if it should be rehashed), 3 on a mismatch.
    Verify {
        /// The stored hash (Argon2id PHC string, bcrypt, scrypt, PBKDF2 or Django).
        hash: String,
        /// The policy a match is compared with to decide on a rehash.
        #[arg(long, value_enum, default_value = "owasp")]
        policy: Preset,
    },
    /// Pick Argon2id parameters that take about --target per hash on this machine, never
    /// below the floor preset. Takes about ten times the target.
    Calibrate {
        /// Time per hash to aim for.
        #[arg(long, default_value = "250ms", value_parser = parse_duration)]
        target: Duration,
        /// The weakest parameters to accept.
        #[arg(long, value_enum, default_value = "owasp")]
        floor: Preset,
        /// The most memory per hash (e.g. 256MiB).
        #[arg(long, default_value = "256MiB", value_parser = parse_size)]
        max_memory: u64,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Buffer to seal and open per provider.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub(crate) size: u64,
    /// Worker threads for the stream cipher: 0 = automatic, 1 = sequential.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The store: a local directory (created if missing), or `s3://bucket/prefix` in a build
    /// with the `s3` feature (endpoint and credentials from the AWS_* variables).
    #[arg(long, default_value = "./.atrest/store", value_name = "PATH")]
    pub(crate) store: String,
    /// Encrypt every object under this key instead of `tenant-<first path segment>`.
    #[arg(long, value_name = "NAME")]
    pub(crate) key: Option<String>,
    /// Keep each object's header in a sidecar under `.atrest-headers/`, so `rewrap` rewrites
    /// headers only, never bodies. Every command on a store must use the same setting.
    #[arg(long)]
    pub(crate) detached_headers: bool,
    /// The AES-GCM implementation. Either reads what either wrote.
    #[arg(long, value_enum, default_value = "ring")]
    pub(crate) provider: Provider,
    #[command(subcommand)]
    pub(crate) command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Encrypt a file (or `-` for stdin) into the store at PATH (e.g. acme/invoices/17.pdf).
    Put {
        /// The file.
        file: String,
        /// The object path.
        path: String,
    },
    /// Decrypt an object (or a plaintext byte range of it) to a file or stdout.
    Get {
        /// The object path.
        path: String,
        /// Output file, or `-` for stdout.
        #[arg(short, long, default_value = "-")]
        output: String,
        /// Replace an existing output file.
        #[arg(short, long)]
        force: bool,
        /// Plaintext bytes START..END only (reads just the segments they touch).
        #[arg(long, value_parser = parse_range, value_name = "START..END")]
        range: Option<(u64, u64)>,
    },
    /// List objects with their plaintext sizes.
    Ls {
        /// Only under this prefix.
        prefix: Option<String>,
    },
    /// Remove an object.
    Rm {
        /// The object path.
        path: String,
    },
    /// Move every object (under PREFIX) to the current primary key versions: headers only.
    Rewrap {
        /// Only under this prefix.
        prefix: Option<String>,
        /// Objects in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Decrypt and authenticate every object (under PREFIX); exit 3 if any is bad.
    Verify {
        /// Only under this prefix.
        prefix: Option<String>,
        /// Objects in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Delete detached headers no object uses any more (left by failed uploads); only with
    /// --detached-headers.
    Gc {
        /// Keep unused headers younger than this (an upload may be about to use them), e.g.
        /// 1h, 30m.
        #[arg(long, default_value = "1h", value_parser = crate::units::parse_duration)]
        grace: Duration,
        /// Objects in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Crypto-shred a key and prove the objects under PREFIX unrecoverable. Needs --yes.
    Shred {
        /// The key to destroy (e.g. tenant-acme).
        key: String,
        /// The objects that were under it (e.g. acme).
        #[arg(long)]
        prefix: String,
        /// Objects in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Confirm: everything under the key becomes unrecoverable.
        #[arg(long)]
        yes: bool,
    },
}

/// Parses `START..END`.
fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("expected START..END, got '{text}'"))?;
    let start: u64 = start
        .parse()
        .map_err(|_| format!("bad range start in '{text}'"))?;
    let end: u64 = end
        .parse()
        .map_err(|_| format!("bad range end in '{text}'"))?;
    if start > end {
        return Err(format!("range '{text}' ends before it starts"));
    }
    Ok((start, end))
}

/// Parses `key=value` (the value may contain `=`).
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn provider_choices_name_their_providers() {
        for choice in Provider::value_variants() {
            let name = choice.to_possible_value().expect("no skipped variant");
            assert_eq!(choice.get().name, name.get_name());
        }
        let cli = Cli::try_parse_from(["atrest", "decrypt", "in.atrest"]).expect("parses");
        assert!(
            matches!(
                cli.command,
                Command::Decrypt(DecryptArgs {
                    provider: Provider::Ring,
                    ..
                })
            ),
            "ring is the CLI's default"
        );
    }

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".to_owned(), "b=c".to_owned())));
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("x").is_err());
    }
}
