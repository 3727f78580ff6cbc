//! `EncryptedStore`: the decorator itself.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use atrest_envelope::{Header, KeyWrapper, Malformed, Opener, Sealer};
use atrest_stream::{Layout, SeekableDecryptor};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, RenameTargetMode,
};

use crate::config::{Config, Headers};
use crate::detached::{self, STUB_LEN};
use crate::error::Error;
use crate::select::{CONTEXT_LOCATION, KeySelector, Selection, context, header_len};
use crate::upload::EncryptingUpload;
use crate::window::{Pieces, WindowReader};

/// Size of the body's stream header (docs/FORMAT.md §1.2).
const STREAM_HEADER_LEN: u64 = 42;
/// Segments decrypted per item of a streaming read, at most.
const SEGMENTS_PER_CHUNK: u64 = 16;
/// Fetches of body ranges closer than this are merged into one inner read.
const COALESCE_GAP: u64 = 1 << 20;
/// Attempts of a ranged read whose object changed between its header and body reads.
const RANGED_READ_ATTEMPTS: usize = 3;
/// Objects deleted at once by `delete_stream` with detached headers.
const DELETE_CONCURRENCY: usize = 8;

/// An `ObjectStore` that envelope-encrypts every object it writes to `inner` and
/// authenticates every byte it reads back.
///
/// By default each object is stored in the envelope's attached form, `header || body`
/// (docs/FORMAT.md §4 and §6), as one object of the inner store, so a PUT is as atomic as
/// the inner store makes it. With [`Headers::Detached`] the header lives in a sidecar and
/// the object is `stub || body`; the object's PUT is still the single commit point (§6.2). Every object gets a fresh data key wrapped under the key the
/// [`KeySelector`] picks for its path; the encryption context `{location, tenant}` binds the
/// object to its path, so bytes moved or copied behind the store's back fail to decrypt
/// while [`ObjectStoreExt::copy`] and [`ObjectStoreExt::rename`] through the store
/// re-encrypt for the destination.
///
/// # Sizes
///
/// `head`, `list` and `GetResult::meta` report plaintext sizes, derived from the stored
/// size without reading the object: every header this store writes has a length that
/// depends only on the path, the key id and [`Config::wrapped_key_len`] (detached: every
/// stub is 40 bytes).
///
/// # Security
///
/// ETags, versions, last-modified times, attributes, tags and the paths themselves are
/// the inner store's and are not encrypted.
pub struct EncryptedStore<S> {
    inner: Arc<S>,
    keys: Arc<dyn KeyWrapper + Send + Sync>,
    selector: Arc<dyn KeySelector>,
    config: Config,
    layout: Arc<Layout>,
}

impl<S> Clone for EncryptedStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            keys: Arc::clone(&self.keys),
            selector: Arc::clone(&self.selector),
            config: self.config,
            layout: Arc::clone(&self.layout),
        }
    }
}

impl<S: ObjectStore> EncryptedStore<S> {
    /// Encrypts objects of `inner` with keys of `keys`, chosen per path by `selector`.
    pub fn new(
        inner: S,
        keys: Arc<dyn KeyWrapper + Send + Sync>,
        selector: impl KeySelector + 'static,
    ) -> Self {
        Self::with_config(inner, keys, selector, Config::default())
    }

    /// As [`EncryptedStore::new`], with `config`.
    pub fn with_config(
        inner: S,
        keys: Arc<dyn KeyWrapper + Send + Sync>,
        selector: impl KeySelector + 'static,
        config: Config,
    ) -> Self {
        let mut stream_header = [0u8; 42];
        stream_header[..6].copy_from_slice(&[0x89, b'a', b't', b'r', 1, 1]);
        stream_header[6..10].copy_from_slice(&config.segment_size.to_be_bytes());
        let layout = Layout::parse(&stream_header, &atrest_stream::Options::default())
            .expect("the segment size was range-checked by Config::segment_size");
        Self {
            inner: Arc::new(inner),
            keys,
            selector: Arc::new(selector),
            config,
            layout: Arc::new(layout),
        }
    }

