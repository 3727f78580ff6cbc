//! The service: configuration, start-up (data directory, keyring, store, database, hasher) and
//! the router. `main.rs` reads the environment and serves; `tests/attachment_service.rs`
//! includes this module to run the same router on a real socket.

mod admin;
mod attachments;
mod auth;
mod db;
mod error;
mod keys;

use std::future::Future;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use atrest::crypto::DEFAULT_PROVIDER;
use atrest::password::{Hasher, Policy};
use atrest::store::{EncryptedStore, TenantPrefix};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use object_store::local::LocalFileSystem;
use serde_json::json;
use zeroize::Zeroizing;

use error::ApiError;

/// The encrypted store the service writes attachments to.
type EncStore = EncryptedStore<LocalFileSystem>;

/// What the service needs to start; [`Config::new`] has the production defaults.
pub(crate) struct Config {
    /// Everything lives here (created on first start).
    pub(crate) data_dir: PathBuf,
    /// Take the root key from `ATREST_ROOT_KEY` instead of `data_dir/root.key`.
    pub(crate) root_key_from_env: bool,
    /// The admin token; `None`: read (or generate on first start) `data_dir/admin.token`.
    pub(crate) admin_token: Option<Zeroizing<String>>,
    /// Argon2id parameters for new password hashes.
    pub(crate) password_policy: Policy,
    /// Memory all concurrent password hashes may use together, in bytes. A login that would
    /// exceed it is answered `503` with `Retry-After`.
    pub(crate) login_memory_budget: u64,
    /// Largest attachment, in bytes.
    pub(crate) max_upload_bytes: u64,
    /// One line per request on stderr.
    pub(crate) log_requests: bool,
}

impl Config {
    /// Production defaults: OWASP's Argon2id parameters (19 MiB, t=2), a 64 MiB login memory
    /// budget (3 concurrent hashes), 1 GiB attachments, request logging on.
    pub(crate) fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            root_key_from_env: false,
            admin_token: None,
            password_policy: Policy::owasp(),
            login_memory_budget: 64 << 20,
            max_upload_bytes: 1 << 30,
            log_requests: true,
        }
    }
}

/// Argon2id at 1 MiB and one pass: a hash in about a millisecond. **Tests only.**
pub(crate) fn fast_test_policy() -> Policy {
    Policy::builder()
        .memory_kib(1024)
        .iterations(1)
        .build()
        .unwrap_or_else(|_| Policy::owasp())
}

/// The shared state of every request.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

pub(crate) struct Inner {
    config: Config,
    db: db::Db,
    keys: keys::Keys,
    store: EncStore,
    hasher: Hasher,
    admin_token_sha256: Vec<u8>,
    jobs: admin::Jobs,
}

impl Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// Opens (creating on first start) the data directory: root key, keyring, admin token,
    /// database and object directory.
    pub(crate) async fn open(config: Config) -> Result<Self, String> {
        // Blocking file work (fsync, SQLite): off the async threads.
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(|e| format!("start-up task failed: {e}"))?
    }

    fn open_blocking(config: Config) -> Result<Self, String> {
        let dir = &config.data_dir;
        private_dir(dir)?;
        eprintln!("data directory: {}", dir.display());
        let keys = keys::Keys::open(dir, config.root_key_from_env)?;
        let admin_token = match &config.admin_token {
            Some(token) => {
                eprintln!("admin token: from ATREST_ADMIN_TOKEN");
                token.clone()
            }
            None => admin_token_file(&dir.join("admin.token"))?,
        };
        if admin_token.len() < 32 {
            return Err("the admin token must have at least 32 characters".to_owned());
        }
        let db_path = dir.join("service.sqlite");
        let db = db::Db::open(&db_path).map_err(|e| format!("{}: {e}", db_path.display()))?;

        let objects = dir.join("objects");
        private_dir(&objects)?;
        let local = LocalFileSystem::new_with_prefix(&objects)
            .map_err(|e| format!("{}: {e}", objects.display()))?
            .with_automatic_cleanup(true);
        // The local filesystem has no minimum part size (S3's is 5 MiB): 1 MiB parts keep an
        // upload's memory at about 1 MiB whatever the file size.
        let store_config = atrest::store::Config::default().part_size(1 << 20);
        let store = EncryptedStore::with_config(
            local,
            keys.shared().clone(),
            TenantPrefix::new(),
            store_config,
        );

        let hasher = Hasher::builder(config.password_policy.clone())
            .memory_budget(config.login_memory_budget)
            .build()
            .map_err(|e| format!("login memory budget: {e}"))?;
        let policy = hasher.policy();
        eprintln!(
            "passwords: Argon2id m={} KiB t={} p={}, at most {} at once",
            policy.memory_kib(),
            policy.iterations(),
            policy.lanes(),
            hasher.max_concurrent()
        );
        Ok(Self(Arc::new(Inner {
            admin_token_sha256: auth::sha256(&admin_token),
            config,
            db,
            keys,
            store,
            hasher,
            jobs: admin::Jobs::default(),
        })))
    }
}

