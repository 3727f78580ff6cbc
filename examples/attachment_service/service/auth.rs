//! Sign-up, login, sessions and invites: `atrest::password` on a real login path.
//!
//! - Passwords are hashed with Argon2id on tokio's blocking pool with the `try_` calls, so a
//!   login flood that would exceed the hasher's memory budget is answered `503` +
//!   `Retry-After` at once instead of queueing without bound.
//! - A login whose stored hash is outdated (weaker parameters, a legacy bcrypt/scrypt/PBKDF2
//!   hash) stores a fresh hash while the plaintext is at hand.
//! - An unknown email costs what a wrong password costs (`dummy_verify`).
//! - Session tokens are 256-bit random values; the database holds their SHA-256 only.

use atrest::crypto::DEFAULT_PROVIDER;
use atrest::password::{Hasher, Verification};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::db::{self, Join, NewUser, SessionRow};
use super::error::{ApiError, ApiResult};
use super::{App, now_secs};

/// How long a session lasts.
const SESSION_SECS: i64 = 12 * 3600;
/// How long an invite may be used.
const INVITE_SECS: i64 = 7 * 24 * 3600;
/// Shortest password accepted at sign-up (NIST SP 800-63B's minimum).
const MIN_PASSWORD_CHARS: usize = 8;

/// `POST /v1/signup` body. The password is wiped from memory when the request is done.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUp {
    email: String,
    password: String,
    /// Creates this tenant, with its own key.
    tenant: Option<String>,
    /// Or joins the tenant of this invite.
    invite: Option<String>,
}

/// `POST /v1/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: String,
}

impl Drop for SignUp {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

/// A new session.
#[derive(Serialize)]
pub(crate) struct SessionInfo {
    token: String,
    token_type: &'static str,
    expires_at: i64,
    user_id: i64,
    email: String,
    tenant: String,
}

/// `POST /v1/signup`: creates the user (and the tenant with its key, or joins by invite) and
/// logs them in.
pub(crate) async fn signup(
    State(app): State<App>,
    body: Result<Json<SignUp>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SessionInfo>)> {
    let Json(mut request) = body?;
    let email = normalize_email(&request.email)
        .ok_or_else(|| ApiError::bad_request("invalid_email", "not a valid email address"))?;
    let password = Zeroizing::new(std::mem::take(&mut request.password));
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("passwords have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    let join = match (request.tenant.take(), request.invite.take()) {
        (Some(tenant), None) => Join::NewTenant(valid_tenant(&tenant)?),
        (None, Some(invite)) => Join::Invite(sha256(&invite)),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "give either \"tenant\" (a new tenant) or \"invite\"",
            ));
        }
    };

    let password_hash =
        with_hasher(&app, move |hasher| hasher.try_hash(password.as_bytes())).await?;
    let token = random_token()?;
    let now = now_secs();
    let new_tenant = match &join {
        Join::NewTenant(tenant) => Some(tenant.clone()),
        Join::Invite(_) => None,
    };
    let new = NewUser {
        email: email.clone(),
        password_hash,
        join,
        session_sha256: sha256(&token),
        now,
        session_expires_at: now + SESSION_SECS,
    };
    let (user_id, tenant) = match new_tenant {
        None => app.db.call(move |c| db::create_user(c, &new)).await?,
        Some(tenant) => {
            // The tenant's key first, then its rows. Sign-ups that create tenants take turns
            // (the keyring lock), so two racing for one name get a 201 and a 409.
            let lock = app.keys.lock().await;
            let (name, address) = (tenant.clone(), email.clone());
            let (tenant_taken, email_taken) = app
                .db
                .call(move |c| {
                    Ok((
                        db::tenant(c, &name)?.is_some(),
                        db::email_taken(c, &address)?,
                    ))
                })
                .await?;
            if tenant_taken {
                return Err(ApiError::conflict(
                    "tenant_taken",
                    "this tenant exists; ask one of its members for an invite",
                ));
            }
            if email_taken {
                return Err(ApiError::conflict(
                    "email_taken",
                    "this email is already registered",
                ));
            }
            app.keys.ensure_tenant_key(&lock, &tenant).await?;
            app.db.call(move |c| db::create_user(c, &new)).await?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(SessionInfo {
            token,
            token_type: "Bearer",
            expires_at: now + SESSION_SECS,
            user_id,
            email,
            tenant,
        }),
    ))
}

/// `POST /v1/login`.
pub(crate) async fn login(
    State(app): State<App>,
    body: Result<Json<Login>, JsonRejection>,
) -> ApiResult<Json<SessionInfo>> {
    let Json(mut request) = body?;
    let password = Zeroizing::new(std::mem::take(&mut request.password));
    let email = normalize_email(&request.email);
    let user = match email.clone() {
        Some(email) => app.db.call(move |c| db::user_by_email(c, &email)).await?,
        None => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let (matched, new_hash) = with_hasher(&app, move |hasher| {
        let Some(stored) = stored else {
            // Unknown user: do the same work as for a wrong password, then refuse.
            let _always_mismatch = hasher.try_dummy_verify(password.as_bytes())?;
            return Ok((false, None));
        };
        Ok(match hasher.try_verify(&stored, password.as_bytes())? {
            Verification::Match => (true, None),
            // Outdated parameters or a legacy algorithm: upgrade now. Best effort: if the
            // budget is full this time, the next login upgrades it.
            Verification::MatchNeedsRehash(_) => (true, hasher.try_hash(password.as_bytes()).ok()),
            Verification::Mismatch => (false, None),
        })
    })
    .await?;
    let (Some(user), Some(email), true) = (user, email, matched) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ));
    };

    let token = random_token()?;
    let token_sha256 = sha256(&token);
    let now = now_secs();
    let (id, old_hash) = (user.id, user.password_hash);
    app.db
        .call(move |c| {
            if let Some(new_hash) = new_hash {
                db::update_password_hash(c, id, &old_hash, &new_hash)?;
            }
            db::insert_session(c, &token_sha256, id, now, now + SESSION_SECS)
        })
        .await?;
    Ok(Json(SessionInfo {
        token,
        token_type: "Bearer",
        expires_at: now + SESSION_SECS,
        user_id: user.id,
        email,
        tenant: user.tenant,
    }))
}

