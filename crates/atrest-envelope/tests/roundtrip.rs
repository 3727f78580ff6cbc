//! Round trips through every API (attached and detached, in memory, streaming, seekable and
//! ranged reads) and the errors a key holder sees: wrong context, missing or unusable KEK
//! versions, unknown keys, and which wrapped key is used.

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use atrest_envelope::fuzzing::TestWrapper;
use atrest_envelope::{
    Context, Error, Header, KeyUnavailable, LimitExceeded, MisuseError, Opener, Options, Sealer,
    UnwrapError, WrapError, open, open_detached, seal, seal_detached,
};
use common::{context, key_id, keyring, plaintext, unwrap_error};

#[test]
fn attached_and_detached_in_memory() {
    let (wrapper, id) = keyring();
    for len in [0, 1, 4095, 4096, 4097, 3 * 4096 + 5] {
        let data = plaintext(len);
        let object = seal(&wrapper, &id, &context(), &data).expect("seal");
        assert_eq!(open(&wrapper, &context(), &object).expect("open"), data);

        let (header, body) = seal_detached(&wrapper, &id, &context(), &data).expect("seal");
        assert_eq!(
            open_detached(&wrapper, &context(), &header, &body).expect("open"),
            data
        );
        // The detached body is exactly an attached object minus its header.
        let parsed = Header::parse(&header).expect("parses");
        assert_eq!(parsed.len(), header.len());
        assert_eq!(parsed.to_bytes(), header);
    }
}

#[test]
fn streaming_attached_and_seekable() {
    let (wrapper, id) = keyring();
    let options = Options::default().segment_size(4096).expect("valid");
    let data = plaintext(5 * 4096 + 123);

    let sealer =
        Sealer::new(&wrapper, std::slice::from_ref(&id), &context(), &options).expect("sealer");
    let header_len = sealer.header().len();
    let mut encryptor = sealer.attached_encryptor(Vec::new()).expect("encryptor");
    for chunk in data.chunks(1000) {
        encryptor.write_all(chunk).expect("write");
    }
    let object = encryptor.finish().expect("finish");
    assert_eq!(open(&wrapper, &context(), &object).expect("open"), data);

    // Sequential: the header from the reader, then the body from the same reader.
    let mut reader = &object[..];
    let header = Header::read_from(&mut reader).expect("header");
    assert_eq!(header.len(), header_len);
    let opener = Opener::new(&header, &wrapper, &context(), &Options::default()).expect("opens");
    let mut out = Vec::new();
    opener
        .decryptor(reader)
        .expect("decryptor")
        .read_to_end(&mut out)
        .expect("read");
    assert_eq!(out, data);

    // Random access over the attached object: seek past the header first.
    let mut cursor = Cursor::new(&object);
    cursor
        .seek(SeekFrom::Start(header_len as u64))
        .expect("seek");
    let mut seekable = opener.seekable_decryptor(cursor).expect("seekable");
    seekable.seek(SeekFrom::Start(10_000)).expect("seek");
    let mut buf = [0u8; 300];
    seekable.read_exact(&mut buf).expect("read");
    assert_eq!(&buf[..], &data[10_000..10_300]);
    assert_eq!(seekable.verified_len().expect("len"), data.len() as u64);
    let mut at = [0u8; 50];
    assert_eq!(seekable.read_at(20_000, &mut at).expect("read_at"), 50);
    assert_eq!(&at[..], &data[20_000..20_050]);
}

/// A store serving a ranged GET fetches only the header, the body's stream header and the
/// range `Header::attached_range` names; everything else can be missing.
#[test]
fn ranged_reads_need_only_the_named_bytes() {
    let (wrapper, id) = keyring();
    let options = Options::default().segment_size(4096).expect("valid");
    let data = plaintext(10 * 4096);
    let sealer =
        Sealer::new(&wrapper, std::slice::from_ref(&id), &context(), &options).expect("sealer");
    let object = sealer.seal_attached(&data).expect("seal");
    let (header, body) = Header::split_attached(&object).expect("splits");
    let hlen = header.len() as u64;

    let want = 9000u64..13_000;
    let range = header
        .attached_range(want.clone(), object.len() as u64)
        .expect("range");
    // Segments 2 and 3 (4112 bytes each) after the 42-byte stream header.
    assert_eq!(range, hlen + 42 + 2 * 4112..hlen + 42 + 4 * 4112);
    assert_eq!(
        header
            .body_range(want.clone(), body.len() as u64)
            .expect("range"),
        range.start - hlen..range.end - hlen
    );

    let mut sparse = vec![0u8; object.len()];
    let prefix = usize::try_from(hlen + 42).expect("small");
    sparse[..prefix].copy_from_slice(&object[..prefix]);
    let (a, b) = (
        usize::try_from(range.start).expect("small"),
        usize::try_from(range.end).expect("small"),
    );
    sparse[a..b].copy_from_slice(&object[a..b]);

    let opener = Opener::new(&header, &wrapper, &context(), &Options::default()).expect("opens");
    let mut cursor = Cursor::new(sparse);
    cursor.seek(SeekFrom::Start(hlen)).expect("seek");
    let seekable = opener.seekable_decryptor(cursor).expect("seekable");
    let mut out = vec![0u8; 4000];
    assert_eq!(
        seekable.read_at(want.start, &mut out).expect("read_at"),
        4000
    );
    assert_eq!(out, data[9000..13_000]);

    assert!(matches!(
        header.body_range(0..u64::MAX, body.len() as u64),
        Err(Error::Body(atrest_stream::Error::Misuse(_)))
    ));
}

