//! The sealed keyring file: a small header naming the root key and its parameters, then the
//! payload AES-256-GCM-encrypted under a per-save key derived from the root key. Saving is
//! atomic (temp file, fsync, rename, fsync the directory). Byte layout: FORMAT.md.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use atrest_crypto::{CryptoProvider, Key256, NONCE_LEN, Nonce, TAG_LEN, Tag};
use zeroize::Zeroizing;

use crate::audit::{Operation, Outcome, record};
use crate::codec::{Reader, decode, encode};
use crate::root::{Argon2Params, RootKey, RootParams};
use crate::{FileError, Keyring};

/// The first eight bytes of every keyring file.
pub const MAGIC: [u8; 8] = *b"atrestKR";
/// The file format version this build writes (and the only one it reads).
pub const FORMAT_VERSION: u16 = 1;
/// The largest keyring file read or written: 64 MiB.
pub const MAX_FILE_LEN: usize = 64 << 20;

const KIND_PASSPHRASE: u8 = 1;
const KIND_RAW_KEY: u8 = 2;
const KIND_EXTERNAL: u8 = 3;
const HKDF_SALT_LEN: usize = 32;
const FILE_KEY_LABEL: &[u8] = b"atrest keyring v1 file key";
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;

/// A parsed header and the sealed payload it covers.
struct Sealed<'a> {
    params: RootParams,
    hkdf_salt: [u8; HKDF_SALT_LEN],
    nonce: [u8; NONCE_LEN],
    /// Every byte before the ciphertext: the AEAD's associated data.
    header: &'a [u8],
    ciphertext: &'a [u8],
    tag: [u8; TAG_LEN],
}

fn parse(bytes: &[u8]) -> Result<Sealed<'_>, FileError> {
    if bytes.len() > MAX_FILE_LEN {
        return Err(FileError::Malformed("file larger than the cap"));
    }
    let mut r = Reader(bytes);
    if r.array::<8>()? != MAGIC {
        return Err(FileError::Malformed("not a keyring file (bad magic)"));
    }
    let version = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(FileError::UnsupportedVersion(version));
    }
    let kind = r.u8()?;
    let params_len = usize::from(r.u16()?);
    let mut p = Reader(r.take(params_len)?);
    let params = match kind {
        KIND_RAW_KEY => RootParams::RawKey,
        KIND_PASSPHRASE => {
            let (m, t, lanes) = (p.u32()?, p.u32()?, p.u32()?);
            let params = Argon2Params::new(m, t, lanes)
                .map_err(|_| FileError::Malformed("invalid Argon2id parameters"))?;
            let salt_len = usize::from(p.u8()?);
            if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt_len) {
                return Err(FileError::Malformed("Argon2id salt length out of range"));
            }
            let salt = p.take(salt_len)?.to_vec();
            RootParams::Passphrase { params, salt }
        }
        KIND_EXTERNAL => {
            if params_len > RootParams::MAX_EXTERNAL_LEN {
                return Err(FileError::Malformed("external root parameters too long"));
            }
            RootParams::External(p.take(params_len)?.to_vec())
        }
        _ => return Err(FileError::Malformed("unknown root key kind")),
    };
    if !p.0.is_empty() {
        return Err(FileError::Malformed("root parameters length mismatch"));
    }
    let hkdf_salt = r.array()?;
    let nonce = r.array()?;
    let ciphertext_len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
    let header = &bytes[..bytes.len() - r.0.len()];
    let ciphertext = r.take(ciphertext_len)?;
    let tag = r.array()?;
    if !r.0.is_empty() {
        return Err(FileError::Malformed("trailing bytes after the tag"));
    }
    Ok(Sealed {
        params,
        hkdf_salt,
        nonce,
        header,
        ciphertext,
        tag,
    })
}

fn file_key(
    provider: &CryptoProvider,
    root: &Key256,
    salt: &[u8; HKDF_SALT_LEN],
) -> Result<Key256, FileError> {
    let mut okm = Zeroizing::new([0u8; 32]);
    provider
        .hkdf_sha256
        .derive(salt, root.expose_secret(), &[FILE_KEY_LABEL], okm.as_mut())
        .map_err(|_| FileError::Malformed("key derivation"))?;
    Ok(Key256::from_bytes(*okm))
}