    /// The inner store (ciphertext).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The key holder.
    pub fn keys(&self) -> &Arc<dyn KeyWrapper + Send + Sync> {
        &self.keys
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn selection(
        &self,
        location: &Path,
    ) -> Result<(Selection, atrest_envelope::Context), Error> {
        let selection = self.selector.select(location)?;
        let context = context(location, &selection)?;
        Ok((selection, context))
    }

    /// The header length of an object this store writes at `location`.
    pub(crate) fn expected_header_len(&self, location: &Path) -> Result<usize, Error> {
        let (selection, context) = self.selection(location)?;
        Ok(header_len(
            &context,
            &selection,
            self.config.wrapped_key_len,
        ))
    }

    /// Where the body starts in the inner object at `location`: after the header (attached)
    /// or after the stub (detached).
    pub(crate) fn expected_body_offset(&self, location: &Path) -> Result<u64, Error> {
        match self.config.headers {
            Headers::Attached => Ok(self.expected_header_len(location)? as u64),
            Headers::Detached => Ok(STUB_LEN),
        }
    }

    /// True if the store keeps detached headers and `location` is where it keeps them.
    pub(crate) fn is_reserved(&self, location: &Path) -> bool {
        self.config.headers == Headers::Detached && detached::is_reserved(location)
    }

    fn check_path(&self, location: &Path) -> Result<(), Error> {
        if self.is_reserved(location) {
            return Err(Error::reserved(location));
        }
        Ok(())
    }

    /// Plaintext size of the object at `location` stored in `stored` bytes.
    ///
    /// # Errors
    /// [`Error::NotEncrypted`] if no object of this store has that size.
    pub fn plaintext_size(&self, location: &Path, stored: u64) -> Result<u64, Error> {
        let header = self.expected_body_offset(location)?;
        let not_ours = |reason| Error::NotEncrypted {
            path: location.to_string(),
            reason,
        };
        let body = stored
            .checked_sub(header)
            .ok_or_else(|| not_ours("shorter than its header"))?;
        self.layout
            .plaintext_len(body)
            .map_err(|_| not_ours("no body has this length"))
    }

    /// Stored (ciphertext) size of an object of `plaintext` bytes at `location`.
    ///
    /// # Errors
    /// [`Error::NoKey`] if the selector refuses the path.
    pub fn stored_size(&self, location: &Path, plaintext: u64) -> Result<u64, Error> {
        let header = self.expected_body_offset(location)?;
        let body = self
            .layout
            .ciphertext_len(plaintext)
            .map_err(|e| Error::seal(location, e.into()))?;
        Ok(header + body)
    }

    pub(crate) fn plain_meta(&self, mut meta: ObjectMeta) -> Result<ObjectMeta, Error> {
        meta.size = self.plaintext_size(&meta.location, meta.size)?;
        Ok(meta)
    }

    pub(crate) fn sealer(&self, location: &Path) -> Result<Sealer, Error> {
        let (selection, context) = self.selection(location)?;
        let sealer = Sealer::new(
            &*self.keys,
            std::slice::from_ref(&selection.key_id),
            &context,
            &self.config.envelope,
        )
        .map_err(|e| Error::seal(location, e))?;
        let expected = header_len(&context, &selection, self.config.wrapped_key_len);
        // Only attached headers need a predictable length (sizes are derived from it).
        if self.config.headers == Headers::Attached && sealer.header_bytes().len() != expected {
            return Err(Error::HeaderShape {
                path: location.to_string(),
                expected,
                actual: sealer.header_bytes().len(),
            });
        }
        Ok(sealer)
    }

    pub(crate) fn opener(&self, location: &Path, header: &Header) -> Result<Opener, Error> {
        let (_, context) = self.selection(location)?;
        Opener::new(header, &*self.keys, &context, &self.config.envelope)
            .map_err(|e| Error::open(location, e))
    }

    /// Encrypts a whole payload: the inner object, and with detached headers the sidecar.
    fn encrypt(&self, location: &Path, payload: &PutPayload) -> Result<Sealed, Error> {
        let sealer = self.sealer(location)?;
        let plaintext = payload.content_length() as u64;
        let body = self
            .layout
            .ciphertext_len(plaintext)
            .map_err(|e| Error::seal(location, e.into()))?;
        let (mut encryptor, sidecar) = match self.config.headers {
            Headers::Attached => {
                let capacity = body + sealer.header_bytes().len() as u64;
                let buffer = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
                let encryptor = sealer
                    .attached_encryptor(buffer)
                    .map_err(|e| Error::seal(location, e))?;
                (encryptor, None)
            }
            Headers::Detached => {
                let id = *sealer.header().blob_id();
                let header = Bytes::copy_from_slice(sealer.header_bytes());
                let mut buffer = Vec::with_capacity(usize::try_from(body + STUB_LEN).unwrap_or(0));
                buffer.extend_from_slice(&detached::stub(&id));
                let encryptor = sealer
                    .encryptor(buffer)
                    .map_err(|e| Error::seal(location, e))?;
                (encryptor, Some((detached::sidecar_path(&id), header)))
            }
        };
        for chunk in payload {
            encryptor
                .write_all(chunk)
                .map_err(|e| Error::seal(location, atrest_envelope::Error::from_io(e)))?;
        }
        let object = encryptor
            .finish()
            .map_err(|e| Error::seal(location, e.into()))?;
        Ok(Sealed {
            object: Bytes::from(object),
            sidecar,
        })
    }

    /// Finds and parses the header of the inner object starting with `prefix`: in `prefix`
    /// (attached) or in the sidecar its stub names (detached). Returns the header and the
    /// body's offset in the inner object; `Ok(None)` if `prefix` is too short to tell.
    async fn find_header(
        &self,
        location: &Path,
        prefix: &[u8],
    ) -> Result<Option<(Header, u64)>, Error> {
        match self.config.headers {
            Headers::Attached => Ok(Self::parse_header(location, prefix)?.map(|header| {
                let offset = header.len() as u64;
                (header, offset)
            })),
            Headers::Detached => {
                if (prefix.len() as u64) < STUB_LEN + STREAM_HEADER_LEN {
                    return Ok(None);
                }
                let id = detached::parse_stub(location, prefix)?;
                let header = read_sidecar(&*self.inner, location, &id).await?.0;
                Ok(Some((header, STUB_LEN)))
            }
        }
    }

    /// Parses the header at the start of `prefix`; `Ok(None)` if `prefix` ends inside it
    /// (or inside the body's stream header).
    fn parse_header(location: &Path, prefix: &[u8]) -> Result<Option<Header>, Error> {
        if detached::has_stub_magic(prefix) {
            return Err(Error::NotEncrypted {
                path: location.to_string(),
                reason: "its header is detached (open the store with Headers::Detached)",
            });
        }
        match Header::split_attached(prefix) {
            Ok((header, body)) if body.len() as u64 >= STREAM_HEADER_LEN => Ok(Some(header)),
            Ok(_) | Err(atrest_envelope::Error::Malformed(Malformed::Truncated)) => Ok(None),
            Err(e) => Err(Error::open(location, e)),
        }
    }

    /// A whole-object read: reads the header from the inner stream, opens it, and returns
    /// a stream that decrypts and authenticates the body segment by segment.
    async fn get_stream(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        let mut meta = result.meta.clone();
        let attributes = result.attributes.clone();
        let extensions = result.extensions.clone();
        let stored = meta.size;
        let mut inner = result.into_stream();
        let mut buf = BytesMut::new();
        let (header, header_len) = loop {
            if let Some(found) = self.find_header(location, &buf).await? {
                break found;
            }
            match inner.next().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => {
                    return Err(Error::open(
                        location,
                        atrest_envelope::Error::Malformed(Malformed::Truncated),
                    )
                    .into());
                }
            }
        };
        let opener = self.opener(location, &header)?;
        let body_len = stored.checked_sub(header_len).ok_or(Error::NotEncrypted {
            path: location.to_string(),
            reason: "shorter than its header",
        })?;
        drop(buf.split_to(usize::try_from(header_len).unwrap_or(usize::MAX)));
        let pieces = Pieces::new(body_len);
        let stream_header = buf.split_to(42).freeze();
        Pieces::push(&pieces, 0, stream_header);
        let decryptor = opener
            .seekable_decryptor(WindowReader::new(Arc::clone(&pieces)))
            .map_err(|e| Error::open(location, e))?;
        let plaintext_len = decryptor.len_unverified();
        let segments = if plaintext_len == 0 {
            1
        } else {
            plaintext_len.div_ceil(self.layout.segment_size() as u64)
        };
        let body = BodyStream {
            location: location.clone(),
            inner,
            decryptor,
            pieces,
            body_len,
            buf,
            buf_at: STREAM_HEADER_LEN,
            next_segment: 0,
            segments,
            segment_size: self.layout.segment_size() as u64,
        };
        meta.size = plaintext_len;
        Ok(GetResult {
            payload: GetResultPayload::Stream(body.into_stream()),
            meta,
            range: 0..plaintext_len,
            attributes,
            extensions,
        })
    }

