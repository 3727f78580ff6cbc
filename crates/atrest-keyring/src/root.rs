//! Root keys: what seals the keyring file. A passphrase through Argon2id, 32 raw bytes from a
//! key file or an environment variable, or (later) an external KMS through [`RootKey`].

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use atrest_crypto::{CryptoProvider, Key256};
use base64ct::Encoding as _;
use zeroize::{Zeroize, Zeroizing};

use crate::{RootKeyError, RootKind};

/// The root-key parameters stored in a keyring file's header (see FORMAT.md).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootParams {
    /// The root key is 32 raw bytes; nothing is stored.
    RawKey,
    /// The root key is Argon2id(passphrase, salt) with these parameters.
    Passphrase {
        /// Cost parameters.
        params: Argon2Params,
        /// 16..=64 random bytes.
        salt: Vec<u8>,
    },
    /// Opaque bytes for an external provider (e.g. a KMS-wrapped root key and its key
    /// name), at most [`RootParams::MAX_EXTERNAL_LEN`] bytes.
    External(Vec<u8>),
}

impl RootParams {
    /// The longest external parameter blob.
    pub const MAX_EXTERNAL_LEN: usize = 4096;

    /// The kind of root these parameters belong to.
    pub const fn kind(&self) -> RootKind {
        match self {
            Self::RawKey => RootKind::RawKey,
            Self::Passphrase { .. } => RootKind::Passphrase,
            Self::External(_) => RootKind::External,
        }
    }
}

/// A source of the 256-bit root key that seals a keyring file.
///
/// Implement it to put an external KMS at the root: `seal_params` can generate a root key,
/// have the KMS wrap it and return the wrapped blob as [`RootParams::External`];
/// `root_key` then asks the KMS to unwrap the blob from the header.
pub trait RootKey {
    /// The kind of root, recorded in the file header and checked on load.
    fn kind(&self) -> RootKind;

    /// The parameters to seal a file with (stored in its header), e.g. a fresh salt.
    ///
    /// # Errors
    /// [`RootKeyError`] if they cannot be produced (random source, KMS failure).
    fn seal_params(&self, provider: &CryptoProvider) -> Result<RootParams, RootKeyError>;

    /// The root key for the parameters found in a file header (or just made by
    /// `seal_params`).
    ///
    /// # Errors
    /// [`RootKeyError`]: unreadable key file, parameters out of range, KMS failure, ...
    /// A *wrong* key is not detected here: the file then fails authentication.
    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError>;
}

/// Argon2id cost parameters (RFC 9106): memory in KiB, passes, lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

impl Argon2Params {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes.
    pub const RFC9106_SECOND: Self = Self {
        memory_kib: 65_536,
        iterations: 3,
        lanes: 4,
    };

    /// The default limits a [`PassphraseRoot`] accepts from a file: 2 GiB, 64 passes,
    /// 16 lanes.
    pub const DEFAULT_LIMITS: Self = Self {
        memory_kib: 2 * 1024 * 1024,
        iterations: 64,
        lanes: 16,
    };

    /// Validated parameters.
    ///
    /// # Errors
    /// [`RootKeyError::Argon2Params`] if Argon2 rejects them (e.g. memory below 8 KiB per
    /// lane, zero passes or lanes).
    pub fn new(memory_kib: u32, iterations: u32, lanes: u32) -> Result<Self, RootKeyError> {
        argon2::Params::new(memory_kib, iterations, lanes, Some(Key256::LEN))
            .map_err(|_| RootKeyError::Argon2Params("rejected by Argon2"))?;
        Ok(Self {
            memory_kib,
            iterations,
            lanes,
        })
    }

    /// Memory in KiB.
    pub const fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Passes over memory.
    pub const fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes (parallelism).
    pub const fn lanes(&self) -> u32 {
        self.lanes
    }

    fn within(&self, limits: &Self) -> bool {
        self.memory_kib <= limits.memory_kib
            && self.iterations <= limits.iterations
            && self.lanes <= limits.lanes
    }
}

