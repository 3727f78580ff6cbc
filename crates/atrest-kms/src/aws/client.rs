//! [`AwsKms`]: a [`KeyWrapper`] over the official AWS SDK, run on a runtime of its own.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use atrest_crypto::Key256;
use atrest_envelope::{
    DataKeyRequest, KeyId, KeyUnavailable, KeyWrapper, MAX_WRAPPED_KEY_LEN, RewrapError,
    UnwrapError, WrapContext, WrapError, WrappedKey,
};
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use super::builder::AwsKmsBuilder;
use super::context::encryption_context;
use super::error::{
    AwsKmsError, Class, Failure, FailureKind, Operation, message_reason, state_reason,
};

/// The version recorded in every [`WrappedKey`] this client makes. KMS keys have no
/// user-visible versions: automatic rotation changes the backing key inside KMS, and every
/// ciphertext names the backing key that made it, so version 1 is the only version.
pub const KEY_VERSION: u32 = 1;

/// An AWS KMS client as a [`KeyWrapper`]: `generate` is `GenerateDataKey` (AES_256), `wrap` is
/// `Encrypt`, `unwrap` is `Decrypt` (with the key id, so a ciphertext under another key is
/// refused), `rewrap` is `ReEncrypt` (the data key never leaves KMS). See the
/// [module docs](super) for the header fields and the encryption context.
///
/// The trait is synchronous; the SDK is async. Each client owns a small tokio runtime (one
/// worker thread) that runs the SDK; a call hands its request to that runtime and blocks on a
/// channel until the answer (at most the operation timeout). So it may be called from plain
/// threads and from inside any tokio runtime (it blocks that thread meanwhile, as any
/// synchronous I/O does: use `spawn_blocking` in latency-sensitive async code).
///
/// Cheap to clone (the runtime and connection pool are shared).
#[derive(Clone)]
pub struct AwsKms {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    /// `Some` until dropped; shut down in the background (a runtime must not be dropped
    /// with blocking from inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    endpoint: String,
    region: String,
    wait: Duration,
    counts: Counts,
    attempts: Arc<AtomicU64>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Default)]
struct Counts {
    generate_data_key: AtomicU64,
    encrypt: AtomicU64,
    decrypt: AtomicU64,
    re_encrypt: AtomicU64,
    describe_key: AtomicU64,
}

/// How many KMS operations a client has requested since it was built, per operation (each
/// counts once however many HTTP attempts it took; see [`CallCounts::attempts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallCounts {
    /// `GenerateDataKey` calls.
    pub generate_data_key: u64,
    /// `Encrypt` calls.
    pub encrypt: u64,
    /// `Decrypt` calls.
    pub decrypt: u64,
    /// `ReEncrypt` calls.
    pub re_encrypt: u64,
    /// `DescribeKey` calls.
    pub describe_key: u64,
    /// HTTP attempts over all operations, retries included.
    pub attempts: u64,
}

impl CallCounts {
    /// All operations.
    pub fn total(&self) -> u64 {
        self.generate_data_key + self.encrypt + self.decrypt + self.re_encrypt + self.describe_key
    }
}

/// Runs `future` on the client's runtime and blocks the calling thread until its answer.
///
/// Never `block_on`: that panics on a thread that is inside another runtime. A spawned task
/// and a channel work from any thread.
pub(super) fn bridge<T, F>(
    handle: &tokio::runtime::Handle,
    wait: Duration,
    future: F,
) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    // Detached: if the caller stops waiting, the answer is dropped (key bytes zeroized).
    drop(handle.spawn(async move {
        let _ = tx.send(future.await);
    }));
    match rx.recv_timeout(wait) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(Failure::new(
            FailureKind::Timeout,
            format!("no answer within {wait:?}"),
        )),
        Err(RecvTimeoutError::Disconnected) => Err(Failure::new(
            FailureKind::Client,
            "the client's runtime stopped before answering",
        )),
    }
}

/// What KMS's answer says about a key.
enum Condition {
    Missing,
    Unavailable(KeyUnavailable),
    Authentication,
    Backend,
}

