//! Property tests: header round trips for random contexts and key sets, and blob round trips
//! at segment boundaries.

mod common;

use atrest_envelope::fuzzing::TestWrapper;
use atrest_envelope::{Context, Header, KeyId, Options, Sealer, open};
use proptest::prelude::*;

fn contexts() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 1..20),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn header_round_trip(
        pairs in contexts(),
        names in prop::collection::btree_set("[a-z0-9-]{1,30}", 1..=8),
        segment_size in 4096u32..=(1 << 20),
    ) {
        let mut context = Context::new();
        for (k, v) in &pairs {
            // Duplicate keys are a misuse error; keep the first.
            if let Ok(c) = context.clone().with(k, v) {
                context = c;
            }
        }
        let wrapper = TestWrapper::new();
        let ids: Vec<KeyId> = names.iter().map(|n| KeyId::new(n.as_str()).expect("valid")).collect();
        for id in &ids {
            wrapper.rotate(id);
        }
        let options = Options::default().segment_size(segment_size).expect("valid");
        let sealer = Sealer::new(&wrapper, &ids, &context, &options).expect("seal");
        let bytes = sealer.header_bytes().to_vec();
        let parsed = Header::parse(&bytes).expect("parses");
        prop_assert_eq!(&parsed, sealer.header());
        prop_assert_eq!(parsed.to_bytes(), bytes.clone());
        prop_assert_eq!(parsed.len(), bytes.len());
        prop_assert_eq!(parsed.context(), &context);
        prop_assert_eq!(parsed.wrapped_keys().len(), ids.len());
        let mut reader = &bytes[..];
        prop_assert_eq!(Header::read_from(&mut reader).expect("reads"), parsed);
        prop_assert!(reader.is_empty());
    }

    #[test]
    fn blob_round_trip_at_segment_boundaries(k in 0usize..4, delta in 0usize..3) {
        let len = (k * 4096 + delta).saturating_sub(1);
        let (wrapper, id) = common::keyring();
        let data = common::plaintext(len);
        let options = Options::default().segment_size(4096).expect("valid");
        let object = Sealer::new(&wrapper, std::slice::from_ref(&id), &common::context(), &options)
            .and_then(|s| s.seal_attached(&data))
            .expect("seal");
        prop_assert_eq!(open(&wrapper, &common::context(), &object).expect("open"), data);
    }
}
