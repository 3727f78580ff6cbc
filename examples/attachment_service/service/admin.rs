//! Operator endpoints (admin token): tenants and their keys, key rotation, rewrap jobs with
//! live progress, crypto-shredding.
//!
//! Rotation makes a new key version the primary: new uploads are wrapped under it at once,
//! existing attachments stay readable under the old version. Rewrap then moves existing
//! attachments to the new version by rewriting their headers only (the bodies are not
//! re-encrypted). Shredding destroys every version of the tenant's key: its attachments stay
//! on disk (and in backups) as ciphertext nobody can decrypt again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use atrest::keyring::Timestamp;
use atrest::store::{Progress, ProgressSnapshot, RewrapReport};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Admin, random_hex, valid_tenant};
use super::db::{self, TenantRow};
use super::error::{ApiError, ApiResult};
use super::keys::{keyring_error, tenant_key_id};
use super::{App, PathParam, now_secs};

/// Objects a job works on at once.
const JOB_CONCURRENCY: usize = 8;
/// Finished jobs remembered for `GET /v1/admin/jobs/{job}`.
const JOBS_KEPT: usize = 100;

/// A tenant with its key's state.
#[derive(Serialize)]
pub(crate) struct TenantStatus {
    #[serde(flatten)]
    row: TenantRow,
    key_id: String,
    primary_version: Option<u32>,
    versions: usize,
    key_shredded: bool,
}

/// `GET /v1/admin/tenants`.
pub(crate) async fn tenants(
    State(app): State<App>,
    _: Admin,
) -> ApiResult<Json<Vec<TenantStatus>>> {
    let rows = app.db.call(|c| db::tenants(c)).await?;
    let status = app.keys.shared().read().status();
    let tenants = rows
        .into_iter()
        .map(|row| {
            let key_id = format!("tenant-{}", row.tenant);
            let key = status.keys.iter().find(|k| k.key_id.as_str() == key_id);
            TenantStatus {
                primary_version: key.map(|k| k.primary),
                versions: key.map_or(0, |k| k.versions.len()),
                key_shredded: key.is_some_and(|k| k.shredded),
                key_id,
                row,
            }
        })
        .collect();
    Ok(Json(tenants))
}

/// Result of a rotation.
#[derive(Serialize)]
pub(crate) struct Rotated {
    tenant: String,
    key_id: String,
    primary_version: u32,
    next: String,
}

/// `POST /v1/admin/tenants/{tenant}/rotate`: a new primary version for the tenant's key.
pub(crate) async fn rotate(
    State(app): State<App>,
    _: Admin,
    PathParam(tenant): PathParam,
) -> ApiResult<Json<Rotated>> {
    let tenant = existing_tenant(&app, &tenant).await?;
    let key_id = tenant_key_id(&tenant)?;
    let id = key_id.clone();
    let primary_version = app
        .keys
        .change(move |keyring| keyring.rotate(&id, Timestamp::now()))
        .await?;
    Ok(Json(Rotated {
        next: format!("POST /v1/admin/tenants/{tenant}/rewrap moves existing attachments to it"),
        tenant,
        key_id: key_id.as_str().to_owned(),
        primary_version,
    }))
}

