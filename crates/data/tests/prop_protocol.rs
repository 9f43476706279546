//! Property tests: no text, however hostile, makes the LFW protocol parsers panic or allocate
//! without bound; each either parses or returns an error naming the file. Inputs are arbitrary
//! strings and, to reach past the header checks, protocol-shaped lines built from tokens a
//! damaged or hand-edited file holds (huge, negative and zero counts, paths, odd whitespace).

use std::path::Path;

use arcface_data::protocol::{parse_names, parse_pairs, parse_people_folds, parse_people_list};
use arcface_data::{DataError, Protocol};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z][a-z]{0,6}_[A-Z][a-z]{0,6}",
        (0u64..12).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("..".to_string()),
        Just("a/b".to_string()),
        Just("\u{feff}".to_string()),
        "\\PC{1,4}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    (prop::collection::vec(token(), 0..5), prop_oneof![Just(" "), Just("\t"), Just("  \t ")])
        .prop_map(|(t, sep)| t.join(sep))
}

fn protocol_text() -> impl Strategy<Value = String> {
    (line(), prop::collection::vec(line(), 0..24), prop_oneof![Just("\n"), Just("\r\n")])
        .prop_map(|(head, body, nl)| std::iter::once(head).chain(body).collect::<Vec<_>>().join(nl))
}

/// Every parser on `text`: an error must name the file.
fn check(text: &str) {
    let path = Path::new("hostile.txt");
    let results = [
        parse_pairs(text, path).map(|_| ()),
        parse_people_folds(text, path).map(|_| ()),
        parse_people_list(text, path).map(|_| ()),
        parse_names(text, path).map(|_| ()),
    ];
    for r in results {
        if let Err(e @ DataError::Parse { .. }) = r {
            assert!(e.to_string().contains("hostile.txt"), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check(&text);
    }

    #[test]
    fn protocol_shaped_text_never_panics(text in protocol_text()) {
        check(&text);
    }

    #[test]
    fn protocol_names_never_panic(s in prop_oneof!["\\PC{0,12}", "view2:[0-9]{0,25}", "view2:-?[0-9]{1,3}"]) {
        if let Ok(p) = s.parse::<Protocol>() {
            // What parses prints back as itself (the one spelling of configs, flags and run folders).
            prop_assert_eq!(p.to_string().parse::<Protocol>().unwrap(), p);
        }
    }
}

/// Found by `protocol_shaped_text_never_panics` (in CI): a pairs header of 2^64 - 1 folds with
/// 0 pairs each looped over the empty folds for ever.
#[test]
fn empty_folds_by_the_billion_end_at_once() {
    let p = parse_pairs("18446744073709551615 0\n", Path::new("pairs.txt")).unwrap();
    assert!(p.pairs.is_empty());
}

/// Found by `protocol_shaped_text_never_panics`: a fold count of 2^64 - 1 reserved that many
/// folds up front and aborted the process ("capacity overflow").
#[test]
fn a_huge_fold_count_is_an_error_not_an_abort() {
    let e = parse_people_folds("18446744073709551615\n1\nAbel_Pacheco 1\n", Path::new("people.txt")).unwrap_err();
    assert!(e.to_string().contains("people.txt"), "{e}");
}
