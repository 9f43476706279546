//! Property tests: no `.bin` makes the reader panic or allocate without bound. Arbitrary
//! bytes, the InsightFace fixture with bytes flipped, cut or spliced, and pickles of values of
//! every shape (right and wrong) all give a `BinSet` or an error naming the file.

use std::path::{Path, PathBuf};

use arcface_eval::bin::parse_bin;
use proptest::prelude::*;
use serde_pickle::Value;

fn fixture() -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::read(dir.join("mini.bin")).unwrap()
}

/// Pickle values of the shapes a verification set might (wrongly) hold.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(inner, 0..6).prop_map(Value::Tuple),
        ]
    })
}

fn check(bytes: &[u8]) {
    let path = Path::new("hostile.bin");
    match parse_bin(bytes, path) {
        Ok(set) => {
            assert_eq!(set.images.len(), 2 * set.num_pairs());
            // The size check reads each image's header: must not panic either.
            let _ = set.image_size(path);
        }
        Err(e) => assert!(e.to_string().contains("hostile.bin"), "{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn a_mutated_fixture_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = fixture();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        check(&bytes);
    }

    #[test]
    fn pickles_of_any_shape_never_panic(v in value()) {
        let bytes = serde_pickle::value_to_vec(&v, serde_pickle::SerOptions::new()).unwrap();
        check(&bytes);
    }
}
