//! `atrest encrypt` and `atrest decrypt`: envelopes streamed segment by segment between files
//! or stdin/stdout.

use std::io::{self, BufReader, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use atrest_envelope::{Context, Header, KeyId, MAX_HEADER_LEN, Opener, Options, Sealer};

use crate::cli::{DecryptArgs, EncryptArgs, Global};
use crate::failure::{Code, Failure};
use crate::output::{Input, Kind, Output, open_input};
use crate::root;

/// Builds the encryption context from `key=value` pairs.
///
/// # Errors
/// A usage failure for an invalid or duplicate key.
pub(crate) fn context(pairs: &[(String, String)]) -> anyhow::Result<Context> {
    let mut context = Context::new();
    for (key, value) in pairs {
        context = context
            .with(key, value)
            .map_err(|err| Failure::new(Code::Usage, format!("--context {key}={value}: {err}")))?;
    }
    Ok(context)
}

/// Encrypts a file or stdin.
///
/// # Errors
/// Keyring, key, I/O and envelope errors.
pub(crate) fn encrypt(global: &Global, args: &EncryptArgs) -> anyhow::Result<()> {
    let context = context(&args.io.context)?;
    let key_id = KeyId::new(args.key.as_str())
        .map_err(|_| Failure::new(Code::Usage, "--key must be 1 to 255 bytes"))?;
    let options = u32::try_from(args.segment_size)
        .ok()
        .and_then(|size| Options::default().segment_size(size).ok())
        .map(|options| options.threads(args.threads).provider(args.provider.get()))
        .ok_or_else(|| {
            Failure::new(
                Code::Usage,
                format!(
                    "--segment-size {} is outside 4 KiB..=16 MiB",
                    args.segment_size
                ),
            )
        })?;
    let loaded = root::load(global)?;
    let sealer = Sealer::new(
        &loaded.keyring,
        std::slice::from_ref(&key_id),
        &context,
        &options,
    )
    .with_context(|| format!("encrypting under key '{key_id}'"))?;
    let header_bytes = sealer.header_bytes().to_vec();

    let input = open_input(&args.io.input)?;
    let mut output = Output::create(&args.io.output, args.io.force, Kind::Ciphertext)?;
    let header_output = match &args.io.detached {
        Some(path) => Some(Output::create_file(path, args.io.force)?),
        None => None,
    };
    let (mut input, bar) = input.with_progress("encrypting");
    let result = (|| -> Result<(), atrest_envelope::Error> {
        let mut encryptor = if header_output.is_some() {
            sealer.encryptor(&mut output)?
        } else {
            sealer.attached_encryptor(&mut output)?
        };
        // Reads 1 MiB at a time into a buffer it seals in place (no copy into the encryptor).
        encryptor.copy_from(&mut input.reader)?;
        encryptor.finish()?;
        Ok(())
    })();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result.with_context(|| format!("encrypting {}", input.name))?;
    if let Some(mut header_output) = header_output {
        header_output
            .write_all(&header_bytes)
            .context("writing the detached header")?;
        header_output.commit()?;
    }
    output.commit()
}

/// Decrypts a file or stdin.
///
/// # Security
/// Output files appear only after every segment authenticated. On stdout, plaintext is
/// written segment by segment after each authenticated; a failure exits non-zero and the
/// consumer must discard what it read.
///
/// # Errors
/// Keyring, key, I/O and envelope errors.
pub(crate) fn decrypt(global: &Global, args: &DecryptArgs) -> anyhow::Result<()> {
    let context = context(&args.io.context)?;
    let loaded = root::load(global)?;
    let detached_header = match &args.io.detached {
        Some(path) => Some(read_header(path)?),
        None => None,
    };
    let input = open_input(&args.io.input)?;
    let (input, bar) = input.with_progress("decrypting");
    let Input { reader, name, .. } = input;
    let mut output = Output::create(&args.io.output, args.io.force, Kind::Plaintext)?;
    let result = (|| -> Result<u64, atrest_envelope::Error> {
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let header = match detached_header {
            Some(bytes) => Header::parse(&bytes)?,
            None => Header::read_from(&mut reader)?,
        };
        let options = Options::default()
            .threads(args.threads)
            .provider(args.provider.get());
        let opener = Opener::new(&header, &loaded.keyring, &context, &options)?;
        let mut decryptor = opener.decryptor(reader)?;
        io::copy(&mut decryptor, &mut output).map_err(atrest_envelope::Error::from_io)
    })();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result.with_context(|| format!("decrypting {name}"))?;
    output.commit()
}

/// Reads a detached header file (at most one maximal header).
fn read_header(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open header {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_HEADER_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading header {}", path.display()))?;
    Ok(bytes)
}
