//! Rewrap changes header bytes only: the body is byte-for-byte identical and still decrypts.

mod common;

use atrest_envelope::fuzzing::TestWrapper;
use atrest_envelope::{
    Error, Header, KeyUnavailable, MisuseError, RewrapPlan, UnwrapError, open, open_detached,
    rewrap, rewrap_attached, rewrap_attached_bytes, seal, seal_detached,
};
use common::{context, key_id, keyring, plaintext, unwrap_error};

fn versions(header: &[u8]) -> Vec<(String, u32)> {
    Header::parse(header)
        .expect("parses")
        .wrapped_keys()
        .iter()
        .map(|w| (w.key_id.to_string(), w.version))
        .collect()
}

#[test]
fn rotate_rewraps_under_the_new_primary_and_leaves_the_body_alone() {
    let (wrapper, id) = keyring();
    let data = plaintext(70_000);
    let (header, body) = seal_detached(&wrapper, &id, &context(), &data).expect("seal");
    let body_before = body.clone();
    assert_eq!(versions(&header), [("tenant-acme".into(), 1)]);

    assert_eq!(wrapper.rotate(&id), 2);
    let rotated = rewrap(&header, &wrapper, &RewrapPlan::Rotate).expect("rewrap");
    assert_eq!(versions(&rotated), [("tenant-acme".into(), 2)]);
    // Immutable part unchanged, wrapped key and tag changed.
    let (old, new) = (
        Header::parse(&header).expect("old"),
        Header::parse(&rotated).expect("new"),
    );
    assert_eq!(old.blob_id(), new.blob_id());
    assert_eq!(old.commitment(), new.commitment());
    assert_eq!(old.context(), new.context());
    assert_ne!(header, rotated);

    // Version 1 can now be retired: the rewrapped header no longer needs it.
    wrapper.set_state(&id, 1, Some(KeyUnavailable::Retired));
    assert_eq!(
        open_detached(&wrapper, &context(), &rotated, &body).expect("opens"),
        data
    );
    assert_eq!(body, body_before, "body bytes identical");
    let (_, _, source) = unwrap_error(open_detached(&wrapper, &context(), &header, &body));
    assert!(matches!(
        source,
        UnwrapError::Unavailable {
            reason: KeyUnavailable::Retired,
            ..
        }
    ));
}

#[test]
fn attached_rewrap_keeps_body_bytes_identical() {
    let (wrapper, id) = keyring();
    let data = plaintext(10_000);
    let object = seal(&wrapper, &id, &context(), &data).expect("seal");
    let old_len = Header::split_attached(&object).expect("parses").0.len();
    let escrow = key_id("escrow-with-a-longer-name");
    wrapper.add_version(&escrow, [9; 32]);

    // Streaming: header length changes (a second wrapped key), body copied verbatim.
    let mut out = Vec::new();
    let copied = rewrap_attached(
        &object[..],
        &mut out,
        &wrapper,
        &RewrapPlan::Add(escrow.clone()),
    )
    .expect("rewrap");
    let (new_header, new_body) = Header::split_attached(&out).expect("parses");
    assert_eq!(copied, (object.len() - old_len) as u64);
    assert!(new_header.len() > old_len);
    assert_eq!(new_body, &object[old_len..], "body bytes identical");
    assert_eq!(new_header.wrapped_keys().len(), 2);

    // The escrow key alone opens it now.
    let escrow_only = TestWrapper::new();
    escrow_only.add_version(&escrow, [9; 32]);
    assert_eq!(open(&escrow_only, &context(), &out).expect("opens"), data);

    // In memory: remove the tenant key again; same body.
    let removed = rewrap_attached_bytes(
        &out,
        &wrapper,
        &RewrapPlan::Remove {
            key_id: id.clone(),
            version: None,
        },
    )
    .expect("rewrap");
    let (header, body) = Header::split_attached(&removed).expect("parses");
    assert_eq!(body, &object[old_len..]);
    assert_eq!(header.wrapped_keys()[0].key_id, escrow);
    assert_eq!(
        open(&escrow_only, &context(), &removed).expect("opens"),
        data
    );

    // Replace: everything under one key.
    let replaced = rewrap_attached_bytes(&removed, &wrapper, &RewrapPlan::Replace(id.clone()))
        .expect("rewrap");
    assert_eq!(open(&wrapper, &context(), &replaced).expect("opens"), data);
    assert!(open(&escrow_only, &context(), &replaced).is_err());
    assert_eq!(
        Header::split_attached(&replaced).expect("parses").1,
        &object[old_len..]
    );
}

