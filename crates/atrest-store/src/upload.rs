//! Streaming uploads: a `MultipartUpload` that encrypts parts as they arrive.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use atrest_stream::Encryptor;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutPayload, PutResult, UploadPart};

use crate::detached;
use crate::error::Error;
use crate::store::commit_detached;

/// Ciphertext produced by the encryptor and not yet handed to the inner upload.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An encrypting multipart upload (from [`crate::EncryptedStore`]'s `put_multipart_opts`).
///
/// Each `put_part` encrypts its plaintext at once (in call order, which is the object's
/// byte order) and hands the inner upload a part whenever at least `part_size` bytes of
/// ciphertext are ready, so memory stays at about one part plus one segment whatever the
/// object size. The envelope header goes first, in the first part (with detached headers:
/// the stub goes first, and `complete` writes the sidecar just before completing the inner
/// upload).
///
/// **`complete` MUST be called** for the object to appear: it seals the final segment. An
/// upload that is aborted, dropped or fails leaves nothing visible (the inner store's
/// multipart semantics).
pub struct EncryptingUpload {
    location: Path,
    inner: Box<dyn MultipartUpload>,
    /// Detached headers: the inner store, the sidecar's path and the header bytes.
    detached: Option<(Arc<dyn ObjectStore>, Path, Bytes)>,
    encryptor: Option<Encryptor<Sink>>,
    sink: Sink,
    part_size: usize,
    parts: usize,
}

impl EncryptingUpload {
    pub(crate) fn new(
        location: Path,
        inner: Box<dyn MultipartUpload>,
        sealer: atrest_envelope::Sealer,
        part_size: usize,
        detached_store: Option<Arc<dyn ObjectStore>>,
    ) -> Result<Self, Error> {
        let mut sink = Sink::default();
        let (encryptor, detached) = match detached_store {
            None => {
                let encryptor = sealer
                    .attached_encryptor(sink.clone())
                    .map_err(|e| Error::seal(&location, e))?;
                (encryptor, None)
            }
            Some(store) => {
                let id = *sealer.header().blob_id();
                let header = Bytes::copy_from_slice(sealer.header_bytes());
                sink.write_all(&detached::stub(&id))
                    .map_err(|e| Error::seal(&location, atrest_envelope::Error::from_io(e)))?;
                let encryptor = sealer
                    .encryptor(sink.clone())
                    .map_err(|e| Error::seal(&location, e))?;
                (
                    encryptor,
                    Some((store, detached::sidecar_path(&id), header)),
                )
            }
        };
        Ok(Self {
            location,
            inner,
            detached,
            encryptor: Some(encryptor),
            sink,
            part_size,
            parts: 0,
        })
    }

    fn encrypt(&mut self, data: &PutPayload) -> Result<(), Error> {
        let encryptor = self
            .encryptor
            .as_mut()
            .ok_or_else(|| Error::seal(&self.location, poisoned()))?;
        for chunk in data {
            if let Err(err) = encryptor.write_all(chunk) {
                self.encryptor = None;
                return Err(Error::seal(
                    &self.location,
                    atrest_envelope::Error::from_io(err),
                ));
            }
        }
        Ok(())
    }

    fn send(&mut self, ciphertext: Vec<u8>) -> UploadPart {
        self.parts += 1;
        self.inner
            .put_part(PutPayload::from_bytes(Bytes::from(ciphertext)))
    }
}

impl fmt::Debug for EncryptingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingUpload")
            .field("location", &self.location)
            .field("inner", &self.inner)
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl MultipartUpload for EncryptingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if let Err(err) = self.encrypt(&data) {
            let err = object_store::Error::from(err);
            return Box::pin(async move { Err(err) });
        }
        if self.sink.len() >= self.part_size {
            let ciphertext = self.sink.take();
            self.send(ciphertext)
        } else {
            Box::pin(async { Ok(()) })
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let encryptor = self
            .encryptor
            .take()
            .ok_or_else(|| Error::seal(&self.location, poisoned()))?;
        encryptor
            .finish()
            .map_err(|e| Error::seal(&self.location, e.into()))?;
        let rest = self.sink.take();
        if !rest.is_empty() {
            self.send(rest).await?;
        }
        match self.detached.take() {
            None => self.inner.complete().await,
            Some((store, sidecar, header)) => {
                let commit = self.inner.complete();
                commit_detached(&*store, &self.location, (sidecar, header), true, commit).await
            }
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.encryptor = None;
        drop(self.sink.take());
        self.inner.abort().await
    }
}

fn poisoned() -> atrest_envelope::Error {
    atrest_stream::Error::from(atrest_stream::MisuseError::Poisoned).into()
}
