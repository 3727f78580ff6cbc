//! SQLite: tenants, users, sessions, invites and attachment metadata. One connection behind a
//! mutex, used from tokio's blocking pool; every query is a small function below.
//!
//! Secrets never enter the database in clear: passwords as Argon2id PHC strings, session and
//! invite tokens as their SHA-256. Attachment bytes live in the encrypted store, not here.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::error::{ApiError, ApiResult};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    shredded_at INTEGER
);
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    tenant        TEXT NOT NULL REFERENCES tenants(name),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    expires_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS invites (
    token_sha256 BLOB PRIMARY KEY,
    tenant       TEXT NOT NULL REFERENCES tenants(name),
    expires_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL REFERENCES tenants(name),
    owner        INTEGER NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_by_tenant ON attachments(tenant, created_at);
";

/// The database handle: cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Db(Arc<Mutex<Connection>>);

impl Db {
    /// Opens (creating if needed) the database file and its tables.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` with the connection on tokio's blocking pool (SQLite calls block).
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> ApiResult<R> + Send + 'static,
    ) -> ApiResult<R> {
        let conn = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            f(&mut conn.lock().unwrap_or_else(PoisonError::into_inner))
        })
        .await
        .map_err(|e| ApiError::internal("database task", &e))?
    }
}

/// A user as the login path needs it.
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) tenant: String,
    pub(crate) password_hash: String,
}

/// The user behind a valid session.
#[derive(Clone, Debug)]
pub(crate) struct SessionRow {
    pub(crate) user_id: i64,
    pub(crate) email: String,
    pub(crate) tenant: String,
    pub(crate) tenant_shredded: bool,
}

/// How a new user joins a tenant.
pub(crate) enum Join {
    /// Creates the tenant (its key must exist already).
    NewTenant(String),
    /// Joins the tenant of an invite (by the invite token's SHA-256), consuming it.
    Invite(Vec<u8>),
}

/// A new user and their first session.
pub(crate) struct NewUser {
    pub(crate) email: String,
    pub(crate) password_hash: String,
    pub(crate) join: Join,
    pub(crate) session_sha256: Vec<u8>,
    pub(crate) now: i64,
    pub(crate) session_expires_at: i64,
}

/// Attachment metadata, as listed and served.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AttachmentRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) size: u64,
    pub(crate) created_at: i64,
}

/// A tenant as the admin listing shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TenantRow {
    pub(crate) tenant: String,
    pub(crate) created_at: i64,
    pub(crate) shredded_at: Option<i64>,
    pub(crate) users: u64,
    pub(crate) attachments: u64,
    pub(crate) bytes: u64,
}