/// `?wait=true`: answer when the job is done instead of at once.
#[derive(Deserialize)]
pub(crate) struct RewrapQuery {
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/admin/tenants/{tenant}/rewrap`: starts moving every attachment of the tenant
/// to its key's primary version; `202` with the job, whose progress
/// `GET /v1/admin/jobs/{job}` shows. The job is idempotent and resumable: run it again after
/// a restart and it finishes what is left.
pub(crate) async fn start_rewrap(
    State(app): State<App>,
    _: Admin,
    PathParam(tenant): PathParam,
    query: Result<Query<RewrapQuery>, QueryRejection>,
) -> ApiResult<(StatusCode, Json<JobStatus>)> {
    let Query(query) = query?;
    let tenant = existing_tenant(&app, &tenant).await?;
    let job = Arc::new(Job {
        id: random_hex::<16>()?,
        tenant: tenant.clone(),
        started_at: now_secs(),
        progress: Progress::new(),
        outcome: Mutex::new(None),
    });
    app.jobs.insert(Arc::clone(&job));
    let (worker, store) = (Arc::clone(&job), app.store.clone());
    let handle = tokio::spawn(async move {
        let prefix = object_store::path::Path::from(tenant);
        let outcome = match store
            .rewrap(Some(&prefix), JOB_CONCURRENCY, &worker.progress)
            .await
        {
            Ok(report) => Outcome::Done(RewrapSummary::from(report)),
            Err(err) => Outcome::Failed(err.to_string()),
        };
        *worker
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    });
    if query.wait {
        handle
            .await
            .map_err(|e| ApiError::internal("rewrap job", &e))?;
        return Ok((StatusCode::OK, Json(job.status())));
    }
    Ok((StatusCode::ACCEPTED, Json(job.status())))
}

/// `GET /v1/admin/jobs/{job}`.
pub(crate) async fn job(
    State(app): State<App>,
    _: Admin,
    PathParam(id): PathParam,
) -> ApiResult<Json<JobStatus>> {
    app.jobs
        .find(&id)
        .map(|job| Json(job.status()))
        .ok_or_else(|| ApiError::not_found("no such job"))
}

/// What a shred did and proved.
#[derive(Serialize)]
pub(crate) struct Shredded {
    tenant: String,
    key_id: String,
    /// Attachments found under the tenant's prefix.
    objects: u64,
    /// Attachments that now fail to decrypt because the key is destroyed (all of them).
    unrecoverable: u64,
    /// Attachments that still decrypt (none, unless they were not under the tenant's key).
    readable: Vec<String>,
    /// Attachments that failed for another reason.
    other: Vec<PathError>,
}

/// `POST /v1/admin/tenants/{tenant}/shred`: destroys every version of the tenant's key,
/// saves the keyring (the key material leaves the file) and proves each attachment
/// unrecoverable. Cannot be undone.
pub(crate) async fn shred(
    State(app): State<App>,
    _: Admin,
    PathParam(tenant): PathParam,
) -> ApiResult<Json<Shredded>> {
    let tenant = existing_tenant(&app, &tenant).await?;
    let key_id = tenant_key_id(&tenant)?;
    let prefix = object_store::path::Path::from(tenant.as_str());
    let lock = app.keys.lock().await;
    let report = app
        .store
        .shred(app.keys.shared(), &key_id, &prefix, JOB_CONCURRENCY)
        .await;
    let report = match report {
        Ok(report) => report,
        Err(atrest::store::Error::Keyring(err)) => return Err(keyring_error(*err)),
        Err(err) => return Err(ApiError::internal("shred", &err)),
    };
    app.keys.save(&lock).await?;
    drop(lock);
    let (name, now) = (tenant.clone(), now_secs());
    app.db
        .call(move |c| db::mark_shredded(c, &name, now))
        .await?;
    Ok(Json(Shredded {
        tenant,
        key_id: key_id.as_str().to_owned(),
        objects: report.objects,
        unrecoverable: report.unrecoverable,
        readable: report.readable.iter().map(ToString::to_string).collect(),
        other: report.other.iter().map(PathError::from).collect(),
    }))
}

/// The tenant named in the path, if it exists.
async fn existing_tenant(app: &App, tenant: &str) -> ApiResult<String> {
    let tenant = valid_tenant(tenant)?;
    let name = tenant.clone();
    match app.db.call(move |c| db::tenant(c, &name)).await? {
        Some(_) => Ok(tenant),
        None => Err(ApiError::not_found("no such tenant")),
    }
}

/// The jobs started since the service started (the most recent finished ones).
#[derive(Default)]
pub(crate) struct Jobs(Mutex<VecDeque<Arc<Job>>>);

impl Jobs {
    fn insert(&self, job: Arc<Job>) {
        let mut jobs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.push_back(job);
        while jobs.len() > JOBS_KEPT {
            match jobs.iter().position(|j| j.finished()) {
                Some(oldest_finished) => drop(jobs.remove(oldest_finished)),
                None => break,
            }
        }
    }

    fn find(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.iter().find(|j| j.id == id).cloned()
    }
}

/// A rewrap job.
pub(crate) struct Job {
    id: String,
    tenant: String,
    started_at: i64,
    progress: Progress,
    outcome: Mutex<Option<Outcome>>,
}

enum Outcome {
    Done(RewrapSummary),
    Failed(String),
}

impl Job {
    fn finished(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn status(&self) -> JobStatus {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, report, error) = match &*outcome {
            None => ("running", None, None),
            Some(Outcome::Done(report)) => ("done", Some(report.clone()), None),
            Some(Outcome::Failed(err)) => ("failed", None, Some(err.clone())),
        };
        JobStatus {
            job: self.id.clone(),
            kind: "rewrap",
            tenant: self.tenant.clone(),
            started_at: self.started_at,
            state,
            progress: self.progress.snapshot().into(),
            report,
            error,
        }
    }
}

/// A job as `GET /v1/admin/jobs/{job}` shows it.
#[derive(Serialize)]
pub(crate) struct JobStatus {
    job: String,
    kind: &'static str,
    tenant: String,
    started_at: i64,
    /// `running`, `done` or `failed`.
    state: &'static str,
    progress: ProgressJson,
    /// When done.
    report: Option<RewrapSummary>,
    /// When failed (listing the tenant's objects failed).
    error: Option<String>,
}

/// Live counters of a job.
#[derive(Serialize)]
struct ProgressJson {
    total: u64,
    done: u64,
    failed: u64,
    bytes_rewritten: u64,
}

impl From<ProgressSnapshot> for ProgressJson {
    fn from(p: ProgressSnapshot) -> Self {
        Self {
            total: p.total,
            done: p.done,
            failed: p.failed,
            bytes_rewritten: p.bytes_rewritten,
        }
    }
}

/// What a finished rewrap did.
#[derive(Clone, Serialize)]
struct RewrapSummary {
    total: u64,
    rewritten: u64,
    unchanged: u64,
    bytes_rewritten: u64,
    failed: Vec<PathError>,
}

impl From<RewrapReport> for RewrapSummary {
    fn from(r: RewrapReport) -> Self {
        Self {
            total: r.total,
            rewritten: r.rewritten,
            unchanged: r.unchanged,
            bytes_rewritten: r.bytes_rewritten,
            failed: r.failed.iter().map(PathError::from).collect(),
        }
    }
}

/// An object that a job could not process, and why (no secrets in store errors).
#[derive(Clone, Serialize)]
struct PathError {
    path: String,
    error: String,
}

impl From<&(object_store::path::Path, atrest::store::Error)> for PathError {
    fn from((path, err): &(object_store::path::Path, atrest::store::Error)) -> Self {
        Self {
            path: path.to_string(),
            error: err.to_string(),
        }
    }
}