/// The root key from a passphrase through Argon2id; the salt and parameters are stored in
/// the file, so loading uses whatever the file was sealed with (within `limits`).
///
/// The derived key is cached for the last salt seen, so saving again after a load does not
/// pay for Argon2 again (the same salt is reused; each save still gets a fresh file key).
pub struct PassphraseRoot {
    passphrase: Zeroizing<Vec<u8>>,
    params: Argon2Params,
    limits: Argon2Params,
    cache: Mutex<Option<(RootParams, Key256)>>,
}

impl PassphraseRoot {
    /// The length of a salt this provider writes.
    pub const SALT_LEN: usize = 16;

    /// A passphrase root that seals new files with `params` and opens files whose
    /// parameters are within [`Argon2Params::DEFAULT_LIMITS`] (and within `params` if those
    /// are larger).
    pub fn new(passphrase: impl Into<Vec<u8>>, params: Argon2Params) -> Self {
        let limits = Argon2Params {
            memory_kib: params
                .memory_kib
                .max(Argon2Params::DEFAULT_LIMITS.memory_kib),
            iterations: params
                .iterations
                .max(Argon2Params::DEFAULT_LIMITS.iterations),
            lanes: params.lanes.max(Argon2Params::DEFAULT_LIMITS.lanes),
        };
        Self {
            passphrase: Zeroizing::new(passphrase.into()),
            params,
            limits,
            cache: Mutex::new(None),
        }
    }

    /// Sets the largest parameters accepted from a file (a hostile file must not make a
    /// load take hours or gigabytes).
    #[must_use]
    pub fn with_limits(mut self, limits: Argon2Params) -> Self {
        self.limits = limits;
        self
    }

    fn derive(&self, params: &Argon2Params, salt: &[u8]) -> Result<Key256, RootKeyError> {
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.lanes,
            Some(Key256::LEN),
        )
        .map_err(|_| RootKeyError::Argon2Params("rejected by Argon2"))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params.clone(),
        );
        let mut memory = vec![argon2::Block::new(); argon_params.block_count()];
        let mut out = Zeroizing::new([0u8; 32]);
        let result = argon.hash_password_into_with_memory(
            &self.passphrase,
            salt,
            out.as_mut(),
            &mut memory[..],
        );
        memory.iter_mut().for_each(Zeroize::zeroize);
        result.map_err(|_| RootKeyError::Kdf)?;
        Ok(Key256::from_bytes(*out))
    }
}

impl RootKey for PassphraseRoot {
    fn kind(&self) -> RootKind {
        RootKind::Passphrase
    }

    fn seal_params(&self, provider: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached @ RootParams::Passphrase { params, .. }, _)) = cache.as_ref()
            && *params == self.params
        {
            return Ok(cached.clone());
        }
        let mut salt = vec![0u8; Self::SALT_LEN];
        provider
            .random
            .fill(&mut salt)
            .map_err(|_| RootKeyError::Random)?;
        Ok(RootParams::Passphrase {
            params: self.params,
            salt,
        })
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        let RootParams::Passphrase {
            params: argon,
            salt,
        } = params
        else {
            return Err(RootKeyError::ParamsMismatch);
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, key)) = cache.as_ref()
            && cached == params
        {
            return Ok(Key256::from_bytes(*key.expose_secret()));
        }
        if !argon.within(&self.limits) {
            return Err(RootKeyError::Argon2Params("above this provider's limits"));
        }
        let key = self.derive(argon, salt)?;
        *cache = Some((params.clone(), Key256::from_bytes(*key.expose_secret())));
        Ok(key)
    }
}