#[test]
fn wrong_context_is_an_authentication_error() {
    let (wrapper, id) = keyring();
    let object = seal(&wrapper, &id, &context(), b"data").expect("seal");
    let others = [
        Context::new(),
        Context::new().with("tenant", "acme").expect("valid"),
        Context::new()
            .with("tenant", "acme")
            .and_then(|c| c.with("object", "invoice-18"))
            .expect("valid"),
        Context::new()
            .with("tenant", "evil")
            .and_then(|c| c.with("object", "invoice-17"))
            .expect("valid"),
    ];
    for other in others {
        assert!(
            matches!(open(&wrapper, &other, &object), Err(Error::Authentication)),
            "{other:?}"
        );
    }
    // Insertion order does not matter.
    let reordered = Context::new()
        .with("object", "invoice-17")
        .and_then(|c| c.with("tenant", "acme"))
        .expect("valid");
    assert_eq!(open(&wrapper, &reordered, &object).expect("open"), b"data");
}

#[test]
fn missing_version_and_unknown_key_are_specific() {
    let (wrapper, id) = keyring();
    wrapper.rotate(&id); // version 2 is now primary
    let object = seal(&wrapper, &id, &context(), b"data").expect("seal");
    assert_eq!(
        Header::split_attached(&object)
            .expect("parses")
            .0
            .wrapped_keys()[0]
            .version,
        2
    );

    // A keyring restored from before the rotation has version 1 only.
    let (old, _) = keyring();
    let (key, version, source) = unwrap_error(open(&old, &context(), &object));
    assert_eq!((key.as_str(), version), ("tenant-acme", 2));
    assert!(matches!(
        source,
        UnwrapError::VersionNotFound { version: 2, .. }
    ));

    // A keyring that does not know the key at all.
    let (_, _, source) = unwrap_error(open(&TestWrapper::new(), &context(), &object));
    assert!(matches!(source, UnwrapError::KeyNotFound(k) if k == id));

    // A keyring with a different KEK under the same name and version.
    let impostor = TestWrapper::new();
    impostor.add_version(&id, [1; 32]);
    impostor.add_version(&id, [2; 32]);
    let (_, _, source) = unwrap_error(open(&impostor, &context(), &object));
    assert!(matches!(source, UnwrapError::Authentication));
}

#[test]
fn key_states_surface_their_reason() {
    let (wrapper, id) = keyring();
    let object = seal(&wrapper, &id, &context(), b"data").expect("seal");
    for reason in [
        KeyUnavailable::Retired,
        KeyUnavailable::Disabled,
        KeyUnavailable::ScheduledForDestruction,
        KeyUnavailable::Destroyed,
    ] {
        let (wrapper, id) = keyring();
        wrapper.set_state(&id, 1, Some(reason));
        let (_, version, source) = unwrap_error(open(&wrapper, &context(), &object));
        assert_eq!(version, 1);
        assert!(
            matches!(source, UnwrapError::Unavailable { reason: r, version: 1, .. } if r == reason),
            "{reason:?}: {source:?}"
        );
    }
    // Decrypt-only versions still decrypt (they just cannot encrypt).
    wrapper.set_state(&id, 1, Some(KeyUnavailable::DecryptOnly));
    assert_eq!(open(&wrapper, &context(), &object).expect("opens"), b"data");
    assert!(matches!(
        seal(&wrapper, &id, &context(), b"data"),
        Err(Error::Wrap(WrapError::Unavailable {
            reason: KeyUnavailable::DecryptOnly,
            ..
        }))
    ));
    // Restoring a disabled version makes the blob readable again; destroyed stays gone.
    wrapper.set_state(&id, 1, Some(KeyUnavailable::Disabled));
    assert!(open(&wrapper, &context(), &object).is_err());
    wrapper.set_state(&id, 1, None);
    assert_eq!(open(&wrapper, &context(), &object).expect("opens"), b"data");
    wrapper.set_state(&id, 1, Some(KeyUnavailable::Destroyed));
    wrapper.set_state(&id, 1, None);
    let (_, _, source) = unwrap_error(open(&wrapper, &context(), &object));
    assert!(matches!(source, UnwrapError::Authentication), "KEK wiped");
}

