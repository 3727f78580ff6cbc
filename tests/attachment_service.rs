//! The reference attachment service (`examples/attachment_service`) driven over real HTTP.
//!
//! The test includes the example's `service` module, so it runs the very router, start-up
//! code and data-directory layout that `cargo run --example attachment_service` runs, on a
//! real TCP listener on `127.0.0.1:0`, with reqwest as the client. (Spawning the example's
//! binary instead would depend on cargo having built it, which `cargo test --test
//! attachment_service` does not do.) Argon2id runs with the tiny test parameters
//! (`fast_test_policy`, what `ATREST_TEST_FAST_KDF=1` selects) and a login memory budget of
//! exactly one hash, so the 503 path can be triggered on purpose.

#![allow(clippy::panic, reason = "tests fail by panicking")]
#![allow(clippy::indexing_slicing, reason = "tests")]

#[path = "../examples/attachment_service/service/mod.rs"]
mod service;

use std::path::Path;
use std::time::{Duration, Instant};

use atrest::envelope::{Header, KeyUnavailable};
use atrest::keyring::{KeyFileRoot, Keyring};
use atrest::password::{Hasher, Policy};
use atrest::store::{EncryptedStore, SharedKeyring, TenantPrefix};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use reqwest::{Client, Method, Response, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const MIB: usize = 1 << 20;
/// A bcrypt (cost 4) hash of "hunter2", as a legacy system left it.
const LEGACY_BCRYPT: &str = "$2b$04$T1Hgv.5U/6arZlezWL3gD.6KThTDCMX5XV86wTp3qTMYeS0339yzC";

/// A running service.
struct Running {
    base: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(data_dir: &Path) -> Self {
        let mut config = service::Config::new(data_dir);
        config.password_policy = service::fast_test_policy();
        // Exactly one hash at a time: a second concurrent login is refused with 503.
        config.login_memory_budget = config.password_policy.memory_bytes();
        config.log_requests = false;
        let app = service::App::open(config).await.expect("service starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(service::serve(listener, app, async {
            let _ = stop.await;
        }));
        Self {
            base: format!("http://{addr}"),
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown within 10 s")
            .expect("server task")
            .expect("server ran without error");
    }
}

/// A thin client: JSON in, `(status, JSON)` out.
struct Api {
    client: Client,
    base: String,
}

impl Api {
    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        json_of(request.send().await.expect("request")).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body)).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    async fn signup(&self, email: &str, password: &str, tenant: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/signup",
                None,
                json!({ "email": email, "password": password, "tenant": tenant }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["tenant"], tenant);
        text(&body["token"])
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/v1/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Uploads `data` as a chunked, streamed request body (no Content-Length).
    async fn upload(&self, token: &str, name: &str, data: &Bytes) -> (StatusCode, Value) {
        let chunks: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(64 * 1024 + 17)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let response = self
            .request(
                Method::POST,
                &format!("/v1/attachments?name={name}"),
                Some(token),
            )
            .header(header::CONTENT_TYPE, "application/pdf")
            .body(body)
            .send()
            .await
            .expect("upload");
        json_of(response).await
    }

    async fn download(&self, token: &str, id: &str, range: Option<&str>) -> Response {
        let mut request = self.request(Method::GET, &format!("/v1/attachments/{id}"), Some(token));
        if let Some(range) = range {
            request = request.header(header::RANGE, range);
        }
        request.send().await.expect("download")
    }

    /// A ranged download that must answer 206 with exactly `expected` at `start`.
    async fn expect_range(
        &self,
        token: &str,
        id: &str,
        range: &str,
        data: &[u8],
        start: usize,
        end: usize,
    ) {
        let response = self.download(token, id, Some(range)).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header_of(&response, header::CONTENT_RANGE),
            format!("bytes {start}-{}/{}", end - 1, data.len()),
            "{range}"
        );
        assert_eq!(
            header_of(&response, header::CONTENT_LENGTH),
            (end - start).to_string()
        );
        let body = response.bytes().await.expect("range body");
        assert!(body[..] == data[start..end], "{range}: wrong bytes");
    }

    async fn expect_whole(&self, token: &str, id: &str, data: &[u8]) {
        let response = self.download(token, id, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::ACCEPT_RANGES), "bytes");
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "application/pdf"
        );
        let body = response.bytes().await.expect("body");
        assert_eq!(body.len(), data.len());
        assert!(
            body[..] == data[..],
            "downloaded bytes differ from the upload"
        );
    }
}

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

