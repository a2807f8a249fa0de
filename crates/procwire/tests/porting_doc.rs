//! docs/porting.md proves each difference it states with a test it names, as
//! `` `FILE.rs`: `test_a`, `test_b` ``: every name must be a test function of that file
//! (under `crates/procwire/tests/` unless the file is given as a path from the root), so
//! that the page cannot point at a test that was renamed or removed.

use std::path::Path;

const PAGE: &str = include_str!("../../../docs/porting.md");

/// The `(file, test)` pairs the page names, in order.
fn named_tests() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in PAGE.lines() {
        let mut file: Option<String> = None;
        // Odd pieces are the backticked ones.
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 0 {
                // Plain text: a file's list of tests continues only across ", " and ": ".
                let joins = matches!(piece.trim(), ":" | "," | "");
                if !joins {
                    file = None;
                }
                continue;
            }
            if piece.ends_with(".rs") {
                file = Some(piece.to_owned());
            } else if let Some(file) = &file {
                pairs.push((file.clone(), piece.to_owned()));
            }
        }
    }
    pairs
}

#[test]
fn every_test_the_porting_page_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pairs = named_tests();
    assert!(pairs.len() >= 30, "the page names {} tests", pairs.len());
    for (file, test) in pairs {
        let path = if file.contains('/') {
            root.join(&file)
        } else {
            root.join("crates/procwire/tests").join(&file)
        };
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("docs/porting.md names {file}: {e}"));
        assert!(
            source.contains(&format!("fn {test}(")),
            "docs/porting.md names `{test}` in {file}, which has no such test"
        );
    }
}