impl AwsKms {
    pub(super) fn from_parts(
        client: Client,
        runtime: tokio::runtime::Runtime,
        endpoint: String,
        region: String,
        wait: Duration,
        attempts: Arc<AtomicU64>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                endpoint,
                region,
                wait,
                counts: Counts::default(),
                attempts,
            }),
        }
    }

    /// A builder with the defaults (configuration from the environment).
    pub fn builder() -> AwsKmsBuilder {
        AwsKmsBuilder::new()
    }

    /// The endpoint named in errors: the configured URL or AWS's regional endpoint.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// The operations requested so far (for tests and metrics: proves a cache works).
    pub fn calls(&self) -> CallCounts {
        let c = &self.shared.counts;
        CallCounts {
            generate_data_key: c.generate_data_key.load(Ordering::Relaxed),
            encrypt: c.encrypt.load(Ordering::Relaxed),
            decrypt: c.decrypt.load(Ordering::Relaxed),
            re_encrypt: c.re_encrypt.load(Ordering::Relaxed),
            describe_key: c.describe_key.load(Ordering::Relaxed),
            attempts: self.shared.attempts.load(Ordering::Relaxed),
        }
    }

    /// Re-wraps a data key under `destination` with `ReEncrypt`, inside KMS: the data key is
    /// never in this process. [`KeyWrapper::rewrap`] is this with `destination =
    /// wrapped.key_id` (a fresh ciphertext under the key's current backing key); another
    /// destination moves the wrap to another KMS key (e.g. before re-pointing an alias).
    ///
    /// # Errors
    /// [`RewrapError::Unwrap`] if the source key or ciphertext fails (missing, disabled,
    /// [`UnwrapError::Authentication`] for a ciphertext that is not valid under `wrapped.key_id`
    /// and `ctx`), [`RewrapError::Wrap`] if the destination key is missing or unusable;
    /// backend failures as `RewrapError::Unwrap(UnwrapError::Backend)`.
    pub fn rewrap_to(
        &self,
        wrapped: &WrappedKey,
        ctx: &WrapContext,
        destination: &KeyId,
    ) -> Result<WrappedKey, RewrapError> {
        check_wrapped(wrapped)?;
        let s = &self.shared;
        s.counts.re_encrypt.fetch_add(1, Ordering::Relaxed);
        let client = s.client.clone();
        let (source_id, destination_id) = (
            wrapped.key_id.as_str().to_owned(),
            destination.as_str().to_owned(),
        );
        let blob = Blob::new(wrapped.ciphertext.clone());
        let context = encryption_context(ctx);
        let result = bridge(&s.handle, s.wait, async move {
            let out = client
                .re_encrypt()
                .ciphertext_blob(blob)
                .source_key_id(source_id)
                .set_source_encryption_context(Some(context.clone()))
                .destination_key_id(destination_id)
                .set_destination_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))?;
            Ok(out
                .ciphertext_blob
                .map(Blob::into_inner)
                .unwrap_or_default())
        });
        let label = if destination == &wrapped.key_id {
            destination.to_string()
        } else {
            format!("{}' to '{destination}", wrapped.key_id)
        };
        let ciphertext = result
            .and_then(check_ciphertext)
            .map_err(|failure| self.rewrap_error(&wrapped.key_id, destination, &label, failure))?;
        Ok(WrappedKey {
            key_id: destination.clone(),
            version: KEY_VERSION,
            ciphertext,
        })
    }

    fn backend(&self, operation: Operation, key: &str, failure: Failure) -> Box<AwsKmsError> {
        Box::new(AwsKmsError::new(
            &self.shared.endpoint,
            operation,
            Some(key),
            failure,
        ))
    }

    /// Maps a failure onto what it says about `key_id` (asking `DescribeKey` which state
    /// forbids the operation, for `KMSInvalidStateException`).
    fn condition(&self, key_id: &KeyId, failure: &Failure) -> Condition {
        match failure.class() {
            Class::NotFound => Condition::Missing,
            Class::Disabled => Condition::Unavailable(KeyUnavailable::Disabled),
            Class::InvalidState => self
                .describe(key_id)
                .ok()
                .flatten()
                .and_then(|state| state_reason(&state))
                .or_else(|| message_reason(failure.message.as_deref()))
                .map_or(Condition::Backend, Condition::Unavailable),
            Class::Authentication => Condition::Authentication,
            Class::Other => Condition::Backend,
        }
    }

    /// The key's state (`Ok(None)` if KMS says it does not exist).
    fn describe(&self, key_id: &KeyId) -> Result<Option<String>, Failure> {
        let s = &self.shared;
        s.counts.describe_key.fetch_add(1, Ordering::Relaxed);
        let client = s.client.clone();
        let key = key_id.as_str().to_owned();
        bridge(&s.handle, s.wait, async move {
            match client.describe_key().key_id(key).send().await {
                Ok(out) => Ok(out
                    .key_metadata
                    .and_then(|m| m.key_state)
                    .map(|state| state.as_str().to_owned())),
                Err(e) => {
                    let failure = Failure::from_sdk(&e);
                    match failure.class() {
                        Class::NotFound => Ok(None),
                        _ => Err(failure),
                    }
                }
            }
        })
    }

    fn wrap_error(&self, operation: Operation, key_id: &KeyId, failure: Failure) -> WrapError {
        match self.condition(key_id, &failure) {
            Condition::Missing => WrapError::KeyNotFound(key_id.clone()),
            Condition::Unavailable(reason) => WrapError::Unavailable {
                key_id: key_id.clone(),
                version: KEY_VERSION,
                reason,
            },
            Condition::Authentication | Condition::Backend => {
                WrapError::Backend(self.backend(operation, key_id.as_str(), failure))
            }
        }
    }

    fn unwrap_error(
        &self,
        operation: Operation,
        key_id: &KeyId,
        label: &str,
        failure: Failure,
    ) -> UnwrapError {
        match self.condition(key_id, &failure) {
            Condition::Missing => UnwrapError::KeyNotFound(key_id.clone()),
            Condition::Unavailable(reason) => UnwrapError::Unavailable {
                key_id: key_id.clone(),
                version: KEY_VERSION,
                reason,
            },
            Condition::Authentication => UnwrapError::Authentication,
            Condition::Backend => UnwrapError::Backend(self.backend(operation, label, failure)),
        }
    }

    /// A `ReEncrypt` failure: blamed on the destination if it is another key that is
    /// missing or unusable, else on the source.
    fn rewrap_error(
        &self,
        source: &KeyId,
        destination: &KeyId,
        label: &str,
        failure: Failure,
    ) -> RewrapError {
        let key_problem = matches!(
            failure.class(),
            Class::NotFound | Class::Disabled | Class::InvalidState
        );
        if source != destination && key_problem {
            match self.describe(destination) {
                Ok(None) => return RewrapError::Wrap(WrapError::KeyNotFound(destination.clone())),
                Ok(Some(state)) => {
                    if let Some(reason) = state_reason(&state) {
                        return RewrapError::Wrap(WrapError::Unavailable {
                            key_id: destination.clone(),
                            version: KEY_VERSION,
                            reason,
                        });
                    }
                }
                Err(_) => {}
            }
        }
        RewrapError::Unwrap(self.unwrap_error(Operation::ReEncrypt, source, label, failure))
    }
}

