//! AWS KMS (feature `aws`): KMS keys as key-encryption keys and as the keyring's root key,
//! through the official AWS SDK for Rust (`aws-sdk-kms`, rustls, no OpenSSL).
//!
//! ```no_run
//! use std::time::Duration;
//! use atrest_envelope::cache::CacheLimits;
//! use atrest_envelope::{Context, KeyId, open, seal};
//! use atrest_kms::aws::AwsKms;
//!
//! // Region, endpoint and credentials from the environment (AWS_REGION, AWS_PROFILE,
//! // web identity, instance metadata, ...). Cached by default: one GenerateDataKey per
//! // key and wrap context per 5 minutes / 10 000 blobs, not one per blob.
//! let kms = AwsKms::builder()
//!     .region("eu-west-1")
//!     .operation_timeout(Duration::from_secs(10))
//!     .cache_limits(CacheLimits::default().ttl(Duration::from_secs(60)))
//!     .build()?;
//!
//! // The header records this key id; use the key ARN (see "Key ids" below).
//! let key = KeyId::new("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")?;
//! let context = Context::new()
//!     .with("tenant", "acme")?
//!     .with("object", "invoice-17")?
//!     .exclude_from_wrap("object")?; // per-blob pair: bound to the blob, not to the KMS wrap
//! let blob = seal(&kms, &key, &context, b"attachment bytes")?;
//! assert_eq!(open(&kms, &context, &blob)?, b"attachment bytes");
//! println!("KMS calls: {:?}", kms.inner().calls());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The keyring's root key in KMS:
//!
//! ```no_run
//! use atrest_keyring::Keyring;
//! use atrest_kms::aws::{AwsKms, AwsKmsRoot};
//! # use atrest_envelope::KeyId;
//!
//! let kms = AwsKms::builder().build_uncached()?;
//! let root = AwsKmsRoot::new(kms, KeyId::new("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")?);
//! let keyring = Keyring::load("/etc/myapp/keyring.atrest", &root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Mapping onto KMS
//!
//! | atrest | KMS |
//! |---|---|
//! | [`KeyWrapper::generate`](atrest_envelope::KeyWrapper::generate) | `GenerateDataKey` (`KeySpec = AES_256`) |
//! | [`KeyWrapper::wrap`](atrest_envelope::KeyWrapper::wrap) | `Encrypt` |
//! | [`KeyWrapper::unwrap`](atrest_envelope::KeyWrapper::unwrap) | `Decrypt` with `KeyId` = the header's key id |
//! | [`KeyWrapper::rewrap`](atrest_envelope::KeyWrapper::rewrap), [`AwsKms::rewrap_to`] | `ReEncrypt` (the data key never leaves KMS) |
//! | `WrappedKey::key_id` | the key id the caller sealed with (key ARN, key id, alias name or alias ARN) |
//! | `WrappedKey::version` | always [`KEY_VERSION`] (1) |
//! | `WrappedKey::ciphertext` | KMS's `CiphertextBlob` as is |
//! | [`WrapContext`](atrest_envelope::WrapContext) | the encryption context (below) |
//!
//! # Key ids
//!
//! The envelope header records the key id the blob was sealed with, and `Decrypt` is called
//! with it, so KMS refuses a ciphertext made under any other key (`IncorrectKeyException`).
//! Use **key ARNs**: an alias is resolved again on every `Decrypt`, so after an alias is
//! re-pointed to a new key, blobs sealed under the old one fail to open. To move blobs to a
//! new key, seal new blobs with the new key's ARN and rewrap old headers
//! ([`atrest_envelope::RewrapPlan::Replace`], or [`AwsKms::rewrap_to`]).
//!
//! KMS keys have no user-visible versions: enable automatic rotation in KMS; every
//! ciphertext names the backing key that made it, and `Decrypt` keeps working for old ones.
//! [`KeyWrapper::rewrap`](atrest_envelope::KeyWrapper::rewrap) re-encrypts under the key's
//! current backing key.
//!
//! # Encryption context
//!
//! The wrap context's pairs become the KMS encryption context (so they appear in CloudTrail
//! and can be used in key policy conditions), plus one entry binding atrest's canonical AAD.
//! The mapping is injective (equal maps exactly for equal contexts):
//!
//! ```text
//! text(b) = b                                        if b is UTF-8, non-empty, and starts
//!                                                    with neither "atrest:" nor "aws:"
//!                                                    (ASCII case-insensitive)
//!         = "atrest:b64:" || base64url-nopad(b)      otherwise
//!
//! encryption context = { text(key) : text(value) for each bound pair }
//!                    ∪ { "atrest:aad-sha256" : base64url-nopad(SHA-256(aad)) }
//! ```
//!
//! # Errors
//!
//! | KMS answer | atrest error |
//! |---|---|
//! | `NotFoundException` | `KeyNotFound` |
//! | `DisabledException` | `Unavailable { reason: Disabled }` |
//! | `KMSInvalidStateException` | `Unavailable` with the reason `DescribeKey` gives: `Disabled`, or `ScheduledForDestruction` for a key pending deletion; else `Backend` |
//! | `InvalidCiphertextException`, `IncorrectKeyException` (on `Decrypt`/`ReEncrypt`) | `UnwrapError::Authentication` |
//! | throttling, 5xx, timeouts, network errors (after retries), access denied, anything else | `Backend(AwsKmsError)`: names AWS KMS, the endpoint, the operation and the key |
//!
//! # Failure behaviour
//!
//! Every operation is retried in the SDK's standard mode (exponential backoff with jitter,
//! [`AwsKmsBuilder::max_attempts`] attempts, 3 by default) under a connect timeout, a
//! per-attempt timeout and an operation timeout (30 s by default) that bounds how long a
//! call blocks. A failed `generate` or `wrap` returns an error before anything is encrypted,
//! so nothing is written.
//!
//! # Runtime
//!
//! The SDK is async and the [`KeyWrapper`](atrest_envelope::KeyWrapper) trait is not: each
//! [`AwsKms`] owns a tokio runtime with one worker thread; calls are handed to it and the
//! caller blocks on a channel. Calling from inside another tokio runtime is safe (no
//! `block_on`); it blocks that thread for the call's duration.
//!
//! # Security
//!
//! Data keys returned by KMS are copied into zeroizing [`atrest_crypto::Key256`]s and the
//! response buffers are zeroized. The SDK's own request and response buffers (the base64
//! JSON bodies) are not under this crate's control and are not zeroized. Error messages and
//! `Debug` output never contain key material or credentials.

mod builder;
mod client;
mod context;
mod error;
mod root;

pub use builder::AwsKmsBuilder;
pub use client::{AwsKms, CallCounts, KEY_VERSION};
pub use context::{AAD_KEY, ESCAPE_PREFIX};
pub use error::{AwsKmsError, FailureKind, Operation};
pub use root::{AwsKmsRoot, MalformedRootParams, ROOT_PROVIDER_TAG, RootKeyMismatch};
