//! Envelope encryption of attachments — what an issue tracker's attachment store does.
//!
//! ```sh
//! cargo run --example blob_envelope
//! ```
//!
//! 1. encrypt an upload with one call ([`atrest::encrypt_blob`]): a fresh data key per blob,
//!    wrapped by the tenant's key-encryption key (KEK);
//! 2. decrypt it ([`atrest::decrypt_blob`]), and the detached variant (header in a database
//!    row, body in object storage);
//! 3. serve an HTTP `Range:` request: fetch only the bytes `Header::attached_range` names;
//! 4. rotate the tenant's KEK and rewrap: only header bytes change, the body is identical;
//! 5. show that a wrong context, a destroyed KEK version and a modified header are refused.
//!
//! The keyring is `atrest-keyring`'s: KEKs sealed in a keyring file under a root key (here a
//! generated key file with 0600 permissions; a passphrase or the `ATREST_ROOT_KEY` environment
//! variable work the same way). In a larger deployment a KMS client takes its place: anything
//! implementing [`atrest::envelope::KeyWrapper`].

use std::io::{Cursor, Seek, SeekFrom};
use std::time::Duration;

use atrest::crypto::DEFAULT_PROVIDER;
use atrest::envelope::{
    Context, Error, Header, KeyId, Opener, Options, RewrapPlan, rewrap_attached,
};
use atrest::keyring::{KeyFileRoot, Keyring, Timestamp};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("atrest-blob-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn run(dir: &std::path::Path) -> Result<()> {
    // The keyring: one key per tenant, sealed in a file under a root key.
    let root = KeyFileRoot::generate(dir.join("root.key"), DEFAULT_PROVIDER)?;
    let keyring_path = dir.join("keyring.atrest");
    let now = Timestamp::now();
    let tenant = KeyId::new("tenant-acme")?;
    let mut keyring = Keyring::new();
    keyring.create_key(&tenant, now)?;
    keyring.save(&keyring_path, &root)?;
    let mut keyring = Keyring::load(&keyring_path, &root)?;
    // What the blob belongs to: bound to it, stored in clear in the header.
    let context = Context::new()
        .with("tenant", "acme")?
        .with("attachment", "7f3a")?;
    let upload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();

    // 1. One call: reader in, attached object out.
    let object = atrest::encrypt_blob(&upload[..], Vec::new(), &keyring, "tenant-acme", &context)?;
    let header = Header::split_attached(&object)?.0;
    println!(
        "encrypted {} bytes into {} ({}-byte header, key {} v{})",
        upload.len(),
        object.len(),
        header.len(),
        header.wrapped_keys()[0].key_id,
        header.wrapped_keys()[0].version
    );

    // 2. Decrypt, attached and detached.
    let mut plaintext = Vec::new();
    atrest::decrypt_blob(&object[..], &mut plaintext, &keyring, &context)?;
    assert_eq!(plaintext, upload);
    let mut body = Vec::new();
    let row =
        atrest::encrypt_blob_detached(&upload[..], &mut body, &keyring, "tenant-acme", &context)?;
    let mut plaintext = Vec::new();
    atrest::decrypt_blob_detached(&row, &body[..], &mut plaintext, &keyring, &context)?;
    assert_eq!(plaintext, upload);
    println!(
        "decrypted both forms (detached header: {} bytes)",
        row.len()
    );

    // 3. A ranged read: the store fetches the header, the body's 42-byte stream header and
    //    the segments `attached_range` names; decryption touches only those segments.
    let want = 500_000..500_100;
    let range = header.attached_range(want.clone(), object.len() as u64)?;
    println!(
        "bytes {want:?} need object bytes {range:?} (+ the first {})",
        header.len() + 42
    );
    let opener = Opener::new(&header, &keyring, &context, &Options::default())?;
    let mut stored = Cursor::new(&object);
    stored.seek(SeekFrom::Start(header.len() as u64))?;
    let reader = opener.seekable_decryptor(stored)?;
    let mut slice = vec![0u8; 100];
    reader.read_at(want.start, &mut slice)?;
    assert_eq!(slice, upload[500_000..500_100]);

    // 4. Rotate the KEK, rewrap: a new header, the very same body bytes.
    keyring.rotate(&tenant, now)?;
    keyring.save(&keyring_path, &root)?;
    let mut rewrapped = Vec::new();
    rewrap_attached(&object[..], &mut rewrapped, &keyring, &RewrapPlan::Rotate)?;
    let (new_header, new_body) = Header::split_attached(&rewrapped)?;
    assert_eq!(new_body, &object[header.len()..]);
    println!(
        "rewrapped under v{}: header changed, {} body bytes untouched",
        new_header.wrapped_keys()[0].version,
        new_body.len()
    );

    // 5. Refusals.
    let elsewhere = Context::new()
        .with("tenant", "acme")?
        .with("attachment", "0000")?;
    let wrong_context = atrest::decrypt_blob(&rewrapped[..], std::io::sink(), &keyring, &elsewhere);
    assert!(matches!(wrong_context, Err(Error::Authentication)));
    println!("wrong context: {}", wrong_context.err().ok_or("accepted")?);

    // Crypto-shred version 1: schedule its destruction (restorable during the window), then
    // let the window pass.
    keyring.schedule_destruction(&tenant, 1, now, Duration::from_secs(3600))?;
    keyring.destroy_due(now.saturating_add(Duration::from_secs(3601)));
    keyring.save(&keyring_path, &root)?;
    let shredded = atrest::decrypt_blob(&object[..], std::io::sink(), &keyring, &context);
    println!(
        "old header after v1 destroyed: {}",
        shredded.err().ok_or("accepted")?
    );
    atrest::decrypt_blob(&rewrapped[..], std::io::sink(), &keyring, &context)?;
    println!("rewrapped object still decrypts");

    let mut tampered = rewrapped.clone();
    tampered[12] ^= 1; // a blob id byte
    let refused = atrest::decrypt_blob(&tampered[..], std::io::sink(), &keyring, &context);
    println!("modified header: {}", refused.err().ok_or("accepted")?);
    Ok(())
}
