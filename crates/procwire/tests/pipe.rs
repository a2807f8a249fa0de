//! Named pipes through the library alone: names that lead nowhere or to the wrong kind of
//! object. (Pipes between the library and the `procwire` binary are tested in the CLI
//! crate; shared-memory pipes between processes in `shm_pipe.rs`.)

use procwire::name::{NameClass, Namespace};
use procwire::pipe::{ClientOptions, PipeError, PipeOptions};
use procwire_testkit::unique_name;

#[test]
fn a_name_of_the_wrong_kind_or_nobody_is_a_clear_error() {
    let name = unique_name("kind");
    let e = ClientOptions::new().open(name.as_str()).unwrap_err();
    assert!(matches!(e, PipeError::NotFound { .. }), "{e}");

    let path = Namespace::Local
        .directory(NameClass::Pipe)
        .unwrap()
        .join(&name);
    std::fs::write(&path, b"not a socket").unwrap();
    let e = ClientOptions::new().open(name.as_str()).unwrap_err();
    assert!(
        matches!(&e, PipeError::WrongKind { found, .. } if found == "a regular file"),
        "{e}"
    );
    let e = PipeOptions::new().create(name.as_str()).unwrap_err();
    assert!(matches!(e, PipeError::WrongKind { .. }), "{e}");
    std::fs::remove_file(&path).unwrap();

    let e = ClientOptions::new()
        .open(format!(r"\\.\mailslot\{name}").as_str())
        .unwrap_err();
    assert!(matches!(e, PipeError::InvalidName(_)), "{e}");
    assert!(e.to_string().contains("mailslot name"), "{e}");
}