/// `POST /v1/logout`: ends the presented session.
pub(crate) async fn logout(State(app): State<App>, session: Session) -> ApiResult<StatusCode> {
    let token_sha256 = session.token_sha256;
    app.db
        .call(move |c| db::delete_session(c, &token_sha256))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller, as `GET /v1/me` shows them.
#[derive(Serialize)]
pub(crate) struct Me {
    user_id: i64,
    email: String,
    tenant: String,
    tenant_shredded: bool,
}

/// `GET /v1/me`.
pub(crate) async fn me(session: Session) -> Json<Me> {
    let user = session.user;
    Json(Me {
        user_id: user.user_id,
        email: user.email,
        tenant: user.tenant,
        tenant_shredded: user.tenant_shredded,
    })
}

/// A new invite.
#[derive(Serialize)]
pub(crate) struct Invite {
    invite: String,
    tenant: String,
    expires_at: i64,
}

/// `POST /v1/invites`: a single-use invite to the caller's tenant, for `POST /v1/signup`.
pub(crate) async fn invite(
    State(app): State<App>,
    session: Session,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    if session.user.tenant_shredded {
        return Err(ApiError::shredded());
    }
    let invite = random_token()?;
    let (token_sha256, tenant, now) = (sha256(&invite), session.user.tenant.clone(), now_secs());
    app.db
        .call(move |c| db::insert_invite(c, &token_sha256, &tenant, now, now + INVITE_SECS))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            invite,
            tenant: session.user.tenant,
            expires_at: now + INVITE_SECS,
        }),
    ))
}

/// The user behind `Authorization: Bearer <session token>`; `401` otherwise. Extracted
/// before the body is read, so unauthenticated uploads cost nothing.
pub(crate) struct Session {
    pub(crate) user: SessionRow,
    token_sha256: Vec<u8>,
}

impl FromRequestParts<App> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<Self> {
        let token_sha256 = sha256(bearer(parts).ok_or_else(ApiError::unauthorized)?);
        let (lookup, now) = (token_sha256.clone(), now_secs());
        let user = app
            .db
            .call(move |c| db::session(c, &lookup, now))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self { user, token_sha256 })
    }
}

/// An operator presenting `Authorization: Bearer <admin token>`; `401` otherwise.
pub(crate) struct Admin;

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> ApiResult<Self> {
        let presented = sha256(bearer(parts).ok_or_else(ApiError::unauthorized)?);
        // Equal-length digests compared in constant time: no timing hint about the token.
        if bool::from(presented.ct_eq(&app.admin_token_sha256)) {
            Ok(Self)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// Runs a hashing call on tokio's blocking pool (Argon2 takes milliseconds of CPU).
async fn with_hasher<R: Send + 'static>(
    app: &App,
    work: impl FnOnce(&Hasher) -> Result<R, atrest::password::Error> + Send + 'static,
) -> ApiResult<R> {
    let hasher = app.hasher.clone();
    tokio::task::spawn_blocking(move || work(&hasher))
        .await
        .map_err(|e| ApiError::internal("password task", &e))?
        .map_err(password_error)
}

fn password_error(err: atrest::password::Error) -> ApiError {
    use atrest::password::Error;
    match err {
        Error::Busy => ApiError::busy(),
        Error::PasswordTooLong { max } => ApiError::bad_request(
            "password_too_long",
            format!("passwords have at most {max} bytes"),
        ),
        // A corrupted or hostile stored hash: an operational alarm, not a failed login.
        err if err.is_stored_data() => ApiError::internal("stored password hash unusable", &err),
        err => ApiError::internal("password hashing", &err),
    }
}

/// A 256-bit random token, hex-encoded.
pub(crate) fn random_token() -> ApiResult<String> {
    random_hex::<32>()
}

/// `N` random bytes from the OS, hex-encoded.
pub(crate) fn random_hex<const N: usize>() -> ApiResult<String> {
    let mut bytes = [0u8; N];
    DEFAULT_PROVIDER
        .random
        .fill(&mut bytes)
        .map_err(|e| ApiError::internal("random source", &e))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn sha256(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// Lower-cased, trimmed; `None` unless it looks like `local@domain`.
fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    plausible.then_some(email)
}

/// Tenant names are object path segments and key ids: `[a-z0-9][a-z0-9-]{0,62}`.
pub(crate) fn valid_tenant(name: &str) -> ApiResult<String> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_tenant",
            "tenant names are 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}
