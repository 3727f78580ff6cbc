//! Rewrapping: change which KEKs wrap a blob's data key by rewriting header bytes only.

use std::io::{Read, Write};

use crate::blob::{Options, check_shape, wrap_checked};
use crate::error::{Error, MisuseError};
use crate::header::{Header, MAX_WRAPPED_KEYS};
use crate::kek::{KeyId, KeyWrapper, RewrapError, WrapContext, WrappedKey};
use crate::keys::open_header;

/// What a rewrap does to a header's wrapped keys.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewrapPlan {
    /// Re-wrap under the current primary version of every key id the header names (after a
    /// KEK rotation). Key ids stay, versions move to the primaries.
    Rotate,
    /// Replace every wrapped key with one under the current primary of this key (move a blob
    /// to another key, e.g. a tenant's own).
    Replace(KeyId),
    /// Add a wrap under the current primary of this key (e.g. an escrow key), keeping the
    /// others. If the header already holds that key id and version, it is re-wrapped in place.
    Add(KeyId),
    /// Remove the wrapped keys of this key id (only `version`, if given).
    Remove {
        /// The key id.
        key_id: KeyId,
        /// Only this version; `None` removes every version of the key.
        version: Option<u32>,
    },
}

/// Rewraps a header (bytes in, bytes out). The blob's body is untouched and stays valid: it is
/// bound to the header's immutable part (suite, blob id, segment size, context, commitment),
/// which a rewrap never changes.
///
/// [`RewrapPlan::Rotate`] asks the key holder to re-wrap each wrapped key
/// ([`KeyWrapper::rewrap`]): a KMS does it without the data key ever leaving it, and the
/// header tag, which covers only the immutable part, stays as it is. A header that did not
/// open before (bad commitment or tag) still does not open after: a rewrap never launders a
/// forged header. The other plans need the data key: they verify the old header in full
/// first (unwrap, key commitment, header tag against its stored context); the data key never
/// leaves this function.
///
/// ```
/// # use atrest_envelope::{Context, KeyId, RewrapPlan, Header, rewrap, open_detached, seal_detached};
/// # let wrapper = atrest_envelope::fuzzing::TestWrapper::new();
/// let key = KeyId::new("tenant-acme")?;
/// # wrapper.rotate(&key);
/// let context = Context::new().with("tenant", "acme")?;
/// let (header, body) = seal_detached(&wrapper, &key, &context, b"data")?;
/// wrapper.rotate(&key); // a new primary version
/// let new_header = rewrap(&header, &wrapper, &RewrapPlan::Rotate)?;
/// assert_eq!(Header::parse(&new_header)?.wrapped_keys()[0].version, 2);
/// assert_eq!(open_detached(&wrapper, &context, &new_header, &body)?, b"data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`Header::parse`] and [`crate::Opener::new`] for the old header; [`Error::Wrap`] if a
/// new wrap fails; [`MisuseError::LastWrappedKey`], [`MisuseError::NoSuchWrappedKey`],
/// [`MisuseError::TooManyWrappedKeys`] for plans that cannot apply.
pub fn rewrap<W: KeyWrapper + ?Sized>(
    header: &[u8],
    wrapper: &W,
    plan: &RewrapPlan,
) -> Result<Vec<u8>, Error> {
    let header = Header::parse(header)?;
    Ok(rewrap_header(&header, wrapper, plan, &Options::default())?.to_bytes())
}

