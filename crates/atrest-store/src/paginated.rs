//! `PaginatedListStore` for an `EncryptedStore` over a store that has it (S3, GCS, Azure).

use async_trait::async_trait;
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::{ObjectMeta, ObjectStore};

use crate::store::EncryptedStore;

/// Pages of the inner store's listing with plaintext sizes. With detached headers the
/// sidecars under [`crate::DETACHED_HEADERS`] are removed from each page, so a page that
/// covers them holds fewer than `max_keys` objects (its page token still continues the
/// listing).
#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ObjectStore + PaginatedListStore> PaginatedListStore for EncryptedStore<S> {
    async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> object_store::Result<PaginatedListResult> {
        let mut page = self.inner().list_paginated(prefix, opts).await?;
        page.result.common_prefixes.retain(|p| !self.is_reserved(p));
        page.result.objects = std::mem::take(&mut page.result.objects)
            .into_iter()
            .filter(|meta| !self.is_reserved(&meta.location))
            .map(|meta| self.plain_meta(meta))
            .collect::<Result<Vec<ObjectMeta>, _>>()?;
        Ok(page)
    }
}
