//! `include/procwire.h` is what cbindgen generates from this crate today.
//!
//! Regenerate it with `PROCWIRE_BLESS_HEADER=1 cargo test -p procwire-ffi --test header`.

use std::path::Path;

#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = crate_dir.join("include/procwire.h");
    if std::env::var_os("PROCWIRE_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/procwire.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/procwire.h is stale: regenerate it with \
         `PROCWIRE_BLESS_HEADER=1 cargo test -p procwire-ffi --test header` and commit it"
    );
}