impl fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKms")
            .field("endpoint", &self.shared.endpoint)
            .field("region", &self.shared.region)
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

/// Our own headers only ever say version 1; the ciphertext must be plausible for KMS.
fn check_wrapped(wrapped: &WrappedKey) -> Result<(), UnwrapError> {
    if wrapped.version != KEY_VERSION {
        return Err(UnwrapError::VersionNotFound {
            key_id: wrapped.key_id.clone(),
            version: wrapped.version,
        });
    }
    // KMS ciphertexts are 1..=6144 bytes; headers hold at most MAX_WRAPPED_KEY_LEN.
    if wrapped.ciphertext.is_empty() || wrapped.ciphertext.len() > MAX_WRAPPED_KEY_LEN {
        return Err(UnwrapError::Authentication);
    }
    Ok(())
}

/// A ciphertext KMS returned must fit an envelope header.
fn check_ciphertext(ciphertext: Vec<u8>) -> Result<Vec<u8>, Failure> {
    if ciphertext.is_empty() || ciphertext.len() > MAX_WRAPPED_KEY_LEN {
        return Err(Failure::new(
            FailureKind::Response,
            format!(
                "KMS returned a {}-byte ciphertext (atrest headers hold 1..={MAX_WRAPPED_KEY_LEN})",
                ciphertext.len()
            ),
        ));
    }
    Ok(ciphertext)
}

/// A 32-byte data key out of a KMS `Plaintext` blob; the blob's buffer is zeroized.
fn data_key(plaintext: Option<Blob>) -> Result<Key256, Failure> {
    let bytes = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    Key256::try_from_slice(&bytes).map_err(|_| {
        Failure::new(
            FailureKind::Response,
            format!("KMS returned a {}-byte data key, not 32", bytes.len()),
        )
    })
}