impl fmt::Debug for PassphraseRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassphraseRoot")
            .field("passphrase", &"[REDACTED]")
            .field("params", &self.params)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The root key from a file holding 32 raw bytes or 64 hex digits (surrounding whitespace
/// allowed). On Unix the file must not be accessible by group or others.
#[derive(Clone, Debug)]
pub struct KeyFileRoot {
    path: PathBuf,
}

impl KeyFileRoot {
    /// The root key in the file at `path` (read on every use, never cached).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Writes a fresh random root key as hex to a new file at `path` (mode 0600; fails if
    /// the file exists).
    ///
    /// # Errors
    /// [`RootKeyError::KeyFileIo`], [`RootKeyError::Random`].
    pub fn generate(
        path: impl Into<PathBuf>,
        provider: &CryptoProvider,
    ) -> Result<Self, RootKeyError> {
        use std::io::Write;
        let path = path.into();
        let io = |source| RootKeyError::KeyFileIo {
            path: path.clone(),
            source,
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        provider
            .random
            .fill(bytes.as_mut())
            .map_err(|_| RootKeyError::Random)?;
        let mut text = Zeroizing::new(hex::encode(bytes.as_ref()));
        text.push('\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self { path })
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Key256, RootKeyError> {
        let io = |source| RootKeyError::KeyFileIo {
            path: self.path.clone(),
            source,
        };
        let file = std::fs::File::open(&self.path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(RootKeyError::KeyFilePermissions {
                    path: self.path.clone(),
                    mode: mode & 0o7777,
                });
            }
        }
        // Read at most a little more than the longest valid content.
        let mut buf = Zeroizing::new(Vec::with_capacity(128));
        file.take(128).read_to_end(&mut buf).map_err(io)?;
        if let Ok(raw) = <[u8; 32]>::try_from(buf.as_slice()) {
            return Ok(Key256::from_bytes(raw));
        }
        decode_hex(trim(&buf)).ok_or_else(|| RootKeyError::KeyFileFormat(self.path.clone()))
    }
}

impl RootKey for KeyFileRoot {
    fn kind(&self) -> RootKind {
        RootKind::RawKey
    }

    fn seal_params(&self, _: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        Ok(RootParams::RawKey)
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        match params {
            RootParams::RawKey => self.read(),
            _ => Err(RootKeyError::ParamsMismatch),
        }
    }
}

/// The root key from an environment variable holding 64 hex digits or standard base64 of 32
/// bytes. The default variable is [`EnvRoot::DEFAULT_VAR`].
#[derive(Clone, Debug)]
pub struct EnvRoot {
    name: String,
}

impl EnvRoot {
    /// `ATREST_ROOT_KEY`.
    pub const DEFAULT_VAR: &'static str = "ATREST_ROOT_KEY";

    /// Reads [`EnvRoot::DEFAULT_VAR`].
    pub fn new() -> Self {
        Self::named(Self::DEFAULT_VAR)
    }

    /// Reads the variable `name` (on every use, never cached).
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// Parses a value in this provider's format (what the variable would hold).
    ///
    /// # Errors
    /// [`RootKeyError::EnvFormat`].
    pub fn parse(&self, value: &str) -> Result<Key256, RootKeyError> {
        let text = trim(value.as_bytes());
        decode_hex(text)
            .or_else(|| {
                let mut out = Zeroizing::new([0u8; 48]);
                let decoded = base64ct::Base64::decode(text, out.as_mut());
                decoded
                    .ok()
                    .and_then(|bytes| Key256::try_from_slice(bytes).ok())
            })
            .ok_or_else(|| RootKeyError::EnvFormat(self.name.clone()))
    }
}

impl Default for EnvRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl RootKey for EnvRoot {
    fn kind(&self) -> RootKind {
        RootKind::RawKey
    }

    fn seal_params(&self, _: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        Ok(RootParams::RawKey)
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        if *params != RootParams::RawKey {
            return Err(RootKeyError::ParamsMismatch);
        }
        let value = Zeroizing::new(
            std::env::var(&self.name).map_err(|_| RootKeyError::EnvMissing(self.name.clone()))?,
        );
        self.parse(&value)
    }
}

/// A root key held in memory (from a secret manager, a test, ...). Kind: raw key, so it
/// opens files sealed by [`KeyFileRoot`] / [`EnvRoot`] with the same bytes.
pub struct RawKeyRoot(Key256);

impl RawKeyRoot {
    /// Wraps a root key.
    pub const fn new(key: Key256) -> Self {
        Self(key)
    }
}

impl fmt::Debug for RawKeyRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKeyRoot([REDACTED])")
    }
}

impl RootKey for RawKeyRoot {
    fn kind(&self) -> RootKind {
        RootKind::RawKey
    }

    fn seal_params(&self, _: &CryptoProvider) -> Result<RootParams, RootKeyError> {
        Ok(RootParams::RawKey)
    }

    fn root_key(&self, params: &RootParams) -> Result<Key256, RootKeyError> {
        match params {
            RootParams::RawKey => Ok(Key256::from_bytes(*self.0.expose_secret())),
            _ => Err(RootKeyError::ParamsMismatch),
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn decode_hex(text: &[u8]) -> Option<Key256> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, out.as_mut()).ok()?;
    Some(Key256::from_bytes(*out))
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use super::*;

    const P: &CryptoProvider = atrest_crypto::DEFAULT_PROVIDER;

    fn tiny() -> Argon2Params {
        Argon2Params::new(8, 1, 1).expect("tiny params")
    }

    #[test]
    fn passphrase_root_derives_and_caches() {
        let root = PassphraseRoot::new("correct horse", tiny());
        let params = root.seal_params(P).expect("params");
        let RootParams::Passphrase { salt, .. } = &params else {
            panic!("passphrase params expected");
        };
        assert_eq!(salt.len(), PassphraseRoot::SALT_LEN);
        let k1 = root.root_key(&params).expect("derive");
        assert_eq!(root.seal_params(P).expect("params"), params, "salt reused");
        let other = PassphraseRoot::new("correct horse", tiny());
        assert_eq!(
            other.root_key(&params).expect("derive"),
            k1,
            "deterministic"
        );
        let wrong = PassphraseRoot::new("wrong horse", tiny());
        assert_ne!(wrong.root_key(&params).expect("derive"), k1);
        assert!(matches!(
            root.root_key(&RootParams::RawKey),
            Err(RootKeyError::ParamsMismatch)
        ));
        let strong = RootParams::Passphrase {
            params: Argon2Params::new(1 << 20, 1, 1).expect("params"),
            salt: vec![0; 16],
        };
        assert!(matches!(
            PassphraseRoot::new("x", tiny())
                .with_limits(tiny())
                .root_key(&strong),
            Err(RootKeyError::Argon2Params(_))
        ));
        assert!(matches!(
            Argon2Params::new(1, 0, 1),
            Err(RootKeyError::Argon2Params(_))
        ));
        assert!(!format!("{root:?}").contains("horse"));
    }

    #[test]
    fn key_file_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root.key");
        let root = KeyFileRoot::generate(&path, P).expect("generate");
        let key = root.root_key(&RootParams::RawKey).expect("read");
        assert!(matches!(
            KeyFileRoot::generate(&path, P),
            Err(RootKeyError::KeyFileIo { .. })
        ));

        let raw = dir.path().join("raw.key");
        std::fs::write(&raw, key.expose_secret()).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let err = KeyFileRoot::new(&raw).root_key(&RootParams::RawKey);
            assert!(
                matches!(&err, Err(RootKeyError::KeyFilePermissions { mode, .. }) if mode & 0o077 != 0),
                "{err:?}"
            );
            assert!(format!("{}", err.expect_err("error")).contains("chmod 600"));
            std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        assert_eq!(
            KeyFileRoot::new(&raw)
                .root_key(&RootParams::RawKey)
                .expect("raw"),
            key
        );
        std::fs::write(&raw, b"not a key").expect("write");
        assert!(matches!(
            KeyFileRoot::new(&raw).root_key(&RootParams::RawKey),
            Err(RootKeyError::KeyFileFormat(_))
        ));
        assert!(matches!(
            KeyFileRoot::new(dir.path().join("missing")).root_key(&RootParams::RawKey),
            Err(RootKeyError::KeyFileIo { .. })
        ));
    }

    #[test]
    fn env_root_parses_hex_and_base64() {
        let env = EnvRoot::new();
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let key = env.parse(&format!("  {hex}\n")).expect("hex");
        assert_eq!(env.parse(&hex.to_uppercase()).expect("upper hex"), key);
        let b64 = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=";
        assert_eq!(env.parse(b64).expect("base64"), key);
        for bad in [
            "",
            "abc",
            &hex[..62],
            "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7g==",
        ] {
            assert!(
                matches!(env.parse(bad), Err(RootKeyError::EnvFormat(n)) if n == "ATREST_ROOT_KEY")
            );
        }
        assert!(matches!(
            EnvRoot::named("ATREST_TEST_SURELY_UNSET_VAR").root_key(&RootParams::RawKey),
            Err(RootKeyError::EnvMissing(_))
        ));
    }
}