/// Decrypts the payload of a sealed keyring (still serialized).
pub(crate) fn open_payload(
    bytes: &[u8],
    root: &dyn RootKey,
    provider: &CryptoProvider,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let sealed = parse(bytes)?;
    let file = sealed.params.kind();
    if file != root.kind() {
        return Err(FileError::RootKindMismatch {
            file,
            given: root.kind(),
        });
    }
    let root_key = root.root_key(&sealed.params)?;
    let key = file_key(provider, &root_key, &sealed.hkdf_salt)?;
    let mut payload = Zeroizing::new(vec![0u8; sealed.ciphertext.len()]);
    provider
        .aes256_gcm
        .key(&key)
        .open_to(
            &Nonce::from_bytes(sealed.nonce),
            sealed.header,
            sealed.ciphertext,
            &Tag::from_bytes(sealed.tag),
            &mut payload,
        )
        .map_err(|_| FileError::Authentication)?;
    Ok(payload)
}

impl Keyring {
    /// Seals the keyring into bytes under `root` (what [`Keyring::save`] writes).
    ///
    /// # Errors
    /// [`FileError::RootKey`], [`FileError::Random`], [`FileError::Malformed`] if the
    /// keyring is larger than [`MAX_FILE_LEN`].
    pub fn seal(&self, root: &dyn RootKey) -> Result<Vec<u8>, FileError> {
        let provider = self.provider;
        let params = root.seal_params(provider)?;
        let root_key = root.root_key(&params)?;
        let (kind, params_bytes) = match &params {
            RootParams::RawKey => (KIND_RAW_KEY, Vec::new()),
            RootParams::Passphrase { params, salt } => {
                let mut out = Vec::with_capacity(13 + salt.len());
                for n in [params.memory_kib(), params.iterations(), params.lanes()] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                out.push(u8::try_from(salt.len()).map_err(|_| FileError::Malformed("salt"))?);
                out.extend_from_slice(salt);
                (KIND_PASSPHRASE, out)
            }
            RootParams::External(blob) => (KIND_EXTERNAL, blob.clone()),
        };
        let mut payload = encode(self);
        let mut out = Vec::with_capacity(128 + params_bytes.len() + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.push(kind);
        let params_len =
            u16::try_from(params_bytes.len()).map_err(|_| FileError::Malformed("root params"))?;
        out.extend_from_slice(&params_len.to_be_bytes());
        out.extend_from_slice(&params_bytes);
        let mut salt = [0u8; HKDF_SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        provider
            .random
            .fill(&mut salt)
            .map_err(|_| FileError::Random)?;
        provider
            .random
            .fill(&mut nonce)
            .map_err(|_| FileError::Random)?;
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce);
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|_| out.len() + payload.len() + TAG_LEN <= MAX_FILE_LEN)
            .ok_or(FileError::Malformed("keyring larger than the file cap"))?;
        out.extend_from_slice(&len.to_be_bytes());
        let key = file_key(provider, &root_key, &salt)?;
        let tag = provider
            .aes256_gcm
            .key(&key)
            .seal_in_place(&Nonce::from_bytes(nonce), &out, &mut payload)
            .map_err(|_| FileError::Malformed("keyring larger than the file cap"))?;
        out.extend_from_slice(&payload);
        out.extend_from_slice(tag.as_bytes());
        Ok(out)
    }

    /// Opens bytes made by [`Keyring::seal`], using the default provider.
    ///
    /// # Errors
    /// [`FileError::Authentication`] for a wrong root key or passphrase (or modified bytes),
    /// [`FileError::RootKindMismatch`], [`FileError::Malformed`],
    /// [`FileError::UnsupportedVersion`], [`FileError::RootKey`].
    pub fn open(bytes: &[u8], root: &dyn RootKey) -> Result<Self, FileError> {
        Self::open_with_provider(bytes, root, atrest_crypto::DEFAULT_PROVIDER)
    }