/// Creates `dir` (0700 on Unix) if it does not exist.
fn private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Reads the admin token file, or writes a fresh random token to it (0600) on first start.
/// Only the path is ever printed.
fn admin_token_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let describe = |e: std::io::Error| format!("{}: {e}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = Zeroizing::new(text.trim().to_owned());
            eprintln!("admin token: {}", path.display());
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            let mut bytes = Zeroizing::new([0u8; 32]);
            DEFAULT_PROVIDER
                .random
                .fill(bytes.as_mut())
                .map_err(|e| format!("random source: {e}"))?;
            let token = Zeroizing::new(hex::encode(bytes.as_ref()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(describe)?;
            file.write_all(token.as_bytes()).map_err(describe)?;
            file.sync_all().map_err(describe)?;
            eprintln!("admin token: generated {} (0600)", path.display());
            Ok(token)
        }
        Err(e) => Err(describe(e)),
    }
}

/// Every route of the service.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/v1/signup", post(auth::signup))
        .route("/v1/login", post(auth::login))
        .route("/v1/logout", post(auth::logout))
        .route("/v1/me", get(auth::me))
        .route("/v1/invites", post(auth::invite))
        .route(
            "/v1/attachments",
            get(attachments::list).post(attachments::upload).layer(
                // A refused upload (401, 410, 413 ...) leaves the body unread: close the
                // connection so no client reuses it mid-body.
                middleware::map_response(|mut response: Response| async move {
                    if !response.status().is_success() {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    response
                }),
            ),
        )
        .route(
            "/v1/attachments/{id}",
            get(attachments::download).delete(attachments::delete),
        )
        .route("/v1/admin/tenants", get(admin::tenants))
        .route("/v1/admin/tenants/{tenant}/rotate", post(admin::rotate))
        .route(
            "/v1/admin/tenants/{tenant}/rewrap",
            post(admin::start_rewrap),
        )
        .route("/v1/admin/tenants/{tenant}/shred", post(admin::shred))
        .route("/v1/admin/jobs/{job}", get(admin::job))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take this method",
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), log_request))
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets running requests finish.
///
/// # Errors
/// The listener failed.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `METHOD /path STATUS TIMEms` on stderr: no query string, header or body, so no token or
/// password can end up in the log.
async fn log_request(State(app): State<App>, request: Request, next: Next) -> Response {
    if !app.config.log_requests {
        return next.run(request).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    eprintln!(
        "{method} {path} {} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// One `{param}` of the route, or a JSON `400` (axum's own rejection is plain text).
pub(crate) struct PathParam(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(param)) => Ok(Self(param)),
            Err(rejection) => Err(ApiError::bad_request("invalid_path", rejection.body_text())),
        }
    }
}

/// Seconds since the Unix epoch, as SQLite stores them.
fn now_secs() -> i64 {
    i64::try_from(atrest::keyring::Timestamp::now().unix_secs()).unwrap_or(i64::MAX)
}