    /// Ranged reads: the header (one bounded read of the object's start, which also covers
    /// the first segment), then one read per group of needed segments, each conditional on
    /// the ETag of the first. Retries if the object changed in between.
    async fn read_ranges(
        &self,
        location: &Path,
        options: &GetOptions,
        wanted: &Wanted,
    ) -> object_store::Result<RangedRead> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.read_ranges_once(location, options, wanted).await {
                Err(Retry::Changed) if attempt < RANGED_READ_ATTEMPTS => continue,
                Err(Retry::Changed) => {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: "object changed during every attempt of a ranged read".into(),
                    });
                }
                Err(Retry::Fail(err)) if attempt < RANGED_READ_ATTEMPTS && missing_header(&err) => {
                    continue;
                }
                Err(Retry::Fail(err)) => return Err(err),
                Ok(read) => return Ok(read),
            }
        }
    }

    async fn read_ranges_once(
        &self,
        location: &Path,
        options: &GetOptions,
        wanted: &Wanted,
    ) -> Result<RangedRead, Retry> {
        let segment = self.layout.segment_size() as u64 + 16;
        let guess = self.expected_body_offset(location).map_err(fail)?;
        let mut first = options.clone();
        first.head = false;
        first.range = Some(GetRange::Bounded(0..guess + STREAM_HEADER_LEN + segment));
        let result = self.inner.get_opts(location, first).await.map_err(fail)?;
        let meta = result.meta.clone();
        let attributes = result.attributes.clone();
        let stored = meta.size;
        let mut prefix = result.bytes().await.map_err(fail)?;
        let conditional = |range: Range<u64>| GetOptions {
            if_match: meta.e_tag.clone(),
            version: meta.version.clone(),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let (header, header_len) = match self.find_header(location, &prefix).await.map_err(fail)? {
            Some(found) => found,
            None if (prefix.len() as u64) < stored => {
                // A header longer than this store writes (e.g. more wrapped keys).
                let end = stored.min((atrest_envelope::MAX_HEADER_LEN as u64) + 42 + segment);
                prefix = self.conditional_read(location, conditional(0..end)).await?;
                self.find_header(location, &prefix)
                    .await
                    .map_err(fail)?
                    .ok_or_else(|| fail(Error::open(location, Malformed::Truncated.into())))?
            }
            None => return Err(fail(Error::open(location, Malformed::Truncated.into()))),
        };
        let opener = self.opener(location, &header).map_err(fail)?;
        let body_len = stored.checked_sub(header_len).ok_or_else(|| {
            fail(Error::NotEncrypted {
                path: location.to_string(),
                reason: "shorter than its header",
            })
        })?;
        let plaintext_len = self.layout.plaintext_len(body_len).map_err(|_| {
            fail(Error::NotEncrypted {
                path: location.to_string(),
                reason: "no body has this length",
            })
        })?;
        let out_of_range = |r: &Range<u64>| {
            fail(Error::Range {
                path: location.to_string(),
                start: r.start,
                end: r.end,
                len: plaintext_len,
            })
        };
        let ranges: Vec<Range<u64>> = match wanted {
            Wanted::One(range) => vec![range.as_range(plaintext_len).map_err(|_| {
                let (start, end) = match range {
                    GetRange::Bounded(r) => (r.start, r.end),
                    GetRange::Offset(o) => (*o, u64::MAX),
                    GetRange::Suffix(n) => (0, *n),
                };
                out_of_range(&(start..end))
            })?],
            Wanted::Many(ranges) => {
                for r in ranges {
                    if r.start > r.end || r.end > plaintext_len {
                        return Err(out_of_range(r));
                    }
                }
                ranges.clone()
            }
        };

        // Body bytes already in hand (from offset 0 of the body).
        let have = (prefix.len() as u64).saturating_sub(header_len);
        let pieces = Pieces::new(body_len);
        Pieces::push(
            &pieces,
            0,
            prefix.slice(usize::try_from(header_len).unwrap_or(usize::MAX)..),
        );
        let mut needed: Vec<Range<u64>> = Vec::new();
        for r in ranges.iter().filter(|r| r.start < r.end) {
            let body = header
                .body_range(r.clone(), body_len)
                .map_err(|e| fail(Error::open(location, e)))?;
            if body.end > have {
                needed.push(body.start.max(have)..body.end);
            }
        }
        needed.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        for r in needed {
            match merged.last_mut() {
                Some(last) if r.start <= last.end + COALESCE_GAP => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let fetches = merged.iter().map(|r| {
            let options = conditional(header_len + r.start..header_len + r.end);
            async move { self.conditional_read(location, options).await }
        });
        let fetched = futures_util::future::try_join_all(fetches).await?;
        for (r, bytes) in merged.iter().zip(fetched) {
            Pieces::push(&pieces, r.start, bytes);
        }
        let decryptor = opener
            .seekable_decryptor(WindowReader::new(pieces))
            .map_err(|e| fail(Error::open(location, e)))?;
        let mut out = Vec::with_capacity(ranges.len());
        for r in &ranges {
            let len = usize::try_from(r.end - r.start).unwrap_or(usize::MAX);
            let mut buf = vec![0u8; len];
            if len > 0 {
                let n = decryptor
                    .read_at(r.start, &mut buf)
                    .map_err(|e| fail(Error::open(location, e.into())))?;
                buf.truncate(n);
            }
            out.push(Bytes::from(buf));
        }
        let mut meta = meta;
        meta.size = plaintext_len;
        Ok(RangedRead {
            meta,
            attributes,
            ranges,
            bytes: out,
        })
    }

    /// A read conditional on the ETag of an earlier one; a failed condition means the
    /// object changed in between.
    async fn conditional_read(&self, location: &Path, options: GetOptions) -> Result<Bytes, Retry> {
        let result = match self.inner.get_opts(location, options).await {
            Ok(result) => result,
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {
                return Err(Retry::Changed);
            }
            Err(err) => return Err(Retry::Fail(err)),
        };
        result.bytes().await.map_err(Retry::Fail)
    }

    /// A listed inner object as the store shows it: `None` for detached headers.
    fn visible_meta(
        &self,
        meta: object_store::Result<ObjectMeta>,
    ) -> Option<object_store::Result<ObjectMeta>> {
        match meta {
            Ok(meta) if self.is_reserved(&meta.location) => None,
            Ok(meta) => Some(self.plain_meta(meta).map_err(Into::into)),
            Err(err) => Some(Err(err)),
        }
    }

    /// Deletes a detached-header object: the object first (it is what readers see), then
    /// its sidecar.
    async fn delete_detached(&self, location: &Path) -> object_store::Result<()> {
        self.check_path(location)?;
        let sidecar = owned_sidecar(&*self.inner, location).await;
        self.inner.delete(location).await?;
        if let Some(sidecar) = sidecar {
            // Best effort: the object is gone, so a sidecar left behind (the delete failed)
            // is unreferenced garbage for collect_garbage.
            let _best_effort = self.inner.delete(&sidecar).await;
        }
        Ok(())
    }

    async fn copy_through(
        &self,
        from: &Path,
        to: &Path,
        mode: CopyMode,
    ) -> object_store::Result<()> {
        let source = self.get_opts(from, GetOptions::default()).await?;
        let attributes = source.attributes.clone();
        if source.meta.size <= self.config.copy_in_memory_limit {
            let plaintext = source.bytes().await?;
            let mode = match mode {
                CopyMode::Overwrite => PutMode::Overwrite,
                CopyMode::Create => PutMode::Create,
            };
            let options = PutOptions {
                mode,
                attributes,
                ..PutOptions::default()
            };
            self.put_opts(to, plaintext.into(), options).await?;
            return Ok(());
        }
        if matches!(mode, CopyMode::Create) {
            // Multipart uploads cannot be conditional: check first (not atomic; documented).
            match self.inner.head(to).await {
                Ok(_) => {
                    return Err(object_store::Error::AlreadyExists {
                        path: to.to_string(),
                        source: "copy target exists".into(),
                    });
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let options = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let mut upload = self.put_multipart_opts(to, options).await?;
        let mut plaintext = source.into_stream();
        while let Some(chunk) = plaintext.next().await {
            let sent = match chunk {
                Ok(chunk) => upload.put_part(chunk.into()).await,
                Err(err) => Err(err),
            };
            if let Err(err) = sent {
                // Best effort: the upload is invisible either way.
                let _aborted = upload.abort().await;
                return Err(err);
            }
        }
        upload.complete().await?;
        Ok(())
    }
}

/// What a ranged read asks for.
enum Wanted {
    One(GetRange),
    Many(Vec<Range<u64>>),
}

struct RangedRead {
    meta: ObjectMeta,
    attributes: object_store::Attributes,
    ranges: Vec<Range<u64>>,
    bytes: Vec<Bytes>,
}

enum Retry {
    /// The object changed between the header read and a body read.
    Changed,
    Fail(object_store::Error),
}

fn fail(err: impl Into<object_store::Error>) -> Retry {
    Retry::Fail(err.into())
}

fn missing_header(err: &object_store::Error) -> bool {
    matches!(
        Error::from_object_store(err),
        Some(Error::MissingHeader { .. })
    )
}

/// A whole object encrypted for the inner store.
struct Sealed {
    /// Attached: `header || body`. Detached: `stub || body`.
    object: Bytes,
    /// Detached: the sidecar's path and the header bytes.
    sidecar: Option<(Path, Bytes)>,
}

/// Reads and parses the detached header of blob `id`, the object at `location` names, and
/// checks it is that blob's. Returns the header and the sidecar's version.
pub(crate) async fn read_sidecar(
    inner: &dyn ObjectStore,
    location: &Path,
    id: &[u8; atrest_envelope::BLOB_ID_LEN],
) -> Result<(Header, object_store::UpdateVersion), Error> {
    let sidecar = detached::sidecar_path(id);
    let limit = atrest_envelope::MAX_HEADER_LEN as u64;
    let options = GetOptions::new().with_range(Some(GetRange::Bounded(0..limit + 1)));
    let result = match inner.get_opts(&sidecar, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::MissingHeader {
                path: location.to_string(),
                header: sidecar.to_string(),
            });
        }
        Err(err) => return Err(Error::store(&sidecar, err)),
    };
    let version = object_store::UpdateVersion {
        e_tag: result.meta.e_tag.clone(),
        version: result.meta.version.clone(),
    };
    let bytes = result
        .bytes()
        .await
        .map_err(|e| Error::store(&sidecar, e))?;
    let header = Header::parse(&bytes).map_err(|e| Error::open(location, e))?;
    if header.blob_id() != id {
        // The stub and the sidecar disagree: swapped or edited behind the store's back.
        return Err(Error::open(
            location,
            atrest_envelope::Error::Authentication,
        ));
    }
    Ok((header, version))
}

/// The blob id in the stub of the detached-header object at `location`; `None` if there is
/// no such object, it has no valid stub, or it cannot be read (best effort: used to find a
/// sidecar to delete).
pub(crate) async fn current_stub(
    inner: &dyn ObjectStore,
    location: &Path,
) -> Option<[u8; atrest_envelope::BLOB_ID_LEN]> {
    read_stub(inner, location).await.ok().flatten()
}

/// The blob id in the stub of the object at `location`: `Ok(None)` if there is no object
/// or it has no valid stub, `Err` if it cannot be read.
pub(crate) async fn read_stub(
    inner: &dyn ObjectStore,
    location: &Path,
) -> object_store::Result<Option<[u8; atrest_envelope::BLOB_ID_LEN]>> {
    let options = GetOptions::new().with_range(Some(GetRange::Bounded(0..STUB_LEN)));
    let bytes = match inner.get_opts(location, options).await {
        Ok(result) => result.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(detached::parse_stub(location, &bytes).ok())
}

/// The sidecar of the object at `location`, if it has one that is its own: the stub names
/// it, and the header in it names `location`. A raw copy of another object made behind the
/// store's back names the original's header, which must survive the copy's deletion or
/// overwrite. `None` on any error (best effort: used to find a sidecar to delete).
pub(crate) async fn owned_sidecar(inner: &dyn ObjectStore, location: &Path) -> Option<Path> {
    let id = current_stub(inner, location).await?;
    let (header, _) = read_sidecar(inner, location, &id).await.ok()?;
    let own =
        header.context().get(CONTEXT_LOCATION.as_bytes()) == Some(location.as_ref().as_bytes());
    own.then(|| detached::sidecar_path(&id))
}

/// Publishes a detached-header object: writes its sidecar, then runs `commit` (the PUT or
/// multipart completion of `stub || body` at `location`, the one step that makes the new
/// object visible), then deletes the sidecar of the object it replaced.
///
/// A commit that reports failure may still have been applied (a lost response): the new
/// sidecar is deleted only if the object at `location` demonstrably does not name it.
/// Deletions are best effort: a sidecar left behind is unreferenced garbage
/// ([`EncryptedStore::collect_garbage`]), never a readable object, and a sidecar that may
/// still be in use is never deleted.
pub(crate) async fn commit_detached(
    inner: &dyn ObjectStore,
    location: &Path,
    (sidecar, header): (Path, Bytes),
    replaces: bool,
    commit: impl Future<Output = object_store::Result<PutResult>>,
) -> object_store::Result<PutResult> {
    let old = if replaces {
        owned_sidecar(inner, location).await
    } else {
        None
    };
    inner.put(&sidecar, header.into()).await?;
    let delete_old = || async {
        if let Some(old) = old.as_ref().filter(|old| **old != sidecar) {
            let _best_effort = inner.delete(old).await;
        }
    };
    match commit.await {
        Ok(result) => {
            delete_old().await;
            Ok(result)
        }
        Err(err) => {
            match read_stub(inner, location).await {
                // Applied after all: the new sidecar is in use, the old one is not.
                Ok(Some(id)) if detached::sidecar_path(&id) == sidecar => delete_old().await,
                Ok(_) => {
                    let _best_effort = inner.delete(&sidecar).await;
                }
                // Unknown: keep it; collect_garbage removes it if the commit did not happen.
                Err(_) => {}
            }
            Err(err)
        }
    }
}

/// The body of a whole-object read, decrypted segment by segment as ciphertext arrives.
struct BodyStream {
    location: Path,
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    decryptor: SeekableDecryptor<WindowReader>,
    pieces: Arc<std::sync::Mutex<Pieces>>,
    body_len: u64,
    /// Ciphertext received and not yet decrypted; starts at body offset `buf_at`.
    buf: BytesMut,
    buf_at: u64,
    next_segment: u64,
    segments: u64,
    segment_size: u64,
}

impl BodyStream {
    fn into_stream(self) -> BoxStream<'static, object_store::Result<Bytes>> {
        stream::try_unfold(self, |mut body| async move {
            match body.next_chunk().await? {
                Some(chunk) => Ok(Some((chunk, body))),
                None => Ok(None),
            }
        })
        .boxed()
    }

    fn segment_end(&self, index: u64) -> u64 {
        (STREAM_HEADER_LEN + (index + 1) * (self.segment_size + 16)).min(self.body_len)
    }

    async fn next_chunk(&mut self) -> object_store::Result<Option<Bytes>> {
        loop {
            if self.next_segment == self.segments {
                if !self.buf.is_empty() || self.inner.next().await.is_some() {
                    return Err(self.fail(atrest_stream::Error::TrailingData));
                }
                return Ok(None);
            }
            let available = self.buf_at + self.buf.len() as u64;
            let mut last = self.next_segment;
            while last < self.segments
                && last < self.next_segment + SEGMENTS_PER_CHUNK
                && self.segment_end(last) <= available
            {
                last += 1;
            }
            if last > self.next_segment {
                return self.decrypt(last).map(Some);
            }
            match self.inner.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None => return Err(self.fail(atrest_stream::Error::Truncated)),
            }
        }
    }

    /// Decrypts segments `next_segment..end`, all of which are in `buf`.
    fn decrypt(&mut self, end: u64) -> object_store::Result<Bytes> {
        let consumed = self.segment_end(end - 1) - self.buf_at;
        let ciphertext = self
            .buf
            .split_to(usize::try_from(consumed).unwrap_or(usize::MAX))
            .freeze();
        Pieces::retain_from(&self.pieces, u64::MAX);
        Pieces::push(&self.pieces, self.buf_at, ciphertext);
        let start = self.next_segment * self.segment_size;
        let plaintext_end = (end * self.segment_size).min(self.decryptor.len_unverified());
        let mut out = vec![0u8; usize::try_from(plaintext_end - start).unwrap_or(0)];
        let n = self
            .decryptor
            .read_at(start, &mut out)
            .map_err(|e| self.fail(e))?;
        if end == self.segments {
            self.decryptor.verified_len().map_err(|e| self.fail(e))?;
        }
        if n != out.len() {
            return Err(self.fail(atrest_stream::Error::Truncated));
        }
        self.buf_at += consumed;
        self.next_segment = end;
        Ok(Bytes::from(out))
    }

    fn fail(&self, err: atrest_stream::Error) -> object_store::Error {
        Error::open(&self.location, err.into()).into()
    }
}

impl<S: ObjectStore> fmt::Display for EncryptedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptedStore({})", self.inner)
    }
}

