//! Attachments: streamed, encrypted uploads and downloads with HTTP `Range` support.
//!
//! An attachment of tenant `acme` with id `7f3a…` is the object `acme/attachments/7f3a…` of
//! the encrypted store. `TenantPrefix` picks the key from the first path segment (`tenant-acme`)
//! and the store binds the whole path into the encryption context (`location` and `tenant`),
//! so ciphertext copied to another tenant's (or attachment's) path does not decrypt there.
//! Every query below is also scoped by the caller's tenant: another tenant's id is a plain 404
//! before any crypto runs.

use std::ops::Range;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use super::auth::{Session, random_hex};
use super::db::{self, AttachmentRow};
use super::error::{ApiError, ApiResult};
use super::{App, EncStore, PathParam, now_secs};

/// Plaintext bytes decrypted per read of a ranged download: a ranged read of the store returns
/// its range in one buffer, so a large range is served window by window, in bounded memory.
/// A multiple of the 64 KiB segment size, so no segment is decrypted twice.
const RANGE_WINDOW: u64 = 4 << 20;

/// Where an attachment lives in the store.
fn object_path(tenant: &str, id: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("{tenant}/attachments/{id}"))
}

/// `?name=` of an upload.
#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    name: Option<String>,
}

/// `POST /v1/attachments?name=NAME`: the request body, streamed into the encrypted store.
///
/// The body is never held whole: each chunk is encrypted as it arrives (`put_multipart`
/// encrypts segment by segment and writes a part per MiB of ciphertext). A failed or
/// interrupted upload is aborted and leaves nothing behind.
pub(crate) async fn upload(
    State(app): State<App>,
    session: Session,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<AttachmentRow>)> {
    let Query(query) = query?;
    let user = session.user;
    if user.tenant_shredded {
        return Err(ApiError::shredded());
    }
    let name = valid_name(query.name.as_deref().unwrap_or("attachment"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 127)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > app.config.max_upload_bytes) {
        return Err(too_large(app.config.max_upload_bytes));
    }

    let id = random_hex::<16>()?;
    let location = object_path(&user.tenant, &id);
    let mut upload = app
        .store
        .put_multipart(&location)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let sent = send_body(&mut *upload, body, app.config.max_upload_bytes).await;
    let size = match sent {
        Ok(size) => size,
        Err(err) => {
            // Nothing becomes visible: the multipart upload is discarded.
            if let Err(abort) = upload.abort().await {
                eprintln!("aborting upload {location}: {abort}");
            }
            return Err(err);
        }
    };
    upload
        .complete()
        .await
        .map_err(|e| ApiError::from_store(&e))?;

    let row = AttachmentRow {
        id,
        name,
        content_type,
        size,
        created_at: now_secs(),
    };
    let (tenant, owner, record) = (user.tenant, user.user_id, row.clone());
    let inserted = app
        .db
        .call(move |c| db::insert_attachment(c, &tenant, owner, &record))
        .await;
    if let Err(err) = inserted {
        // No row, no attachment: remove the orphan object.
        if let Err(e) = app.store.delete(&location).await {
            eprintln!("removing orphan {location}: {e}");
        }
        return Err(err);
    }
    Ok((StatusCode::CREATED, Json(row)))
}

/// Feeds the request body into the upload chunk by chunk; returns the plaintext size.
async fn send_body(upload: &mut dyn MultipartUpload, body: Body, max: u64) -> ApiResult<u64> {
    let mut size = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "body_interrupted",
                format!("reading the upload failed: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        upload
            .put_part(chunk.into())
            .await
            .map_err(|e| ApiError::from_store(&e))?;
    }
    Ok(size)
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("attachments are at most {max} bytes"),
    )
}

/// `GET /v1/attachments`: the caller's tenant's attachments, newest first.
pub(crate) async fn list(
    State(app): State<App>,
    session: Session,
) -> ApiResult<Json<Vec<AttachmentRow>>> {
    let tenant = session.user.tenant;
    Ok(Json(
        app.db.call(move |c| db::attachments(c, &tenant)).await?,
    ))
}

/// `GET /v1/attachments/{id}`: the whole file (200), or one byte range (206) of it.
///
/// The whole file streams out segment by segment as the store authenticates them. A range
/// fetches and decrypts only the segments it touches. A tampered object fails before the
/// first byte if its header or first window is bad; later, the connection is cut rather than
/// sending unauthenticated bytes.
pub(crate) async fn download(
    State(app): State<App>,
    session: Session,
    PathParam(id): PathParam,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = session.user.tenant;
    let row = find(&app, &tenant, id).await?;
    let location = object_path(&tenant, &row.id);
    // Attachments never change (rotation and rewrap keep the plaintext): the id is the ETag.
    let etag = format!("\"{}\"", row.id);
    let range_applies = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let wanted = match headers.get(header::RANGE) {
        Some(range) if range_applies => parse_range(range, row.size),
        _ => Wanted::Whole,
    };

    let response = Response::builder()
        .header(header::CONTENT_TYPE, &row.content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", row.name),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let response = match wanted {
        Wanted::Unsatisfiable => return Err(ApiError::range_not_satisfiable(row.size)),
        Wanted::Whole => {
            let result = app
                .store
                .get_opts(&location, GetOptions::default())
                .await
                .map_err(|e| ApiError::from_store(&e))?;
            response
                .status(StatusCode::OK)
                .header(header::CONTENT_LENGTH, result.meta.size)
                .body(Body::from_stream(result.into_stream()))
        }
        Wanted::Part(range) => {
            let first_end = window_end(range.start, range.end);
            // The first window is read before answering, so a shredded key or a bad header
            // is a status code, not a cut connection.
            let first = read_range(&app.store, &location, range.start..first_end)
                .await
                .map_err(|e| ApiError::from_store(&e))?;
            let rest = stream::try_unfold(
                (app.store.clone(), location, first_end, range.end),
                |(store, location, at, end)| async move {
                    if at >= end {
                        return Ok(None);
                    }
                    let next = window_end(at, end);
                    let bytes = read_range(&store, &location, at..next).await?;
                    Ok::<_, object_store::Error>(Some((bytes, (store, location, next, end))))
                },
            );
            let body = stream::once(async { Ok(first) }).chain(rest.into_stream());
            response
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{}", range.start, range.end - 1, row.size),
                )
                .header(header::CONTENT_LENGTH, range.end - range.start)
                .body(Body::from_stream(body))
        }
    };
    response.map_err(|e| ApiError::internal("building the response", &e))
}

