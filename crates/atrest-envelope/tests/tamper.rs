//! Every header byte modified, every truncation, and a crafted header whose wrapped key
//! unwraps to a different data key: each gives its exact error.

#![allow(clippy::panic, reason = "test code: a failed check should panic")]

mod common;

use atrest_crypto::{DEFAULT_PROVIDER, Key256};
use atrest_envelope::{
    Error, Header, KeyId, LimitExceeded, Malformed, Opener, Options, UnwrapError, local,
    open_detached, seal, seal_detached,
};
use common::{keyring, unwrap_error};

fn ctx() -> atrest_envelope::Context {
    atrest_envelope::Context::new()
        .with("tenant", "acme")
        .expect("valid")
}

/// Offsets of the test header (context `tenant=acme`, one key `k1` v1, 80-byte wrap).
const CONTEXT_LEN_AT: usize = 42;
const WRAP_SCOPE_AT: usize = 57;
const COMMITMENT_AT: usize = 65;
const COUNT_AT: usize = 97;
const ID_LEN_AT: usize = 98;
const VERSION_AT: usize = 101;
const WRAPPED_LEN_AT: usize = 105;
const WRAPPED_AT: usize = 107;
const TAG_AT: usize = 187;
const HEADER_LEN: usize = 219;

#[derive(Debug, PartialEq)]
enum Expect {
    Malformed(Malformed),
    SegmentSize,
    UnwrapAuthentication,
    KeyNotFound,
    VersionNotFound,
    Authentication,
    CommitmentMismatch,
    /// A length field: the rest of the header is re-read from another offset.
    AnyParseError,
}

fn classify(result: Result<Vec<u8>, Error>) -> Expect {
    match result {
        Err(Error::Malformed(Malformed::SegmentSize(_))) => Expect::SegmentSize,
        Err(Error::Malformed(m)) => Expect::Malformed(m),
        Err(Error::Authentication) => Expect::Authentication,
        Err(Error::CommitmentMismatch) => Expect::CommitmentMismatch,
        Err(err @ Error::Unwrap { .. }) => match unwrap_error(Err::<(), _>(err)).2 {
            UnwrapError::Authentication => Expect::UnwrapAuthentication,
            UnwrapError::KeyNotFound(_) => Expect::KeyNotFound,
            UnwrapError::VersionNotFound { .. } => Expect::VersionNotFound,
            other => panic!("unexpected unwrap error {other:?}"),
        },
        Err(Error::Limit(_)) => Expect::AnyParseError,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_header_byte_flipped_gives_the_error_of_its_field() {
    let wrapper = atrest_envelope::fuzzing::TestWrapper::new();
    let id = KeyId::new("k1").expect("valid");
    wrapper.add_version(&id, [7; 32]);
    let (header, body) = seal_detached(&wrapper, &id, &ctx(), b"data").expect("seal");
    assert_eq!(header.len(), HEADER_LEN);
    assert_eq!(&header[COUNT_AT..VERSION_AT], b"\x01\x02k1");
    assert_eq!(
        &header[WRAP_SCOPE_AT..COMMITMENT_AT],
        &[0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(&header[WRAPPED_LEN_AT..WRAPPED_AT], &[0, 80]);

    for at in 0..HEADER_LEN {
        let mut bad = header.clone();
        bad[at] ^= 0x01;
        let got = classify(open_detached(&wrapper, &ctx(), &bad, &body));
        let expected = match at {
            0..4 => Expect::Malformed(Malformed::Magic),
            4 => Expect::Malformed(Malformed::Version(0)),
            5 => Expect::Malformed(Malformed::Suite(0)),
            // 65536 = 00 01 00 00: bytes 6 and 7 leave the range, 8 and 9 stay in it and
            // fail the header tag.
            6 | 7 => Expect::SegmentSize,
            8 | 9 => Expect::Authentication,
            // The blob id salts the key commitment.
            10..CONTEXT_LEN_AT => Expect::CommitmentMismatch,
            CONTEXT_LEN_AT => Expect::AnyParseError,
            43 | 44 | 51 | 52 => Expect::Malformed(Malformed::ContextEntry),
            // The context (its bound entries) is bound to the wrap.
            45..51 | 53..WRAP_SCOPE_AT => Expect::UnwrapAuthentication,
            // A scope bit past the one entry; or the entry dropped from the wrap context.
            WRAP_SCOPE_AT..64 => Expect::Malformed(Malformed::WrapScope),
            64 => Expect::UnwrapAuthentication,
            COMMITMENT_AT..COUNT_AT => Expect::CommitmentMismatch,
            COUNT_AT => Expect::Malformed(Malformed::NoWrappedKeys),
            ID_LEN_AT => Expect::AnyParseError,
            99 | 100 => Expect::KeyNotFound,
            VERSION_AT..WRAPPED_LEN_AT => Expect::VersionNotFound,
            WRAPPED_LEN_AT | 106 => Expect::Malformed(Malformed::Truncated),
            WRAPPED_AT..TAG_AT => Expect::UnwrapAuthentication,
            _ => Expect::Authentication,
        };
        if expected == Expect::AnyParseError {
            assert!(
                matches!(got, Expect::Malformed(_) | Expect::AnyParseError),
                "byte {at}: {got:?}"
            );
        } else {
            assert_eq!(got, expected, "byte {at}");
        }
    }
    // Sanity: the commitment is where the layout says.
    let parsed = Header::parse(&header).expect("parses");
    assert_eq!(
        &header[COMMITMENT_AT..COUNT_AT],
        parsed.commitment().as_slice()
    );
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let (wrapper, id) = keyring();
    let (header, body) = seal_detached(&wrapper, &id, &ctx(), b"data").expect("seal");
    for len in 0..header.len() {
        assert!(
            matches!(
                Header::parse(&header[..len]),
                Err(Error::Malformed(Malformed::Truncated))
            ),
            "{len}"
        );
        let mut reader = &header[..len];
        assert!(matches!(
            Header::read_from(&mut reader),
            Err(Error::Malformed(Malformed::Truncated))
        ));
    }
    let mut longer = header.clone();
    longer.push(0);
    assert!(matches!(
        open_detached(&wrapper, &ctx(), &longer, &body),
        Err(Error::Malformed(Malformed::TrailingBytes))
    ));
    // Attached: the body cut or extended is the stream's error.
    let object = seal(&wrapper, &id, &ctx(), b"data").expect("seal");
    assert!(matches!(
        atrest_envelope::open(&wrapper, &ctx(), &object[..object.len() - 1]),
        Err(Error::Body(atrest_stream::Error::Authentication))
    ));
    assert!(matches!(
        atrest_envelope::open(&wrapper, &ctx(), &object[..header.len() + 42]),
        Err(Error::Body(atrest_stream::Error::Truncated))
    ));
    let mut flipped = object.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        atrest_envelope::open(&wrapper, &ctx(), &flipped),
        Err(Error::Body(atrest_stream::Error::Authentication))
    ));
}

#[test]
fn caps_are_checked_before_allocation() {
    let wrapper = atrest_envelope::fuzzing::TestWrapper::new();
    let id = KeyId::new("k1").expect("valid");
    wrapper.add_version(&id, [7; 32]);
    let (header, _) = seal_detached(&wrapper, &id, &ctx(), b"data").expect("seal");
    assert_eq!(header.len(), HEADER_LEN);
    // Context length 0xFFFF.
    let mut bad = header[..44].to_vec();
    bad[42..44].copy_from_slice(&[0xFF, 0xFF]);
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Limit(LimitExceeded::ContextLen {
            len: 65535,
            max: 4096
        }))
    ));
    // 9 wrapped keys.
    let mut bad = header[..=COUNT_AT].to_vec();
    bad[COUNT_AT] = 9;
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Limit(LimitExceeded::WrappedKeys {
            count: 9,
            max: 8
        }))
    ));
    // A 65535-byte wrapped key.
    let mut bad = header[..WRAPPED_AT].to_vec();
    bad[WRAPPED_LEN_AT..WRAPPED_AT].copy_from_slice(&[0xFF, 0xFF]);
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Limit(LimitExceeded::WrappedKeyLen {
            len: 65535,
            max: 1024
        }))
    ));
    // Zero-length wrapped key, empty and non-UTF-8 key ids, duplicated wrapped keys.
    let mut bad = header.clone();
    bad[WRAPPED_LEN_AT..WRAPPED_AT].copy_from_slice(&[0, 0]);
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Malformed(Malformed::EmptyWrappedKey))
    ));
    let mut bad = header.clone();
    bad[ID_LEN_AT] = 0;
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Malformed(Malformed::KeyId))
    ));
    let mut bad = header.clone();
    bad[ID_LEN_AT + 1] = 0xFF;
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Malformed(Malformed::KeyId))
    ));
    let entry = header[ID_LEN_AT..TAG_AT].to_vec();
    let mut bad = header[..TAG_AT].to_vec();
    bad[COUNT_AT] = 2;
    bad.extend_from_slice(&entry);
    bad.extend_from_slice(&header[TAG_AT..]);
    assert!(matches!(
        Header::parse(&bad),
        Err(Error::Malformed(Malformed::DuplicateWrappedKey))
    ));
}

