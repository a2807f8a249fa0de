//! Pass and fail compile tests of `#[remote]`.

#[test]
fn remote_attribute() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