    /// [`Keyring::open`] with a chosen provider.
    ///
    /// # Errors
    /// As [`Keyring::open`].
    pub fn open_with_provider(
        bytes: &[u8],
        root: &dyn RootKey,
        provider: &'static CryptoProvider,
    ) -> Result<Self, FileError> {
        let payload = open_payload(bytes, root, provider)?;
        decode(&payload, provider)
    }

    /// Seals the keyring under `root` and atomically replaces the file at `path`: a new
    /// file is written next to it (mode 0600), fsynced, renamed over `path`, and the
    /// directory is fsynced. A crash leaves either the old or the new file (and possibly a
    /// stray `.<name>.tmp-*` file, see [`remove_stale_temp_files`]).
    ///
    /// One writer at a time: concurrent saves of one file are last-writer-wins.
    ///
    /// # Errors
    /// As [`Keyring::seal`], and [`FileError::Io`].
    pub fn save(&self, path: impl AsRef<Path>, root: &dyn RootKey) -> Result<(), FileError> {
        let result = self
            .seal(root)
            .and_then(|bytes| write_atomically(path.as_ref(), &bytes, self.provider));
        audit(Operation::Save, &result);
        result
    }

    /// Loads the keyring file at `path` with the default provider.
    ///
    /// # Errors
    /// As [`Keyring::open`], and [`FileError::Io`].
    pub fn load(path: impl AsRef<Path>, root: &dyn RootKey) -> Result<Self, FileError> {
        Self::load_with_provider(path, root, atrest_crypto::DEFAULT_PROVIDER)
    }

    /// [`Keyring::load`] with a chosen provider.
    ///
    /// # Errors
    /// As [`Keyring::load`].
    pub fn load_with_provider(
        path: impl AsRef<Path>,
        root: &dyn RootKey,
        provider: &'static CryptoProvider,
    ) -> Result<Self, FileError> {
        let result = read_capped(path.as_ref())
            .and_then(|bytes| Self::open_with_provider(&bytes, root, provider));
        audit(Operation::Load, &result);
        result
    }
}

fn audit<T>(operation: Operation, result: &Result<T, FileError>) {
    match result {
        Ok(_) => record(None, None, operation, Outcome::Ok),
        Err(error) => record(None, None, operation, Outcome::Failed(error)),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole file, refusing anything over [`MAX_FILE_LEN`] without reading it all.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(MAX_FILE_LEN).unwrap_or(u64::MAX);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() > MAX_FILE_LEN {
        return Err(FileError::Malformed("file larger than the cap"));
    }
    Ok(bytes)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn temp_prefix(path: &Path) -> Result<String, FileError> {
    let name = path.file_name().ok_or_else(|| FileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    Ok(format!(".{}.tmp-", name.to_string_lossy()))
}

fn write_atomically(path: &Path, bytes: &[u8], provider: &CryptoProvider) -> Result<(), FileError> {
    let dir = parent_dir(path);
    let mut suffix = [0u8; 8];
    provider
        .random
        .fill(&mut suffix)
        .map_err(|_| FileError::Random)?;
    let tmp: PathBuf = dir.join(format!("{}{}", temp_prefix(path)?, hex::encode(suffix)));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(source) = written {
        // Best effort: the temp file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    // Make the rename itself durable.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Removes temp files a crashed [`Keyring::save`] of `path` left behind (named
/// `.<file name>.tmp-<16 hex digits>` in the same directory). They never affect loading; call
/// this at startup, while no other process saves the same keyring. Returns how many were
/// removed.
///
/// # Errors
/// [`FileError::Io`] if the directory cannot be listed or a file removed.
pub fn remove_stale_temp_files(path: impl AsRef<Path>) -> Result<usize, FileError> {
    let path = path.as_ref();
    let dir = parent_dir(path);
    let prefix = temp_prefix(path)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_ours = name
            .strip_prefix(&prefix)
            .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_ours {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            removed += 1;
        }
    }
    Ok(removed)
}