fn is_constraint(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

pub(crate) fn user_by_email(c: &Connection, email: &str) -> ApiResult<Option<UserRow>> {
    let row = c
        .query_row(
            "SELECT id, tenant, password_hash FROM users WHERE email = ?1",
            [email],
            |r| {
                Ok(UserRow {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    password_hash: r.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

/// `None`: no such tenant; `Some(shredded_at)` otherwise.
pub(crate) fn tenant(c: &Connection, name: &str) -> ApiResult<Option<Option<i64>>> {
    let row = c
        .query_row(
            "SELECT shredded_at FROM tenants WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(row)
}

pub(crate) fn email_taken(c: &Connection, email: &str) -> ApiResult<bool> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM users WHERE email = ?1",
        [email],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn email_conflict() -> ApiError {
    ApiError::conflict("email_taken", "this email is already registered")
}

/// Creates a user (and the tenant, or consumes the invite) and its first session, all or
/// nothing. Returns the user id and tenant.
pub(crate) fn create_user(c: &mut Connection, new: &NewUser) -> ApiResult<(i64, String)> {
    let tx = c.transaction()?;
    let tenant = match &new.join {
        Join::NewTenant(tenant) => {
            let inserted = tx.execute(
                "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
                params![tenant, new.now],
            );
            match inserted {
                Err(e) if is_constraint(&e) => {
                    return Err(ApiError::conflict(
                        "tenant_taken",
                        "this tenant exists; ask one of its members for an invite",
                    ));
                }
                other => other?,
            };
            tenant.clone()
        }
        Join::Invite(invite) => consume_invite(&tx, invite, new.now)?,
    };
    let inserted = tx.execute(
        "INSERT INTO users (email, tenant, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![new.email, tenant, new.password_hash, new.now],
    );
    match inserted {
        Err(e) if is_constraint(&e) => return Err(email_conflict()),
        other => other?,
    };
    let user_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO sessions (token_sha256, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![new.session_sha256, user_id, new.session_expires_at],
    )?;
    tx.commit()?;
    Ok((user_id, tenant))
}

fn consume_invite(tx: &Transaction<'_>, invite: &[u8], now: i64) -> ApiResult<String> {
    let found: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT i.tenant, t.shredded_at FROM invites i JOIN tenants t ON t.name = i.tenant
             WHERE i.token_sha256 = ?1 AND i.expires_at > ?2",
            params![invite, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((tenant, shredded_at)) = found else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_invite",
            "unknown, used or expired invite",
        ));
    };
    if shredded_at.is_some() {
        return Err(ApiError::shredded());
    }
    tx.execute("DELETE FROM invites WHERE token_sha256 = ?1", [invite])?;
    Ok(tenant)
}

/// Replaces a password hash, unless it changed since it was read.
pub(crate) fn update_password_hash(c: &Connection, id: i64, old: &str, new: &str) -> ApiResult<()> {
    c.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2 AND password_hash = ?3",
        params![new, id, old],
    )?;
    Ok(())
}

/// Stores a session (by its token's SHA-256) and drops expired ones.
pub(crate) fn insert_session(
    c: &Connection,
    token_sha256: &[u8],
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> ApiResult<()> {
    c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    c.execute(
        "INSERT INTO sessions (token_sha256, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_sha256, user_id, expires_at],
    )?;
    Ok(())
}

/// The user of an unexpired session. Looked up by the token's hash: the index lookup
/// cannot leak anything useful about a 256-bit random token through timing.
pub(crate) fn session(
    c: &Connection,
    token_sha256: &[u8],
    now: i64,
) -> ApiResult<Option<SessionRow>> {
    let row = c
        .query_row(
            "SELECT u.id, u.email, u.tenant, t.shredded_at IS NOT NULL
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.name = u.tenant
             WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
            params![token_sha256, now],
            |r| {
                Ok(SessionRow {
                    user_id: r.get(0)?,
                    email: r.get(1)?,
                    tenant: r.get(2)?,
                    tenant_shredded: r.get(3)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

pub(crate) fn delete_session(c: &Connection, token_sha256: &[u8]) -> ApiResult<()> {
    c.execute(
        "DELETE FROM sessions WHERE token_sha256 = ?1",
        [token_sha256],
    )?;
    Ok(())
}

pub(crate) fn insert_invite(
    c: &Connection,
    token_sha256: &[u8],
    tenant: &str,
    now: i64,
    expires_at: i64,
) -> ApiResult<()> {
    c.execute("DELETE FROM invites WHERE expires_at <= ?1", [now])?;
    c.execute(
        "INSERT INTO invites (token_sha256, tenant, expires_at) VALUES (?1, ?2, ?3)",
        params![token_sha256, tenant, expires_at],
    )?;
    Ok(())
}

pub(crate) fn insert_attachment(
    c: &Connection,
    tenant: &str,
    owner: i64,
    row: &AttachmentRow,
) -> ApiResult<()> {
    c.execute(
        "INSERT INTO attachments (id, tenant, owner, name, content_type, size, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.id,
            tenant,
            owner,
            row.name,
            row.content_type,
            row.size,
            row.created_at
        ],
    )?;
    Ok(())
}

const ATTACHMENT_COLUMNS: &str = "id, name, content_type, size, created_at";

fn attachment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok(AttachmentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        content_type: r.get(2)?,
        size: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// An attachment of `tenant`: an id of another tenant is simply not found.
pub(crate) fn attachment(
    c: &Connection,
    tenant: &str,
    id: &str,
) -> ApiResult<Option<AttachmentRow>> {
    let row = c
        .query_row(
            &format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE tenant = ?1 AND id = ?2"),
            [tenant, id],
            attachment_row,
        )
        .optional()?;
    Ok(row)
}

pub(crate) fn attachments(c: &Connection, tenant: &str) -> ApiResult<Vec<AttachmentRow>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE tenant = ?1
         ORDER BY created_at DESC, id LIMIT 1000"
    ))?;
    let rows = stmt.query_map([tenant], attachment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn delete_attachment(c: &Connection, tenant: &str, id: &str) -> ApiResult<()> {
    c.execute(
        "DELETE FROM attachments WHERE tenant = ?1 AND id = ?2",
        [tenant, id],
    )?;
    Ok(())
}

pub(crate) fn tenants(c: &Connection) -> ApiResult<Vec<TenantRow>> {
    let mut stmt = c.prepare(
        "SELECT t.name, t.created_at, t.shredded_at,
                (SELECT count(*) FROM users u WHERE u.tenant = t.name),
                (SELECT count(*) FROM attachments a WHERE a.tenant = t.name),
                (SELECT coalesce(sum(size), 0) FROM attachments a WHERE a.tenant = t.name)
         FROM tenants t ORDER BY t.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TenantRow {
            tenant: r.get(0)?,
            created_at: r.get(1)?,
            shredded_at: r.get(2)?,
            users: r.get(3)?,
            attachments: r.get(4)?,
            bytes: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks a tenant shredded and revokes its invites. Its users may still log in, and learn
/// that their files are gone (410).
pub(crate) fn mark_shredded(c: &Connection, tenant: &str, now: i64) -> ApiResult<()> {
    c.execute(
        "UPDATE tenants SET shredded_at = coalesce(shredded_at, ?2) WHERE name = ?1",
        params![tenant, now],
    )?;
    c.execute("DELETE FROM invites WHERE tenant = ?1", [tenant])?;
    Ok(())
}