/// `DELETE /v1/attachments/{id}`.
pub(crate) async fn delete(
    State(app): State<App>,
    session: Session,
    PathParam(id): PathParam,
) -> ApiResult<StatusCode> {
    let tenant = session.user.tenant;
    let row = find(&app, &tenant, id).await?;
    match app.store.delete(&object_path(&tenant, &row.id)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(ApiError::from_store(&e)),
    }
    app.db
        .call(move |c| db::delete_attachment(c, &tenant, &row.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The attachment `id` of `tenant`, or 404 (for ids of other tenants too).
async fn find(app: &App, tenant: &str, id: String) -> ApiResult<AttachmentRow> {
    let well_formed = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let tenant = tenant.to_owned();
    let row = if well_formed {
        app.db
            .call(move |c| db::attachment(c, &tenant, &id))
            .await?
    } else {
        None
    };
    row.ok_or_else(|| ApiError::not_found("no such attachment"))
}

/// One window of a ranged download: only the segments under `range` are fetched and
/// authenticated (plus the object's header).
async fn read_range(
    store: &EncStore,
    location: &object_store::path::Path,
    range: Range<u64>,
) -> object_store::Result<Bytes> {
    let options = GetOptions::new().with_range(Some(GetRange::Bounded(range)));
    store.get_opts(location, options).await?.bytes().await
}

/// The end of the window starting at `at`: the next multiple of [`RANGE_WINDOW`], or `end`.
fn window_end(at: u64, end: u64) -> u64 {
    end.min((at / RANGE_WINDOW + 1) * RANGE_WINDOW)
}

/// What a `Range` header asks of an object of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// No range, or one we ignore as RFC 9110 §14.2 allows (malformed, several ranges).
    Whole,
    /// One satisfiable range, clamped to the object.
    Part(Range<u64>),
    /// `416`.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` (RFC 9110 §14.1.2).
fn parse_range(value: &HeaderValue, len: u64) -> Wanted {
    let Some(spec) = value.to_str().ok().and_then(|v| {
        let (unit, spec) = v.split_once('=')?;
        unit.trim().eq_ignore_ascii_case("bytes").then_some(spec)
    }) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if first.is_empty() {
        return match number(last) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if len == 0 => Wanted::Unsatisfiable,
            Some(suffix) => Wanted::Part(len.saturating_sub(suffix)..len),
        };
    }
    let Some(start) = number(first) else {
        return Wanted::Whole;
    };
    let last = if last.is_empty() {
        Some(u64::MAX)
    } else {
        number(last)
    };
    match last {
        None => Wanted::Whole,
        Some(last) if last < start => Wanted::Whole,
        Some(_) if start >= len => Wanted::Unsatisfiable,
        Some(last) => Wanted::Part(start..last.min(len - 1) + 1),
    }
}

/// Attachment names end up in `Content-Disposition`: keep them to a safe alphabet.
fn valid_name(name: &str) -> ApiResult<String> {
    let ok = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b' ' | b'+'))
        && !name.starts_with('.');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_name",
            "names are 1-200 characters of A-Z, a-z, 0-9, '.', '-', '_', '+' and space, not starting with '.'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str, len: u64) -> Wanted {
        parse_range(&HeaderValue::from_str(value).expect("header"), len)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse("bytes=0-99", 1000), Wanted::Part(0..100));
        assert_eq!(parse("bytes=990-2000", 1000), Wanted::Part(990..1000));
        assert_eq!(parse("bytes=10-", 1000), Wanted::Part(10..1000));
        assert_eq!(parse("bytes=-10", 1000), Wanted::Part(990..1000));
        assert_eq!(parse("bytes=-5000", 1000), Wanted::Part(0..1000));
        assert_eq!(parse("BYTES=1-1", 1000), Wanted::Part(1..2));
        assert_eq!(parse("bytes=1000-", 1000), Wanted::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Wanted::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Wanted::Unsatisfiable);
        assert_eq!(parse("bytes=5-1", 1000), Wanted::Whole);
        assert_eq!(parse("bytes=0-1,5-6", 1000), Wanted::Whole);
        assert_eq!(parse("bytes=a-b", 1000), Wanted::Whole);
        assert_eq!(parse("bytes=+1-2", 1000), Wanted::Whole);
        assert_eq!(parse("items=0-1", 1000), Wanted::Whole);
        assert_eq!(parse("bytes=99999999999999999999-", 1000), Wanted::Whole);
    }

    #[test]
    fn windows_are_aligned() {
        assert_eq!(window_end(0, 100), 100);
        assert_eq!(window_end(1, 10 * RANGE_WINDOW), RANGE_WINDOW);
        assert_eq!(
            window_end(RANGE_WINDOW, 10 * RANGE_WINDOW),
            2 * RANGE_WINDOW
        );
    }
}
