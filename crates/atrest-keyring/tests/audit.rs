//! Every key operation emits an audit event with key id, version, operation and outcome, and
//! no event ever carries key material, a data key or a passphrase.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use atrest_crypto::Key256;
use atrest_keyring::{
    AUDIT_TARGET, Argon2Params, KeyId, KeyWrapper, Keyring, PassphraseRoot, RotationPolicy,
    Timestamp, insecure,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone)]
struct Captured {
    target: String,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal subscriber that keeps every event's target and fields as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn events(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Captured {
                target: event.metadata().target().to_owned(),
                fields,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

const T0: Timestamp = Timestamp::from_unix_secs(1_700_000_000);
const PASSPHRASE: &str = "audit-test passphrase: purple monkey dishwasher";

/// Runs every operation (successes and failures); returns every secret that existed.
fn exercise(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut secrets: Vec<Vec<u8>> = vec![PASSPHRASE.as_bytes().to_vec()];
    let mut keep = |k: &Key256| secrets.push(k.expose_secret().to_vec());
    let t = KeyId::new("tenant-audit").expect("valid id");
    let mut ring = Keyring::new();
    ring.create_key(&t, T0).expect("create");
    let _ = ring.create_key(&t, T0); // denied: exists
    ring.rotate(&t, T0).expect("rotate");
    let v3 = ring.add_version(&t, T0).expect("add");
    ring.promote(&t, v3).expect("promote");
    let _ = ring.promote(&t, 42); // denied: no such version
    for v in 1..=3 {
        keep(&insecure::export_version_material(&ring, &t, v).expect("export"));
    }
    let imported = Key256::from_bytes([0xC3; 32]);
    keep(&imported);
    insecure::import_version_material(&mut ring, &t, imported, T0).expect("import");
    ring.set_rotation_policy(&t, Some(RotationPolicy::max_age(Duration::from_secs(60))))
        .expect("policy");
    ring.rotate_if_due(T0.saturating_add(Duration::from_secs(60)))
        .expect("rotate if due");
    keep(&insecure::export_version_material(&ring, &t, 5).expect("export"));
    ring.set_min_encryption_version(&t, 2).expect("min enc");
    ring.set_min_decryption_version(&t, 1).expect("min dec");
    let _ = ring.set_min_decryption_version(&t, 99); // denied
    ring.disable(&t, 2).expect("disable");
    ring.enable(&t, 2).expect("enable");

    let data_key = Key256::from_bytes([0xD4; 32]);
    keep(&data_key);
    let wrapped = ring
        .wrap(
            &t,
            &data_key,
            &atrest_envelope::fuzzing::wrap_context(b"blob"),
        )
        .expect("wrap");
    keep(
        &ring
            .unwrap(&wrapped, &atrest_envelope::fuzzing::wrap_context(b"blob"))
            .expect("unwrap"),
    );
    let _ = ring.unwrap(
        &wrapped,
        &atrest_envelope::fuzzing::wrap_context(b"other blob"),
    ); // authentication failure
    let _ = ring.wrap(
        &KeyId::new("nobody").expect("valid id"),
        &data_key,
        &atrest_envelope::fuzzing::wrap_context(b""),
    ); // not found

    ring.schedule_destruction(&t, 1, T0, Duration::from_secs(10))
        .expect("schedule");
    ring.restore(&t, 1, T0).expect("restore");
    ring.schedule_destruction(&t, 1, T0, Duration::ZERO)
        .expect("schedule");
    ring.destroy_due(T0);
    let old = ring
        .wrap(&t, &data_key, &atrest_envelope::fuzzing::wrap_context(b"x"))
        .expect("wrap");
    let mut under_v1 = old.clone();
    under_v1.version = 1;
    let _ = ring.unwrap(&under_v1, &atrest_envelope::fuzzing::wrap_context(b"x")); // denied: destroyed

    let root = PassphraseRoot::new(PASSPHRASE, Argon2Params::new(8, 1, 1).expect("params"));
    let path = dir.join("audit.kr");
    ring.save(&path, &root).expect("save");
    let _ = Keyring::load(&path, &root).expect("load");
    let wrong = PassphraseRoot::new("wrong", Argon2Params::new(8, 1, 1).expect("params"));
    let _ = Keyring::load(&path, &wrong); // authentication failure
    ring.shred(&t).expect("shred");
    secrets
}

#[test]
fn every_operation_is_audited_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = Capture::default();
    let secrets = tracing::subscriber::with_default(capture.clone(), || exercise(dir.path()));
    let events = capture.events();
    let audit: Vec<&Captured> = events.iter().filter(|e| e.target == AUDIT_TARGET).collect();
    assert!(!audit.is_empty());

    for event in &audit {
        for field in ["key_id", "operation", "outcome"] {
            assert!(event.field(field).is_some(), "{field} missing in {event:?}");
        }
        let outcome = event.field("outcome").unwrap_or_default();
        assert!(["ok", "denied", "error"].contains(&outcome), "{event:?}");
        if outcome != "ok" {
            assert!(
                event.field("error").is_some(),
                "failures say why: {event:?}"
            );
        }
    }

    let seen: BTreeSet<(String, String)> = audit
        .iter()
        .map(|e| {
            (
                e.field("operation").unwrap_or_default().to_owned(),
                e.field("outcome").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("create_key", "ok"),
        ("create_key", "denied"),
        ("rotate", "ok"),
        ("add_version", "ok"),
        ("promote", "ok"),
        ("promote", "denied"),
        ("insecure_export", "ok"),
        ("insecure_import", "ok"),
        ("set_rotation_policy", "ok"),
        ("set_min_encryption_version", "ok"),
        ("set_min_decryption_version", "ok"),
        ("set_min_decryption_version", "denied"),
        ("disable", "ok"),
        ("enable", "ok"),
        ("wrap", "ok"),
        ("wrap", "denied"),
        ("unwrap", "ok"),
        ("unwrap", "error"),
        ("unwrap", "denied"),
        ("schedule_destruction", "ok"),
        ("restore", "ok"),
        ("destroy", "ok"),
        ("save", "ok"),
        ("load", "ok"),
        ("load", "error"),
        ("shred", "ok"),
    ];
    for (operation, outcome) in expected {
        assert!(
            seen.contains(&(operation.to_owned(), outcome.to_owned())),
            "no {operation}/{outcome} event; saw {seen:?}"
        );
    }

    // Version-specific events name the version and the key.
    let destroy = audit
        .iter()
        .find(|e| e.field("operation") == Some("destroy"))
        .expect("destroy event");
    assert_eq!(destroy.field("version"), Some("1"));
    assert_eq!(destroy.field("key_id"), Some("tenant-audit"));
    let rotated_by_policy = audit
        .iter()
        .filter(|e| e.field("operation") == Some("rotate"))
        .filter_map(|e| e.field("version"))
        .collect::<Vec<_>>();
    assert_eq!(rotated_by_policy, vec!["2", "5"]);

    // No event carries any secret: raw, hex (either case), or as Rust would print the bytes.
    let text: String = events
        .iter()
        .flat_map(|e| e.fields.iter())
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    assert_eq!(
        secrets.len(),
        8,
        "passphrase, 5 KEK versions, data key, unwrapped key"
    );
    for secret in &secrets {
        let hex = hex::encode(secret);
        let debug = format!("{secret:?}");
        for needle in [hex.clone(), hex.to_uppercase(), debug] {
            assert!(!text.contains(&needle), "secret leaked into audit events");
        }
        assert!(
            !text
                .as_bytes()
                .windows(secret.len())
                .any(|w| w == secret.as_slice()),
            "raw secret bytes leaked"
        );
    }
}
