//! Which key encrypts an object, and the encryption context bound to it.

use std::fmt;

use atrest_envelope::{Context, KeyId};
use object_store::path::Path;

use crate::error::Error;

/// The context key holding the object's location (its full path in the store).
pub const CONTEXT_LOCATION: &str = "location";
/// The context key holding the object's tenant, when the selector names one.
pub const CONTEXT_TENANT: &str = "tenant";

/// The key chosen for an object: the key id its data key is wrapped under, and the tenant
/// bound into its encryption context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The KEK that wraps the object's data key.
    pub key_id: KeyId,
    /// The tenant recorded in the encryption context (`None`: no `tenant` entry).
    pub tenant: Option<String>,
}

/// Chooses the key (and tenant) for an object from its path.
///
/// Must be a pure function of the path: readers, copies and the rewrap job call it again to
/// rebuild the context and the header length.
pub trait KeySelector: Send + Sync + fmt::Debug {
    /// The key and tenant for `location`.
    ///
    /// # Errors
    /// [`Error::NoKey`] if no key applies to the path.
    fn select(&self, location: &Path) -> Result<Selection, Error>;
}

/// First path segment = tenant, key id = `tenant-<segment>` (`acme/invoices/17.pdf` →
/// tenant `acme`, key `tenant-acme`). Objects directly at the root have no tenant and use
/// the fallback key, if one is set.
#[derive(Clone, Debug, Default)]
pub struct TenantPrefix {
    fallback: Option<KeyId>,
}

impl TenantPrefix {
    /// A selector with no fallback: root-level objects are refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Root-level objects (one path segment) are encrypted under `key_id`, with no tenant.
    pub fn with_fallback(mut self, key_id: KeyId) -> Self {
        self.fallback = Some(key_id);
        self
    }
}

impl KeySelector for TenantPrefix {
    fn select(&self, location: &Path) -> Result<Selection, Error> {
        let mut parts = location.parts();
        let no_key = |reason: &str| Error::NoKey {
            path: location.to_string(),
            reason: reason.to_owned(),
        };
        match (parts.next(), parts.next()) {
            (Some(tenant), Some(_)) => {
                let tenant = tenant.as_ref().to_owned();
                let key_id = KeyId::new(format!("tenant-{tenant}"))
                    .map_err(|_| no_key("tenant name does not make a valid key id"))?;
                Ok(Selection {
                    key_id,
                    tenant: Some(tenant),
                })
            }
            _ => match &self.fallback {
                Some(key_id) => Ok(Selection {
                    key_id: key_id.clone(),
                    tenant: None,
                }),
                None => Err(no_key(
                    "object has no tenant prefix and no fallback key is set",
                )),
            },
        }
    }
}

/// Every object under one key, no tenant.
#[derive(Clone, Debug)]
pub struct SingleKey(pub KeyId);

impl KeySelector for SingleKey {
    fn select(&self, _location: &Path) -> Result<Selection, Error> {
        Ok(Selection {
            key_id: self.0.clone(),
            tenant: None,
        })
    }
}

/// The encryption context of an object: `{location: path, tenant: selection.tenant}`.
///
/// The location is kept out of the data-key wrap ([`Context::exclude_from_wrap`]): it is
/// still bound to the header tag and every body segment (an object moved behind the store's
/// back does not open), but the wrap context is the tenant alone, so a data-key cache
/// ([`atrest_envelope::cache::CachingWrapper`]) in front of a KMS serves a tenant's objects
/// with one KMS call instead of one per object.
pub(crate) fn context(location: &Path, selection: &Selection) -> Result<Context, Error> {
    let too_long = |_| Error::NoKey {
        path: location.to_string(),
        reason: "path too long for an encryption context (4096 bytes)".to_owned(),
    };
    let mut context = Context::new()
        .with(CONTEXT_LOCATION, location.as_ref())
        .map_err(too_long)?;
    if let Some(tenant) = &selection.tenant {
        context = context.with(CONTEXT_TENANT, tenant).map_err(too_long)?;
    }
    context
        .exclude_from_wrap(CONTEXT_LOCATION)
        .map_err(|err| Error::NoKey {
            path: location.to_string(),
            reason: format!("encryption context: {err}"),
        })
}

/// Length of the envelope header this store writes for `context` and `selection`: one
/// wrapped key of `wrapped_key_len` bytes (docs/FORMAT.md §4.2).
pub(crate) fn header_len(
    context: &Context,
    selection: &Selection,
    wrapped_key_len: usize,
) -> usize {
    let context_len: usize = context.iter().map(|(k, v)| 1 + k.len() + 2 + v.len()).sum();
    // Fixed fields (magic .. context length), context, wrap scope (8), commitment, count,
    // one wrapped key, tag.
    44 + context_len
        + 8
        + atrest_envelope::COMMITMENT_LEN
        + 1
        + (1 + selection.key_id.as_str().len() + 4 + 2 + wrapped_key_len)
        + atrest_envelope::TAG_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_prefix_selects_first_segment() {
        let sel = TenantPrefix::new()
            .select(&Path::from("acme/invoices/17.pdf"))
            .expect("select");
        assert_eq!(sel.key_id.as_str(), "tenant-acme");
        assert_eq!(sel.tenant.as_deref(), Some("acme"));
        assert!(matches!(
            TenantPrefix::new().select(&Path::from("root.txt")),
            Err(Error::NoKey { .. })
        ));
        let fallback = KeyId::new("default").expect("id");
        let sel = TenantPrefix::new()
            .with_fallback(fallback.clone())
            .select(&Path::from("root.txt"))
            .expect("select");
        assert_eq!((sel.key_id, sel.tenant), (fallback, None));
    }
}