fn header_of(response: &Response, name: header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_owned()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_owned()
}

/// Deterministic, incompressible-looking test data.
fn data(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect()
}

fn sqlite(data_dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data_dir.join("service.sqlite")).expect("open sqlite");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

fn set_password_hash(data_dir: &Path, email: &str, hash: &str) {
    let changed = sqlite(data_dir)
        .execute(
            "UPDATE users SET password_hash = ?1 WHERE email = ?2",
            [hash, email],
        )
        .expect("update");
    assert_eq!(changed, 1);
}

fn password_hash(data_dir: &Path, email: &str) -> String {
    sqlite(data_dir)
        .query_row(
            "SELECT password_hash FROM users WHERE email = ?1",
            [email],
            |r| r.get(0),
        )
        .expect("select")
}

fn object_file(data_dir: &Path, tenant: &str, id: &str) -> std::path::PathBuf {
    data_dir
        .join("objects")
        .join(tenant)
        .join("attachments")
        .join(id)
}

/// (wrapping key version, body bytes) of a stored object.
fn stored_object(data_dir: &Path, tenant: &str, id: &str) -> (u32, Vec<u8>) {
    let bytes = std::fs::read(object_file(data_dir, tenant, id)).expect("object file");
    let (header, body) = Header::split_attached(&bytes).expect("attached envelope");
    (header.wrapped_keys()[0].version, body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_service_end_to_end() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let running = Running::start(&data_dir).await;
    let api = Api {
        client: Client::new(),
        base: running.base.clone(),
    };

    // First start: the secrets are private files.
    #[cfg(unix)]
    for file in ["root.key", "admin.token"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join(file))
            .expect(file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let admin = std::fs::read_to_string(data_dir.join("admin.token")).expect("admin token");
    let admin = admin.trim();
    assert_eq!(
        api.get("/healthz", None).await,
        (StatusCode::OK, json!({ "status": "ok" }))
    );

    // --- Sign-up, tenants, invites, login -------------------------------------------------
    let alice = api
        .signup("alice@acme.test", "correct horse battery", "acme")
        .await;
    let bob = api
        .signup("Bob@Globex.test", "bob's long password", "globex")
        .await;
    let (status, body) = api
        .post(
            "/v1/signup",
            None,
            json!({ "email": "eve@evil.test", "password": "12345678x", "tenant": "acme" }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("tenant_taken"))
    );
    let (status, body) = api
        .post(
            "/v1/signup",
            None,
            json!({ "email": "alice@acme.test", "password": "12345678x", "tenant": "other" }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    let (status, body) = api
        .post(
            "/v1/signup",
            None,
            json!({ "email": "x@y.test", "password": "short", "tenant": "t" }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("weak_password"))
    );
    let (status, body) = api
        .post(
            "/v1/signup",
            None,
            json!({ "email": "x@y.test", "password": "12345678x", "tenant": "Not/A/Tenant" }),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_tenant"))
    );

    let (status, invite) = api.post("/v1/invites", Some(&alice), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let invite = text(&invite["invite"]);
    let carol_signup =
        json!({ "email": "carol@acme.test", "password": "carol's password", "invite": invite });
    let (status, carol) = api.post("/v1/signup", None, carol_signup.clone()).await;
    assert_eq!(
        (status, carol["tenant"].as_str()),
        (StatusCode::CREATED, Some("acme"))
    );
    let carol = text(&carol["token"]);
    let (status, body) = api.post("/v1/signup", None, carol_signup).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_invite")),
        "invites are single-use"
    );

    let (status, body) = api.login("ALICE@acme.test ", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["tenant"].as_str(), body["token_type"].as_str()),
        (Some("acme"), Some("Bearer"))
    );
    let alice = text(&body["token"]);
    for (email, password) in [
        ("alice@acme.test", "wrong password"),
        ("nobody@acme.test", "correct horse battery"),
    ] {
        let (status, body) = api.login(email, password).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    let (status, me) = api.get("/v1/me", Some(&bob)).await;
    assert_eq!(
        (status, me["email"].as_str(), me["tenant"].as_str()),
        (StatusCode::OK, Some("bob@globex.test"), Some("globex"))
    );

    // --- Bad tokens, bad requests: 401 and JSON errors ----------------------------------
    for token in [None, Some("not-a-token"), Some(admin)] {
        let response = api
            .request(Method::GET, "/v1/attachments", token)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header_of(&response, header::WWW_AUTHENTICATE), "Bearer");
        assert_eq!(json_of(response).await.1["error"], "unauthorized");
    }
    let response = api
        .request(Method::POST, "/v1/login", None)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    assert_eq!(api.get("/nowhere", None).await.1["error"], "not_found");
    assert_eq!(
        api.send(Method::PUT, "/v1/login", None, None).await,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "error": "method_not_allowed", "message": "this route does not take this method" })
        )
    );

    // --- Upload 10 MiB, streamed; ranged and whole downloads -----------------------------
    let report = data(10 * MIB, 1);
    let (status, uploaded) = api.upload(&alice, "report.pdf", &report).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(uploaded["size"], 10 * MIB);
    let id = text(&uploaded["id"]);
    let len = report.len();
    api.expect_range(&alice, &id, "bytes=1000-1999", &report, 1000, 2000)
        .await;
    // Across segment (64 KiB) and download-window (4 MiB) boundaries.
    let (a, b) = (4 * MIB - 65_536 - 3, 8 * MIB + 70_000);
    api.expect_range(&alice, &id, &format!("bytes={a}-{}", b - 1), &report, a, b)
        .await;
    api.expect_range(&alice, &id, "bytes=-500", &report, len - 500, len)
        .await;
    api.expect_range(
        &alice,
        &id,
        &format!("bytes={}-", len - 10),
        &report,
        len - 10,
        len,
    )
    .await;
    api.expect_range(
        &alice,
        &id,
        &format!("bytes=0-{}", len + 99),
        &report,
        0,
        len,
    )
    .await;
    let response = api
        .download(&alice, &id, Some(&format!("bytes={len}-")))
        .await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header_of(&response, header::CONTENT_RANGE),
        format!("bytes */{len}")
    );
    api.expect_whole(&alice, &id, &report).await;
    api.expect_whole(&carol, &id, &report).await; // same tenant

    // --- Tenant isolation ------------------------------------------------------------------
    let (status, body) = api.get(&format!("/v1/attachments/{id}"), Some(&bob)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        api.download(&bob, &id, Some("bytes=0-9")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/attachments", Some(&bob)).await,
        (StatusCode::OK, json!([]))
    );
    let (_, listed) = api.get("/v1/attachments", Some(&carol)).await;
    assert_eq!(listed[0]["id"], id.as_str());
    // Even if the access check were wrong, the crypto refuses: acme's ciphertext placed at a
    // globex path (and registered to globex in the database) does not decrypt there.
    let forged = "0123456789abcdef0123456789abcdef";
    let target = object_file(&data_dir, "globex", forged);
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::copy(object_file(&data_dir, "acme", &id), &target).expect("copy ciphertext");
    let bob_id: i64 = sqlite(&data_dir)
        .query_row(
            "SELECT id FROM users WHERE email = 'bob@globex.test'",
            [],
            |r| r.get(0),
        )
        .expect("bob");
    sqlite(&data_dir)
        .execute(
            "INSERT INTO attachments VALUES (?1, 'globex', ?2, 'stolen.pdf', 'application/pdf', ?3, 0)",
            rusqlite::params![forged, bob_id, 10 * MIB],
        )
        .expect("insert forged row");
    for range in [None, Some("bytes=0-99")] {
        let response = api.download(&bob, forged, range).await;
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{range:?}"
        );
        assert_eq!(json_of(response).await.1["error"], "internal");
    }

    // --- Admin: rotation, rewrap with progress ---------------------------------------------
    for token in [None, Some(alice.as_str()), Some("wrong")] {
        let (status, _) = api
            .post("/v1/admin/tenants/acme/rotate", token, json!({}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let small = data(100_000, 2);
    let (status, body) = api.upload(&carol, "notes.pdf", &small).await;
    assert_eq!(status, StatusCode::CREATED);
    let small_id = text(&body["id"]);
    let (version, body_before) = stored_object(&data_dir, "acme", &id);
    assert_eq!(version, 1);

    let (status, rotated) = api
        .post("/v1/admin/tenants/acme/rotate", Some(admin), json!({}))
        .await;
    assert_eq!(
        (status, rotated["primary_version"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{rotated}"
    );
    assert_eq!(
        api.post("/v1/admin/tenants/nope/rotate", Some(admin), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let fresh = data(5000, 3);
    let (_, body) = api.upload(&alice, "after-rotation.pdf", &fresh).await;
    let fresh_id = text(&body["id"]);
    assert_eq!(
        stored_object(&data_dir, "acme", &fresh_id).0,
        2,
        "new uploads use the new primary"
    );
    api.expect_whole(&alice, &id, &report).await; // old version still decrypts

    let (status, job) = api
        .post("/v1/admin/tenants/acme/rewrap", Some(admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let job_path = format!("/v1/admin/jobs/{}", text(&job["job"]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (status, job) = api.get(&job_path, Some(admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            job["progress"]["done"]
                .as_u64()
                .is_some_and(|done| done <= 3),
            "{job}"
        );
        if job["state"] != "running" {
            break job;
        }
        assert!(Instant::now() < deadline, "rewrap did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["progress"]["total"], 3);
    assert_eq!(job["progress"]["done"], 3);
    let report_json = &job["report"];
    assert_eq!(
        (
            report_json["rewritten"].as_u64(),
            report_json["unchanged"].as_u64()
        ),
        (Some(2), Some(1)),
        "{job}"
    );
    assert_eq!(report_json["failed"], json!([]));
    let (version, body_after) = stored_object(&data_dir, "acme", &id);
    assert_eq!(version, 2, "rewrapped under the new primary");
    assert!(
        body_after == body_before,
        "rewrap rewrote the header only, not the body"
    );
    // Same bytes after rotation and rewrap.
    api.expect_whole(&alice, &id, &report).await;
    api.expect_range(
        &alice,
        &id,
        "bytes=5000000-5999999",
        &report,
        5_000_000,
        6_000_000,
    )
    .await;
    api.expect_whole(&carol, &small_id, &small).await;
    // A synchronous rerun finds nothing to do.
    let (status, job) = api
        .post(
            "/v1/admin/tenants/acme/rewrap?wait=true",
            Some(admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, job["state"].as_str()),
        (StatusCode::OK, Some("done"))
    );
    assert_eq!(job["report"]["unchanged"], 3);
    let (_, tenants) = api.get("/v1/admin/tenants", Some(admin)).await;
    assert_eq!(tenants[0]["tenant"], "acme");
    assert_eq!(
        (
            tenants[0]["primary_version"].as_u64(),
            tenants[0]["attachments"].as_u64()
        ),
        (Some(2), Some(3))
    );

    // --- Rehash on login --------------------------------------------------------------------
    let _dave = api
        .signup("dave@initech.test", "dave's password", "initech")
        .await;
    set_password_hash(&data_dir, "dave@initech.test", LEGACY_BCRYPT);
    let (status, _) = api.login("dave@initech.test", "hunter2").await;
    assert_eq!(status, StatusCode::OK);
    let upgraded = password_hash(&data_dir, "dave@initech.test");
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "rehashed on login: {upgraded}"
    );
    assert_eq!(
        api.login("dave@initech.test", "hunter2").await.0,
        StatusCode::OK
    );
    assert_eq!(
        password_hash(&data_dir, "dave@initech.test"),
        upgraded,
        "current hashes are kept"
    );

    // --- The login memory budget: 503 + Retry-After -----------------------------------------
    // Erin's stored hash is far costlier than the policy (64 MiB, 2 passes: stronger hashes
    // are kept, not downgraded), so while her login runs it holds the whole budget and any
    // other login is refused at once.
    let _erin = api
        .signup("erin@initech.test", "erin's password", "initech-2")
        .await;
    let slow = Hasher::new(
        Policy::builder()
            .memory_kib(64 * 1024)
            .iterations(2)
            .build()
            .expect("policy"),
    )
    .hash(b"erin's password")
    .expect("slow hash");
    set_password_hash(&data_dir, "erin@initech.test", &slow);
    let mut refused = None;
    for _attempt in 0..5 {
        let erin_login = {
            let api = Api {
                client: api.client.clone(),
                base: api.base.clone(),
            };
            tokio::spawn(async move { api.login("erin@initech.test", "erin's password").await })
        };
        while !erin_login.is_finished() {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let response = api
                .request(Method::POST, "/v1/login", None)
                .header(header::CONTENT_TYPE, "application/json")
                .body(json!({ "email": "dave@initech.test", "password": "hunter2" }).to_string())
                .send()
                .await
                .expect("login");
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                refused = Some((
                    header_of(&response, header::RETRY_AFTER),
                    json_of(response).await.1,
                ));
                break;
            }
            assert_eq!(response.status(), StatusCode::OK);
        }
        let (status, body) = erin_login.await.expect("erin's login");
        assert_eq!(status, StatusCode::OK, "{body}");
        if refused.is_some() {
            break;
        }
    }
    let (retry_after, body) = refused.expect("a login during a costly one was refused with 503");
    assert_eq!(
        (retry_after.as_str(), body["error"].as_str()),
        ("1", Some("busy"))
    );

    // --- Shred: the tenant's attachments are gone for good ----------------------------------
    let (status, shred) = api
        .post("/v1/admin/tenants/acme/shred", Some(admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{shred}");
    assert_eq!(
        (shred["objects"].as_u64(), shred["unrecoverable"].as_u64()),
        (Some(3), Some(3)),
        "{shred}"
    );
    assert_eq!(
        (&shred["readable"], &shred["other"]),
        (&json!([]), &json!([]))
    );
    for range in [None, Some("bytes=0-99")] {
        let response = api.download(&alice, &id, range).await;
        assert_eq!(response.status(), StatusCode::GONE, "{range:?}");
        assert_eq!(json_of(response).await.1["error"], "tenant_shredded");
    }
    assert_eq!(
        api.upload(&alice, "more.pdf", &small).await.0,
        StatusCode::GONE
    );
    assert_eq!(
        api.post("/v1/admin/tenants/acme/rotate", Some(admin), json!({}))
            .await
            .0,
        StatusCode::GONE
    );
    assert_eq!(
        api.get("/v1/me", Some(&carol)).await.1["tenant_shredded"],
        true
    );
    // Other tenants are untouched.
    let (status, body) = api.upload(&bob, "globex.pdf", &small).await;
    assert_eq!(status, StatusCode::CREATED);
    let bob_file = text(&body["id"]);
    api.expect_whole(&bob, &bob_file, &small).await;
    // Unrecoverable, not just hidden: the ciphertext is still on disk, and the keyring file
    // (loaded afresh with the root key) no longer holds anything that opens it.
    assert!(object_file(&data_dir, "acme", &id).exists());
    let root = KeyFileRoot::new(data_dir.join("root.key"));
    let keyring = Keyring::load(data_dir.join("keyring.atrest"), &root).expect("keyring file");
    let store = EncryptedStore::new(
        object_store::local::LocalFileSystem::new_with_prefix(data_dir.join("objects"))
            .expect("fs"),
        std::sync::Arc::new(SharedKeyring::new(keyring)),
        TenantPrefix::new(),
    );
    let location = object_store::path::Path::from(format!("acme/attachments/{id}"));
    let err = store
        .get(&location)
        .await
        .expect_err("shredded object must not decrypt");
    let err = atrest::store::Error::from_object_store(&err).expect("an atrest error");
    assert_eq!(err.unavailable_reason(), Some(KeyUnavailable::Destroyed));

    // --- Logout, graceful shutdown, restart on the same data -------------------------------
    let response = api
        .request(Method::POST, "/v1/logout", Some(&bob))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/v1/me", Some(&bob)).await.0,
        StatusCode::UNAUTHORIZED
    );
    running.stop().await;

    let running = Running::start(&data_dir).await;
    let api = Api {
        client: Client::new(),
        base: running.base.clone(),
    };
    let (status, body) = api.login("bob@globex.test", "bob's long password").await;
    assert_eq!(status, StatusCode::OK);
    api.expect_whole(&text(&body["token"]), &bob_file, &small)
        .await;
    running.stop().await;

    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(60),
        "the service test took {elapsed:?}"
    );
}
