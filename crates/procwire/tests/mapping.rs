//! File mapping across real processes: helper processes (this test binary, run again with
//! a role) on one side, this process on the other.

use std::time::Duration;

use procwire::mapping::{Mapping, MappingError};
use procwire::registry::NamedObject;
use procwire::security::Access;
use procwire_testkit::{helper, helper_role, say, unique_name, Watchdog};

/// What the seed's server writes.
const SEED_MESSAGE: &str = "Message from the first process";
/// The variable that names a helper's mapping.
const NAME: &str = "PROCWIRE_TEST_NAME";

/// Not a test of its own: the body of the helper processes. Without a role it does nothing.
#[test]
fn helper_process() {
    let Some(role) = helper_role() else {
        return;
    };
    let name = std::env::var(NAME).unwrap();
    match role.as_str() {
        "create-and-hang" => {
            // The seed's server, killed before it can clean up.
            let mapping = Mapping::create(name.as_str(), 3 * 4096 + 10).unwrap();
            let view = mapping.view(4096 + 3, 4096).unwrap();
            view.write_at(0, SEED_MESSAGE.as_bytes()).unwrap();
            say(&format!("READY {}", mapping.shm_name().unwrap()));
            std::thread::sleep(Duration::from_secs(60));
        }
        "open-and-read" => {
            let mapping = Mapping::open(name.as_str(), Access::Read).unwrap();
            let view = mapping.read_only_view(4096, 100).unwrap();
            let text = view.read_vec(3, SEED_MESSAGE.len()).unwrap();
            say(&format!("READ {}", String::from_utf8_lossy(&text)));
        }
        "create-and-drop" => {
            // A create in a process of its own, which sweeps away what dead creators left.
            let mapping = Mapping::create(name.as_str(), 1).unwrap();
            drop(mapping);
            say("CREATED");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_library_server_and_client_share_unaligned_views() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("views");
    let mut server = helper("create-and-hang", &[(NAME, &name)]);
    server.wait_for("READY");
    let mut client = helper("open-and-read", &[(NAME, &name)]);
    let line = client.wait_for("READ");
    assert_eq!(line.trim(), format!("READ {SEED_MESSAGE}"));

    // A writer here, the same bytes seen through two views at different offsets.
    let mapping = Mapping::open(name.as_str(), Access::ReadWrite).unwrap();
    assert_eq!(mapping.size(), 3 * 4096 + 10);
    let a = mapping.view(4096 + 3, 100).unwrap();
    let b = mapping.view(4096, 4096 * 2 + 10).unwrap();
    a.write_at(0, b"Changed").unwrap();
    assert_eq!(b.read_vec(3, 7).unwrap(), b"Changed");
    assert_eq!(b.len(), 8202);
    let e = mapping.view(3 * 4096, 11).unwrap_err();
    assert!(
        matches!(
            e,
            MappingError::OutOfRange {
                offset: 12288,
                len: 11,
                size: 12298,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_creator_killed_with_sigkill_frees_the_name() {
    let _wd = Watchdog::new(Duration::from_secs(60));
    let name = unique_name("killed");
    let mut server = helper("create-and-hang", &[(NAME, &name)]);
    let ready = server.wait_for("READY");
    let shm = ready.trim().strip_prefix("READY ").unwrap().to_owned();
    let pid = server.pid();
    assert!(Mapping::exists(name.as_str()).unwrap());
    let held = Mapping::open(name.as_str(), Access::Read).unwrap();
    server.kill();

    // The creator's death removes the name, as dropping its handle would have. (A create
    // running meanwhile in another test or process may already have swept the dead
    // creator's entry away: then the name is simply not there.)
    let e = Mapping::open(name.as_str(), Access::Read).unwrap_err();
    assert!(
        matches!(&e, MappingError::NotFound { detail, .. }
            if detail.contains(&format!("creator (pid {pid}) has exited"))
                || !detail.contains("creator")),
        "{e}"
    );
    assert!(!Mapping::exists(name.as_str()).unwrap());
    // A handle opened before keeps its memory.
    let view = held.view(4096 + 3, SEED_MESSAGE.len()).unwrap();
    assert_eq!(view.read_vec(0, 7).unwrap(), b"Message");
    // The first create in a new process clears the dead creator's memory out of /dev/shm
    // (unless a create elsewhere got there first: only the end state is certain).
    let shm_path = format!("/dev/shm/{shm}");
    let mut sweeper = helper("create-and-drop", &[(NAME, &unique_name("sweeper"))]);
    sweeper.wait_for("CREATED");
    assert!(sweeper.child.wait().unwrap().success());
    assert!(!std::path::Path::new(&shm_path).exists(), "swept away");
    // The next create clears the leftovers away and starts afresh.
    let fresh = Mapping::create(name.as_str(), 100).unwrap();
    assert_eq!(fresh.size(), 100);
    assert_eq!(fresh.shm_name().unwrap(), shm);
    assert_eq!(
        fresh.view(0, 100).unwrap().read_vec(0, 100).unwrap(),
        vec![0; 100]
    );
}