/// Rewraps a parsed header with the given options (provider); see [`rewrap`].
///
/// # Errors
/// As [`rewrap`].
pub fn rewrap_header<W: KeyWrapper + ?Sized>(
    header: &Header,
    wrapper: &W,
    plan: &RewrapPlan,
    options: &Options,
) -> Result<Header, Error> {
    let ctx = header.wrap_context(&header.context);
    if *plan == RewrapPlan::Rotate {
        return rotate(header, wrapper, &ctx);
    }
    let provider = options.crypto_provider();
    let data_key = open_header(provider, header, wrapper, &header.context)?;
    let wrap = |key_id: &KeyId| wrap_checked(wrapper, key_id, &data_key, &ctx);

    let mut keys: Vec<WrappedKey> = match plan {
        // Handled above without the data key; kept for exhaustiveness.
        RewrapPlan::Rotate => {
            let mut keys = Vec::with_capacity(header.wrapped_keys.len());
            for old in &header.wrapped_keys {
                if !keys.iter().any(|k: &WrappedKey| k.key_id == old.key_id) {
                    keys.push(wrap(&old.key_id)?);
                }
            }
            keys
        }
        RewrapPlan::Replace(key_id) => vec![wrap(key_id)?],
        RewrapPlan::Add(key_id) => {
            let new = wrap(key_id)?;
            let mut keys = header.wrapped_keys.clone();
            match keys
                .iter_mut()
                .find(|k| k.key_id == new.key_id && k.version == new.version)
            {
                Some(same) => *same = new,
                None => keys.push(new),
            }
            keys
        }
        RewrapPlan::Remove { key_id, version } => {
            let keys: Vec<WrappedKey> = header
                .wrapped_keys
                .iter()
                .filter(|k| !(&k.key_id == key_id && version.is_none_or(|v| v == k.version)))
                .cloned()
                .collect();
            if keys.len() == header.wrapped_keys.len() {
                return Err(MisuseError::NoSuchWrappedKey(key_id.clone()).into());
            }
            keys
        }
    };
    if keys.is_empty() {
        return Err(MisuseError::LastWrappedKey.into());
    }
    if keys.len() > MAX_WRAPPED_KEYS {
        return Err(MisuseError::TooManyWrappedKeys {
            max: MAX_WRAPPED_KEYS,
        }
        .into());
    }
    keys.shrink_to_fit();
    Ok(Header {
        wrapped_keys: keys,
        ..header.clone()
    })
}

/// Rewraps an attached object streamed from `object` into `out`: the new header, then the
/// body bytes copied unchanged. Returns the number of body bytes copied.
///
/// The header's length may change, so the result is a new object (write it next to the old
/// one and swap, as object stores require anyway).
///
/// # Errors
/// As [`rewrap`]; [`Error::Io`] if reading or writing fails.
pub fn rewrap_attached<R: Read, O: Write, W: KeyWrapper + ?Sized>(
    mut object: R,
    mut out: O,
    wrapper: &W,
    plan: &RewrapPlan,
) -> Result<u64, Error> {
    let header = Header::read_from(&mut object)?;
    let new = rewrap_header(&header, wrapper, plan, &Options::default())?;
    out.write_all(&new.to_bytes())?;
    let copied = std::io::copy(&mut object, &mut out)?;
    out.flush()?;
    Ok(copied)
}

/// Rewraps an attached object held in memory; see [`rewrap_attached`].
///
/// # Errors
/// As [`rewrap`].
pub fn rewrap_attached_bytes<W: KeyWrapper + ?Sized>(
    object: &[u8],
    wrapper: &W,
    plan: &RewrapPlan,
) -> Result<Vec<u8>, Error> {
    let (header, body) = Header::split_attached(object)?;
    let mut out = rewrap_header(&header, wrapper, plan, &Options::default())?.to_bytes();
    out.extend_from_slice(body);
    Ok(out)
}

/// [`RewrapPlan::Rotate`] without the data key: each key id's first wrap re-wrapped by the
/// key holder under that key's primary version.
fn rotate<W: KeyWrapper + ?Sized>(
    header: &Header,
    wrapper: &W,
    ctx: &WrapContext,
) -> Result<Header, Error> {
    let mut keys: Vec<WrappedKey> = Vec::with_capacity(header.wrapped_keys.len());
    for old in &header.wrapped_keys {
        if keys.iter().any(|k| k.key_id == old.key_id) {
            continue;
        }
        let new = wrapper.rewrap(old, ctx).map_err(|err| match err {
            RewrapError::Unwrap(source) => Error::Unwrap {
                key_id: old.key_id.clone(),
                version: old.version,
                source,
            },
            RewrapError::Wrap(source) => Error::from(source),
        })?;
        keys.push(check_shape(&old.key_id, new)?);
    }
    Ok(Header {
        wrapped_keys: keys,
        ..header.clone()
    })
}
