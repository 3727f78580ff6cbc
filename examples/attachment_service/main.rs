//! A reference attachment service: what a product backend (an issue tracker, a wiki) does to
//! keep its users' files encrypted at rest, in a few short modules you can read in one sitting:
//!
//! | module | |
//! |---|---|
//! | `service/mod.rs` | configuration, start-up (data directory, keyring, store, database), routes |
//! | `service/auth.rs` | sign-up, login with rehash and the memory budget, sessions, invites |
//! | `service/attachments.rs` | streamed encrypted uploads, downloads with `Range` |
//! | `service/admin.rs` | key rotation, rewrap jobs with progress, crypto-shredding |
//! | `service/keys.rs` | the keyring file: load, change, save |
//! | `service/db.rs` | SQLite: the schema and every query |
//! | `service/error.rs` | JSON errors |
//!
//! ```sh
//! cargo run --release --example attachment_service            # http://127.0.0.1:8080
//! cargo run --release --example attachment_service -- --addr 127.0.0.1:0 --data-dir /tmp/svc
//! ```
//!
//! - **Users** sign up and log in with `atrest::password` (Argon2id, rehash-on-login, a memory
//!   budget that answers `503` with `Retry-After` when a login flood exceeds it); users live in
//!   SQLite; sessions are random tokens stored as SHA-256 hashes. Each user belongs to one
//!   **tenant**, created at sign-up (later members join with an invite).
//! - **Attachments** stream into `atrest::store::EncryptedStore` (a fresh data key per file,
//!   wrapped under the tenant's key; the object path `<tenant>/attachments/<id>` is the
//!   encryption context) and stream back, with HTTP `Range` support that decrypts only the
//!   segments a range touches.
//! - **Admin** endpoints rotate a tenant's key, rewrap its attachments with live progress, and
//!   crypto-shred a tenant.
//!
//! Everything lives under one data directory, created on first start with nothing to
//! configure:
//!
//! | file | what |
//! |---|---|
//! | `root.key` | the root key (0600) that seals the keyring; not used if `ATREST_ROOT_KEY` is set |
//! | `keyring.atrest` | one key per tenant, sealed under the root key, replaced atomically |
//! | `admin.token` | the admin bearer token (0600); not used if `ATREST_ADMIN_TOKEN` is set |
//! | `service.sqlite` | tenants, users, sessions, invites, attachment metadata |
//! | `objects/` | the encrypted attachments (`<tenant>/attachments/<id>`) |
//!
//! Environment (all optional):
//!
//! | variable | default | |
//! |---|---|---|
//! | `ATREST_ADDR` | `127.0.0.1:8080` | listen address (`--addr`; port 0 picks a free one) |
//! | `ATREST_DATA_DIR` | `./data` | data directory (`--data-dir`) |
//! | `ATREST_ROOT_KEY` | | the root key (64 hex digits or base64 of 32 bytes), instead of `root.key` |
//! | `ATREST_ADMIN_TOKEN` | | the admin token, instead of `admin.token` |
//! | `ATREST_LOGIN_MEMORY_MIB` | `64` | memory all concurrent password hashes may use together |
//! | `ATREST_MAX_UPLOAD_MIB` | `1024` | largest attachment |
//! | `ATREST_TEST_FAST_KDF` | | `1`: tiny Argon2id parameters. **Tests only.** |
//!
//! The first line on stdout is `listening on http://ADDR`; logs (one line per request: method,
//! path, status, time; never a header, a body, a password or a token) go to stderr. Ctrl-C (or
//! SIGTERM) stops accepting connections and gives running requests 10 seconds to finish.
//!
//! HTTP API (JSON in and out; errors are `{"error": "<code>", "message": "<text>"}`):
//!
//! | | | |
//! |---|---|---|
//! | `POST` | `/v1/signup` | `{"email","password","tenant"}` (new tenant) or `{"email","password","invite"}` → session |
//! | `POST` | `/v1/login` | `{"email","password"}` → `{"token", "expires_at", ...}` |
//! | `POST` | `/v1/logout` | ends the session |
//! | `GET` | `/v1/me` | the caller: user id, email, tenant |
//! | `POST` | `/v1/invites` | an invite to the caller's tenant |
//! | `POST` | `/v1/attachments?name=NAME` | the request body is the file → `{"id", ...}` |
//! | `GET` | `/v1/attachments` | the tenant's attachments |
//! | `GET` | `/v1/attachments/{id}` | the file; `Range: bytes=...` → `206` |
//! | `DELETE` | `/v1/attachments/{id}` | |
//! | `GET` | `/v1/admin/tenants` | tenants and their key versions (admin token) |
//! | `POST` | `/v1/admin/tenants/{tenant}/rotate` | new primary key version |
//! | `POST` | `/v1/admin/tenants/{tenant}/rewrap` | starts a rewrap job → `202 {"job"}`; `?wait=true`: `200` when done |
//! | `GET` | `/v1/admin/jobs/{job}` | the job's progress and, when done, its report |
//! | `POST` | `/v1/admin/tenants/{tenant}/shred` | destroys the tenant's key: its files are gone |
//! | `GET` | `/healthz` | `{"status":"ok"}` |
//!
//! Users authenticate with `Authorization: Bearer <session token>`, admins with
//! `Authorization: Bearer <admin token>`.

mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use service::{App, Config};

/// How long running requests may take to finish after Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: attachment_service [--addr HOST:PORT] [--data-dir DIR]
  (see the top of examples/attachment_service/main.rs for the environment variables)";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("attachment_service: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let (addr, config) = configure()?;
    let app = App::open(config).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // The first line on stdout, for scripts and tests: `listening on http://127.0.0.1:PORT`.
    println!("listening on http://{bound}");

    // On Ctrl-C or SIGTERM: stop accepting, let running requests finish, but not forever.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    };
    let deadline = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = service::serve(listener, app, shutdown) => {
            served.map_err(|e| format!("server failed: {e}"))?;
            eprintln!("shut down");
        }
        () = deadline => {
            // A rewrap job cut short here is safe: rerun it (every object is old or new).
            eprintln!("requests still running after {} s: exiting", SHUTDOWN_GRACE.as_secs());
        }
    }
    Ok(())
}

/// Command line and environment into a listen address and a [`Config`].
fn configure() -> Result<(SocketAddr, Config), String> {
    let mut addr = std::env::var("ATREST_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let mut data_dir =
        std::env::var_os("ATREST_DATA_DIR").map_or_else(|| "data".into(), PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or(USAGE)?,
            "--data-dir" => data_dir = args.next().ok_or(USAGE)?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument '{arg}'\n{USAGE}")),
        }
    }
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' is not a HOST:PORT socket address"))?;

    let mut config = Config::new(data_dir);
    config.root_key_from_env = std::env::var_os(atrest::keyring::EnvRoot::DEFAULT_VAR).is_some();
    config.admin_token = std::env::var("ATREST_ADMIN_TOKEN").ok().map(Into::into);
    if let Some(mib) = mib_var("ATREST_LOGIN_MEMORY_MIB")? {
        config.login_memory_budget = mib << 20;
    }
    if let Some(mib) = mib_var("ATREST_MAX_UPLOAD_MIB")? {
        config.max_upload_bytes = mib << 20;
    }
    if std::env::var_os("ATREST_TEST_FAST_KDF").is_some_and(|v| v == "1") {
        eprintln!("ATREST_TEST_FAST_KDF=1: tiny password hashing parameters, for tests only");
        config.password_policy = service::fast_test_policy();
    }
    Ok((addr, config))
}

fn mib_var(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(mib) if (1..=1 << 20).contains(&mib) => Ok(Some(mib)),
            _ => Err(format!(
                "{name} must be a number of MiB between 1 and 1048576"
            )),
        },
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("shutting down: finishing running requests");
}
