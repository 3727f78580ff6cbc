//! Envelope encryption: a fresh data key per blob, wrapped by versioned key-encryption keys
//! (KEKs), behind a header that commits to the key and names the KEK versions.
//!
//! A blob is a **header** and a **body**:
//!
//! - the header holds the suite, a random blob id, the body's segment size, the caller's
//!   encryption [`Context`] (tenant, object id, ...), a key commitment, 1..=8 wrapped data
//!   keys (each naming its key id and version) and a header tag;
//! - the body is an atrest STREAM v1 stream (see `atrest-stream`) under a key derived from
//!   the data key, bound to the header's immutable part but not to its wrapped keys, so a
//!   [`rewrap`] changes header bytes only.
//!
//! Attached form: `header || body` in one object. Detached form: the header stored anywhere
//! (a database row, a sidecar object), the body alone in storage. The byte format is
//! specified in `docs/FORMAT.md` ("atrest envelope v1").
//!
//! Two tiers, as in `atrest-stream`: one-shot [`seal`] / [`open`] / [`seal_detached`] /
//! [`open_detached`], and streaming [`Sealer`] (`Write`) / [`Opener`] (`Read`, `Read + Seek`).
//!
//! ```
//! use atrest_envelope::{Context, KeyId, open, seal};
//! # let keyring = atrest_envelope::fuzzing::TestWrapper::new();
//! # keyring.rotate(&KeyId::new("tenant-acme")?);
//! // `keyring` is any `KeyWrapper`: the local keyring, or a KMS client.
//! let key = KeyId::new("tenant-acme")?;
//! let context = Context::new().with("tenant", "acme")?.with("object", "invoice-17")?;
//! let object = seal(&keyring, &key, &context, b"attachment bytes")?;
//! assert_eq!(open(&keyring, &context, &object)?, b"attachment bytes");
//!
//! // The same object opened for another object id fails to authenticate.
//! let elsewhere = Context::new().with("tenant", "acme")?.with("object", "invoice-18")?;
//! assert!(matches!(
//!     open(&keyring, &elsewhere, &object),
//!     Err(atrest_envelope::Error::Authentication)
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! - Data keys are 256-bit, from the provider's CSPRNG, zeroized on drop, never returned.
//! - Key commitment: opening compares (in constant time) a commitment derived from the
//!   unwrapped data key before the header tag or any body segment is checked, so a header
//!   whose wrapped keys unwrap to different data keys for different key holders is rejected
//!   ([`Error::CommitmentMismatch`]).
//! - Every length in a header is checked against its cap before anything is allocated from it
//!   (a header is at most [`MAX_HEADER_LEN`] bytes).

mod blob;
pub mod cache;
mod context;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod kek;
mod keys;
mod rewrap;

pub use blob::{Opener, Options, Sealer, open, open_detached, seal, seal_detached};
pub use context::{Context, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_KEY_LEN, MAX_CONTEXT_LEN};
pub use error::{Error, LimitExceeded, Malformed, MisuseError};
pub use header::{
    BLOB_ID_LEN, COMMITMENT_LEN, Header, MAGIC, MAX_HEADER_LEN, MAX_WRAPPED_KEY_LEN,
    MAX_WRAPPED_KEYS, SUITE, TAG_LEN, VERSION,
};
pub use kek::{
    DataKeyRequest, KeyId, KeyUnavailable, KeyWrapper, RewrapError, UnwrapError, WrapContext,
    WrapError, WrappedKey, local,
};
pub use rewrap::{RewrapPlan, rewrap, rewrap_attached, rewrap_attached_bytes, rewrap_header};