impl KeyWrapper for AwsKms {
    fn wrap(
        &self,
        key_id: &KeyId,
        data_key: &Key256,
        ctx: &WrapContext,
    ) -> Result<WrappedKey, WrapError> {
        let s = &self.shared;
        s.counts.encrypt.fetch_add(1, Ordering::Relaxed);
        let client = s.client.clone();
        let key = key_id.as_str().to_owned();
        // The SDK owns (and does not zeroize) the request's copy of the key.
        let plaintext = Blob::new(data_key.expose_secret().to_vec());
        let context = encryption_context(ctx);
        let ciphertext = bridge(&s.handle, s.wait, async move {
            let out = client
                .encrypt()
                .key_id(key)
                .plaintext(plaintext)
                .set_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))?;
            Ok(out
                .ciphertext_blob
                .map(Blob::into_inner)
                .unwrap_or_default())
        })
        .and_then(check_ciphertext)
        .map_err(|failure| self.wrap_error(Operation::Encrypt, key_id, failure))?;
        Ok(WrappedKey {
            key_id: key_id.clone(),
            version: KEY_VERSION,
            ciphertext,
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<Key256, UnwrapError> {
        check_wrapped(wrapped)?;
        let s = &self.shared;
        s.counts.decrypt.fetch_add(1, Ordering::Relaxed);
        let client = s.client.clone();
        let key = wrapped.key_id.as_str().to_owned();
        let blob = Blob::new(wrapped.ciphertext.clone());
        let context = encryption_context(ctx);
        bridge(&s.handle, s.wait, async move {
            let out = client
                .decrypt()
                .key_id(key)
                .ciphertext_blob(blob)
                .set_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))?;
            data_key(out.plaintext)
        })
        .map_err(|failure| {
            self.unwrap_error(
                Operation::Decrypt,
                &wrapped.key_id,
                wrapped.key_id.as_str(),
                failure,
            )
        })
    }

    /// `GenerateDataKey` (`KeySpec = AES_256`): the data key comes from KMS's random source,
    /// not `request.provider()`.
    fn generate(
        &self,
        key_id: &KeyId,
        ctx: &WrapContext,
        _request: &DataKeyRequest,
    ) -> Result<(Key256, WrappedKey), WrapError> {
        let s = &self.shared;
        s.counts.generate_data_key.fetch_add(1, Ordering::Relaxed);
        let client = s.client.clone();
        let key = key_id.as_str().to_owned();
        let context = encryption_context(ctx);
        let (data_key, ciphertext) = bridge(&s.handle, s.wait, async move {
            let out = client
                .generate_data_key()
                .key_id(key)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(context))
                .send()
                .await
                .map_err(|e| Failure::from_sdk(&e))?;
            let key = data_key(out.plaintext)?;
            let ciphertext = check_ciphertext(
                out.ciphertext_blob
                    .map(Blob::into_inner)
                    .unwrap_or_default(),
            )?;
            Ok((key, ciphertext))
        })
        .map_err(|failure| self.wrap_error(Operation::GenerateDataKey, key_id, failure))?;
        Ok((
            data_key,
            WrappedKey {
                key_id: key_id.clone(),
                version: KEY_VERSION,
                ciphertext,
            },
        ))
    }

    fn rewrap(&self, wrapped: &WrappedKey, ctx: &WrapContext) -> Result<WrappedKey, RewrapError> {
        self.rewrap_to(wrapped, ctx, &wrapped.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_are_checked_before_any_call() {
        let id = KeyId::new("arn:aws:kms:us-east-1:111122223333:key/k").expect("id");
        let wrapped = |version, len| WrappedKey {
            key_id: id.clone(),
            version,
            ciphertext: vec![1; len],
        };
        assert!(matches!(
            check_wrapped(&wrapped(2, 100)),
            Err(UnwrapError::VersionNotFound { version: 2, .. })
        ));
        assert!(matches!(
            check_wrapped(&wrapped(1, 0)),
            Err(UnwrapError::Authentication)
        ));
        assert!(matches!(
            check_wrapped(&wrapped(1, MAX_WRAPPED_KEY_LEN + 1)),
            Err(UnwrapError::Authentication)
        ));
        assert!(check_wrapped(&wrapped(1, 184)).is_ok());
        assert!(check_ciphertext(vec![0; MAX_WRAPPED_KEY_LEN + 1]).is_err());
        assert!(data_key(Some(Blob::new(vec![0; 16]))).is_err());
        assert!(data_key(None).is_err());
    }

    #[test]
    fn call_counts_total() {
        let c = CallCounts {
            generate_data_key: 1,
            encrypt: 2,
            decrypt: 3,
            re_encrypt: 4,
            describe_key: 5,
            attempts: 100,
        };
        assert_eq!(c.total(), 15);
    }
}
