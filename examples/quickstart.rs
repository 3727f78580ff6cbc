//! Quickstart: encrypt and decrypt a blob under a tenant's key, with the keyring sealed in a
//! file by a root key file. The README shows this code.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use atrest::crypto::DEFAULT_PROVIDER;
use atrest::envelope::{Context, KeyId};
use atrest::keyring::{KeyFileRoot, Keyring, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (root_path, keyring_path) = (
        dir.path().join("root.key"),
        dir.path().join("keyring.atrest"),
    );

    // Once: a random root key in a 0600 file, and a keyring with one key per tenant, sealed
    // under it (back up the root key; keep it apart from the data).
    let root = KeyFileRoot::generate(&root_path, DEFAULT_PROVIDER)?;
    let mut keyring = Keyring::new();
    keyring.create_key(&KeyId::new("tenant-acme")?, Timestamp::now())?;
    keyring.save(&keyring_path, &root)?;

    // At start-up: load it.
    let keyring = Keyring::load(&keyring_path, &KeyFileRoot::new(&root_path))?;

    // Per blob: a fresh data key, wrapped by the tenant's key, bound to what the blob is.
    let context = Context::new()
        .with("tenant", "acme")?
        .with("attachment", "42")?;
    let stored = atrest::encrypt_blob(
        &b"quarterly report"[..],
        Vec::new(),
        &keyring,
        "tenant-acme",
        &context,
    )?;

    let mut plaintext = Vec::new();
    atrest::decrypt_blob(&stored[..], &mut plaintext, &keyring, &context)?;
    assert_eq!(plaintext, b"quarterly report");

    // The same bytes presented as another tenant's attachment do not decrypt.
    let elsewhere = Context::new()
        .with("tenant", "globex")?
        .with("attachment", "42")?;
    assert!(atrest::decrypt_blob(&stored[..], std::io::sink(), &keyring, &elsewhere).is_err());

    println!(
        "encrypted {} bytes into {} (header + body), decrypted them, refused another context",
        plaintext.len(),
        stored.len()
    );
    Ok(())
}