/// The attack key commitment stops: someone who holds one KEK (here the only one) replaces
/// the wrapped key with a wrap of a *different* data key and recomputes everything they can
/// (the wrap under the same binding, the header tag under their data key). Without the
/// commitment the header would authenticate; with it, opening fails with
/// `CommitmentMismatch` before the header tag or any body segment is checked.
#[test]
fn a_wrapped_key_for_another_data_key_is_a_commitment_mismatch() {
    let wrapper = atrest_envelope::fuzzing::TestWrapper::new();
    let id = KeyId::new("k1").expect("valid");
    let kek = Key256::from_bytes([7; 32]);
    wrapper.add_version(&id, [7; 32]);
    let (header, body) = seal_detached(&wrapper, &id, &ctx(), b"data").expect("seal");

    let other_key = Key256::from_bytes([0xEE; 32]);
    let wrap_aad = atrest_envelope::WrapContext::new(&ctx());
    let forged_wrap =
        local::wrap(DEFAULT_PROVIDER, &kek, &id, 1, &other_key, wrap_aad.aad()).expect("wrap");
    let mut forged = header.clone();
    forged[WRAPPED_AT..TAG_AT].copy_from_slice(&forged_wrap);
    let mut tag = [0u8; 32];
    DEFAULT_PROVIDER
        .hkdf_sha256
        .derive(
            &header[10..42],
            other_key.expose_secret(),
            &[b"atrest envelope v1 header tag", &forged[..COUNT_AT]],
            &mut tag,
        )
        .expect("hkdf");
    forged[TAG_AT..].copy_from_slice(&tag);

    let parsed = Header::parse(&forged).expect("well-formed");
    assert!(matches!(
        Opener::new(&parsed, &wrapper, &ctx(), &Options::default()),
        Err(Error::CommitmentMismatch)
    ));
    assert!(matches!(
        open_detached(&wrapper, &ctx(), &forged, &body),
        Err(Error::CommitmentMismatch)
    ));
    // The unforged header still opens.
    assert_eq!(
        open_detached(&wrapper, &ctx(), &header, &body).expect("opens"),
        b"data"
    );
}