#[test]
fn several_wrapped_keys_first_usable_wins_and_best_error_is_reported() {
    let wrapper = TestWrapper::new();
    let (a, b) = (key_id("tenant-acme"), key_id("escrow"));
    wrapper.add_version(&a, [1; 32]);
    wrapper.add_version(&b, [2; 32]);
    let sealer = Sealer::new(
        &wrapper,
        &[a.clone(), b.clone()],
        &context(),
        &Options::default(),
    )
    .expect("sealer");
    let names: Vec<_> = sealer
        .header()
        .wrapped_keys()
        .iter()
        .map(|w| (w.key_id.to_string(), w.version))
        .collect();
    assert_eq!(names, [("tenant-acme".into(), 1), ("escrow".into(), 1)]);
    let object = sealer.seal_attached(b"data").expect("seal");

    // Only the escrow key is known: it opens.
    let escrow_only = TestWrapper::new();
    escrow_only.add_version(&b, [2; 32]);
    assert_eq!(
        open(&escrow_only, &context(), &object).expect("opens"),
        b"data"
    );

    // The tenant key destroyed, the escrow key unknown: the destroyed state is reported.
    let tenant_only = TestWrapper::new();
    tenant_only.add_version(&a, [1; 32]);
    tenant_only.set_state(&a, 1, Some(KeyUnavailable::Destroyed));
    let (key, _, source) = unwrap_error(open(&tenant_only, &context(), &object));
    assert_eq!(key, "tenant-acme");
    assert!(matches!(
        source,
        UnwrapError::Unavailable {
            reason: KeyUnavailable::Destroyed,
            ..
        }
    ));
}

#[test]
fn sealing_misuse_and_wrap_errors() {
    let (wrapper, id) = keyring();
    let options = Options::default();
    assert!(matches!(
        Sealer::new(&wrapper, &[], &context(), &options),
        Err(Error::Misuse(MisuseError::NoKeyIds))
    ));
    assert!(matches!(
        Sealer::new(&wrapper, &[id.clone(), id.clone()], &context(), &options),
        Err(Error::Misuse(MisuseError::DuplicateKeyId(_)))
    ));
    assert!(matches!(
        seal(&wrapper, &key_id("nope"), &context(), b""),
        Err(Error::Wrap(WrapError::KeyNotFound(_)))
    ));
    assert!(matches!(
        Options::default().segment_size(4095),
        Err(Error::Misuse(MisuseError::SegmentSize(4095)))
    ));
    let err = Sealer::new(&wrapper, &[], &context(), &options)
        .err()
        .expect("misuse");
    assert!(err.is_misuse());
}

#[test]
fn reader_segment_cap_is_checked_before_unwrapping() {
    let (wrapper, id) = keyring();
    let big = Options::default().segment_size(1 << 20).expect("valid");
    let sealer =
        Sealer::new(&wrapper, std::slice::from_ref(&id), &context(), &big).expect("sealer");
    let capped = Options::default().max_segment_size(65536).expect("valid");
    assert!(matches!(
        Opener::new(sealer.header(), &TestWrapper::new(), &context(), &capped),
        Err(Error::Limit(LimitExceeded::SegmentSize {
            size: 1_048_576,
            limit: 65536
        }))
    ));
}

#[test]
fn a_body_from_another_blob_does_not_decrypt() {
    let (wrapper, id) = keyring();
    let (header_a, _) = seal_detached(&wrapper, &id, &context(), b"one").expect("seal");
    let (_, body_b) = seal_detached(&wrapper, &id, &context(), b"two").expect("seal");
    assert!(matches!(
        open_detached(&wrapper, &context(), &header_a, &body_b),
        Err(Error::Body(atrest_stream::Error::Authentication))
    ));
    // A plain stream under some other key, with another segment size, is refused too.
    let other = atrest_stream::Options::native(4096)
        .expect("valid")
        .seal(&atrest_crypto::Key256::from_bytes([0; 32]), b"", b"x")
        .expect("seal");
    assert!(matches!(
        open_detached(&wrapper, &context(), &header_a, &other),
        Err(Error::Body(atrest_stream::Error::Authentication))
    ));
    // io::Error round trip keeps the error.
    let io: std::io::Error = Error::Authentication.into();
    assert!(matches!(Error::from_io(io), Error::Authentication));
}