impl<S: ObjectStore> fmt::Debug for EncryptedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .field("selector", &self.selector)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: ObjectStore> ObjectStore for EncryptedStore<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check_path(location)?;
        let sealed = self.encrypt(location, &payload)?;
        drop(payload);
        match sealed.sidecar {
            None => {
                self.inner
                    .put_opts(location, sealed.object.into(), opts)
                    .await
            }
            Some(sidecar) => {
                let replaces = !matches!(opts.mode, PutMode::Create);
                let commit = self.inner.put_opts(location, sealed.object.into(), opts);
                commit_detached(&*self.inner, location, sidecar, replaces, commit).await
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check_path(location)?;
        let sealer = self.sealer(location)?;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        let detached = match self.config.headers {
            Headers::Attached => None,
            Headers::Detached => {
                let inner: Arc<dyn ObjectStore> = self.inner.clone();
                Some(inner)
            }
        };
        let upload = EncryptingUpload::new(
            location.clone(),
            upload,
            sealer,
            self.config.part_size,
            detached,
        )?;
        Ok(Box::new(upload))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check_path(location)?;
        if options.head {
            let result = self.inner.get_opts(location, options).await?;
            let meta = self.plain_meta(result.meta)?;
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                range: 0..meta.size,
                meta,
                attributes: result.attributes,
                extensions: result.extensions,
            });
        }
        match options.range.clone() {
            None => {
                let mut attempt = 1;
                loop {
                    // A detached header can vanish between reading the stub and the sidecar
                    // when the object is replaced meanwhile: read the new object.
                    match self.get_stream(location, options.clone()).await {
                        Err(err) if attempt < RANGED_READ_ATTEMPTS && missing_header(&err) => {
                            attempt += 1;
                        }
                        result => return result,
                    }
                }
            }
            Some(range) => {
                let mut read = self
                    .read_ranges(location, &options, &Wanted::One(range))
                    .await?;
                let bytes = read.bytes.pop().unwrap_or_default();
                let range = read.ranges.pop().unwrap_or_default();
                Ok(GetResult {
                    payload: GetResultPayload::Stream(stream::once(async { Ok(bytes) }).boxed()),
                    meta: read.meta,
                    range,
                    attributes: read.attributes,
                    extensions: options.extensions,
                })
            }
        }
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check_path(location)?;
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let read = self
            .read_ranges(
                location,
                &GetOptions::default(),
                &Wanted::Many(ranges.to_vec()),
            )
            .await?;
        Ok(read.bytes)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        match self.config.headers {
            Headers::Attached => self.inner.delete_stream(locations),
            Headers::Detached => {
                let this = self.clone();
                locations
                    .map(move |location| {
                        let this = this.clone();
                        async move {
                            let location = location?;
                            this.delete_detached(&location).await?;
                            Ok(location)
                        }
                    })
                    .buffered(DELETE_CONCURRENCY)
                    .boxed()
            }
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let this = self.clone();
        self.inner
            .list(prefix)
            .filter_map(move |meta| std::future::ready(this.visible_meta(meta)))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let this = self.clone();
        self.inner
            .list_with_offset(prefix, offset)
            .filter_map(move |meta| std::future::ready(this.visible_meta(meta)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.common_prefixes.retain(|p| !self.is_reserved(p));
        result.objects = result
            .objects
            .into_iter()
            .filter(|meta| !self.is_reserved(&meta.location))
            .map(|meta| self.plain_meta(meta))
            .collect::<Result<_, _>>()?;
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        // The context binds the location: bytes copied as they are would not decrypt at
        // `to`. Re-encrypt for the destination.
        self.check_path(from)?;
        self.check_path(to)?;
        self.copy_through(from, to, options.mode).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let mode = match options.target_mode {
            RenameTargetMode::Overwrite => CopyMode::Overwrite,
            RenameTargetMode::Create => CopyMode::Create,
        };
        self.check_path(from)?;
        self.check_path(to)?;
        self.copy_through(from, to, mode).await?;
        ObjectStoreExt::delete(self, from).await
    }
}
