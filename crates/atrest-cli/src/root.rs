//! Choosing the root key that seals the keyring file, and loading/saving the keyring.
//!
//! Sources, first match wins: `--key-file`, `ATREST_ROOT_KEY`, `ATREST_PASSPHRASE`, then a
//! prompt on the terminal. Without a terminal on stdin and without another source, the
//! command fails at once instead of waiting for input that never comes.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Context as _;
use atrest_keyring::{
    Argon2Params, EnvRoot, KeyFileRoot, Keyring, PassphraseRoot, RootKey, Timestamp,
};
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::failure::{Code, Failure};

/// The passphrase variable.
pub(crate) const PASSPHRASE_VAR: &str = "ATREST_PASSPHRASE";
/// Test-only switch: seal new passphrase keyrings with tiny Argon2id parameters.
pub(crate) const FAST_KDF_VAR: &str = "ATREST_TEST_FAST_KDF";

/// Whether the root key is needed to open an existing keyring or to seal a new one (a new
/// passphrase is asked twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Open,
    Create,
}

/// The Argon2id parameters for sealing with a passphrase: RFC 9106's second recommended
/// option (64 MiB, 3 passes, 4 lanes), unless the test-only switch is set.
fn argon2_params() -> Argon2Params {
    if std::env::var_os(FAST_KDF_VAR).is_some_and(|v| v == "1") {
        // Test-only: a few KiB and one pass, so the CLI tests do not spend seconds per call.
        Argon2Params::new(8, 1, 1).unwrap_or(Argon2Params::RFC9106_SECOND)
    } else {
        Argon2Params::RFC9106_SECOND
    }
}

/// The root key from the first available source.
///
/// # Errors
/// A usage failure when no source is available, or the prompt fails.
pub(crate) fn root_key(global: &Global, purpose: Purpose) -> anyhow::Result<Box<dyn RootKey>> {
    if let Some(path) = &global.key_file {
        return Ok(Box::new(KeyFileRoot::new(path)));
    }
    if std::env::var_os(EnvRoot::DEFAULT_VAR).is_some() {
        return Ok(Box::new(EnvRoot::new()));
    }
    if let Ok(passphrase) = std::env::var(PASSPHRASE_VAR) {
        let passphrase = Zeroizing::new(passphrase);
        if passphrase.is_empty() {
            return Err(Failure::new(Code::Usage, format!("{PASSPHRASE_VAR} is empty")).into());
        }
        return Ok(Box::new(PassphraseRoot::new(
            passphrase.as_bytes(),
            argon2_params(),
        )));
    }
    let passphrase = prompt_passphrase(purpose)?;
    Ok(Box::new(PassphraseRoot::new(
        passphrase.as_bytes(),
        argon2_params(),
    )))
}

fn prompt_passphrase(purpose: Purpose) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            Code::Usage,
            "no root key: stdin is not a terminal to ask for the passphrase",
        )
        .hint(format!(
            "set {PASSPHRASE_VAR}, or ATREST_ROOT_KEY, or pass --key-file PATH"
        ))
        .into());
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("Keyring passphrase: ").context("reading the passphrase")?,
    );
    if first.is_empty() {
        return Err(Failure::new(Code::Usage, "empty passphrase").into());
    }
    if purpose == Purpose::Create {
        let second = Zeroizing::new(
            rpassword::prompt_password("Repeat the passphrase: ")
                .context("reading the passphrase")?,
        );
        if *first != *second {
            return Err(Failure::new(Code::Usage, "the passphrases do not match").into());
        }
    }
    Ok(first)
}

/// A loaded keyring and the root key that opened it (to save it again).
pub(crate) struct Loaded {
    pub(crate) keyring: Keyring,
    pub(crate) root: Box<dyn RootKey>,
}

/// Loads the keyring named by `--keyring`.
///
/// # Errors
/// Key-unavailable failure if there is no keyring file; the keyring's own errors otherwise.
pub(crate) fn load(global: &Global) -> anyhow::Result<Loaded> {
    let path = &global.keyring;
    if !path.exists() {
        return Err(Failure::new(
            Code::KeyUnavailable,
            format!("no keyring at {}", path.display()),
        )
        .hint("create one with `atrest keyring init`, or point --keyring (or ATREST_KEYRING) at an existing one")
        .into());
    }
    let root = root_key(global, Purpose::Open)?;
    let keyring = Keyring::load(path, root.as_ref())
        .with_context(|| format!("opening keyring {}", path.display()))?;
    Ok(Loaded { keyring, root })
}

impl Loaded {
    /// Destroys versions whose destruction time has come, then seals and atomically replaces
    /// the keyring file. Returns what was destroyed.
    ///
    /// # Errors
    /// The keyring's file errors.
    pub(crate) fn save(&mut self, path: &Path) -> anyhow::Result<Vec<String>> {
        let destroyed = self
            .keyring
            .destroy_due(Timestamp::now())
            .into_iter()
            .map(|(key_id, version)| format!("{key_id} v{version}"))
            .collect();
        self.keyring
            .save(path, self.root.as_ref())
            .with_context(|| format!("saving keyring {}", path.display()))?;
        Ok(destroyed)
    }
}