#[test]
fn rewrap_verifies_first_and_refuses_impossible_plans() {
    let (wrapper, id) = keyring();
    let (header, body) = seal_detached(&wrapper, &id, &context(), b"x").expect("seal");
    let (other, _) = seal_detached(&wrapper, &id, &context(), b"y").expect("seal");
    let mut tampered = header.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    // Plans that need the data key verify the old header first.
    assert!(matches!(
        rewrap(&tampered, &wrapper, &RewrapPlan::Add(id.clone())),
        Err(Error::Authentication)
    ));
    // Rotate re-wraps without the data key (as a KMS does), but never launders: the forged
    // header still fails after the rotation.
    let (rotating, _) = keyring();
    let (header_r, body_r) = seal_detached(&rotating, &id, &context(), b"x").expect("seal");
    let mut tampered = header_r.clone();
    tampered[last] ^= 1;
    rotating.rotate(&id);
    let rotated = rewrap(&tampered, &rotating, &RewrapPlan::Rotate).expect("rotates");
    assert_eq!(
        Header::parse(&rotated).expect("parses").wrapped_keys()[0].version,
        2
    );
    assert!(matches!(
        open_detached(&rotating, &context(), &rotated, &body_r),
        Err(Error::Authentication)
    ));
    // A wrapped key from another blob with the same wrap context unwraps, and then fails
    // the key commitment.
    let donor = Header::parse(&other).expect("parses");
    let mut bytes = header.clone();
    let old_wrap = &Header::parse(&header).expect("parses").wrapped_keys()[0]
        .ciphertext
        .clone();
    let new_wrap = &donor.wrapped_keys()[0].ciphertext;
    assert_eq!(old_wrap.len(), new_wrap.len());
    let at = bytes
        .windows(old_wrap.len())
        .position(|w| w == &old_wrap[..])
        .expect("wrap in header");
    bytes[at..at + new_wrap.len()].copy_from_slice(new_wrap);
    assert!(matches!(
        open_detached(&wrapper, &context(), &bytes, &body),
        Err(Error::CommitmentMismatch)
    ));
    assert!(matches!(
        rewrap(
            &header,
            &wrapper,
            &RewrapPlan::Remove {
                key_id: id.clone(),
                version: None
            }
        ),
        Err(Error::Misuse(MisuseError::LastWrappedKey))
    ));
    assert!(matches!(
        rewrap(
            &header,
            &wrapper,
            &RewrapPlan::Remove {
                key_id: id.clone(),
                version: Some(7)
            }
        ),
        Err(Error::Misuse(MisuseError::NoSuchWrappedKey(_)))
    ));
    assert!(matches!(
        rewrap(&header, &wrapper, &RewrapPlan::Add(key_id("unknown"))),
        Err(Error::Wrap(atrest_envelope::WrapError::KeyNotFound(_)))
    ));
    // A wrapper that cannot unwrap cannot rewrap.
    assert!(matches!(
        rewrap(&header, &TestWrapper::new(), &RewrapPlan::Rotate),
        Err(Error::Unwrap { .. })
    ));
    // Adding the same key and version again re-wraps in place: still one wrapped key.
    let again = rewrap(&header, &wrapper, &RewrapPlan::Add(id)).expect("rewrap");
    assert_eq!(versions(&again), [("tenant-acme".into(), 1)]);
    assert_ne!(again, header, "fresh wrap salt");
}
