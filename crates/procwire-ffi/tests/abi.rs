//! The C ABI called from Rust, in one process: every technique's calls, the checks on
//! pointers and arguments, and the last error message.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use std::time::Duration;

use procwire_ffi::args::{procwire_bytes_free, PROCWIRE_WAIT_FOREVER};
use procwire_ffi::mailslot::*;
use procwire_ffi::mapping::*;
use procwire_ffi::pipe::*;
use procwire_ffi::status::{procwire_last_error_message, procwire_status_name, ProcwireStatus};
use procwire_ffi::sync::*;
use procwire_testkit::{unique_name, Watchdog};

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next call.
    unsafe { CStr::from_ptr(procwire_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn cname(tag: &str) -> CString {
    CString::new(unique_name(tag)).unwrap()
}

#[test]
fn status_names_and_unknown_codes() {
    let name = |s: i32| {
        // SAFETY: the library returns static NUL-terminated strings.
        unsafe { CStr::from_ptr(procwire_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(ProcwireStatus::Ok as i32), "PROCWIRE_STATUS_OK");
    assert_eq!(
        name(ProcwireStatus::Abandoned as i32),
        "PROCWIRE_STATUS_ABANDONED"
    );
    assert_eq!(name(9999), "PROCWIRE_STATUS_UNKNOWN");
}

#[test]
fn null_pointers_and_bad_arguments_are_refused() {
    let mut server = null_mut();
    // SAFETY: the calls get NULL where the library checks for it.
    unsafe {
        assert_eq!(
            procwire_pipe_server_create(null(), null(), &mut server),
            ProcwireStatus::NullPointer
        );
        assert!(last_error().contains("`name` is NULL"), "{}", last_error());
        let name = cname("ffi-null");
        assert_eq!(
            procwire_pipe_server_create(name.as_ptr(), null(), null_mut()),
            ProcwireStatus::NullPointer
        );
        assert!(server.is_null(), "no output on failure");
        assert_eq!(procwire_mutex_lock(null(), 0), ProcwireStatus::NullPointer);
        assert_eq!(procwire_pipe_server_free(null_mut()), ProcwireStatus::Ok);
        let bad = CString::new(vec![0xff, 0xfe]).unwrap();
        assert_eq!(
            procwire_mutex_create(bad.as_ptr(), &mut null_mut()),
            ProcwireStatus::InvalidUtf8
        );
        let mut options = std::mem::zeroed::<ProcwirePipeOptions>();
        assert_eq!(procwire_pipe_options_init(&mut options), ProcwireStatus::Ok);
        options.direction = 77;
        assert_eq!(
            procwire_pipe_server_create(name.as_ptr(), &options, &mut server),
            ProcwireStatus::InvalidArgument
        );
        assert!(
            last_error().contains("`direction` is 77"),
            "{}",
            last_error()
        );
        let sem = cname("ffi-sem");
        let mut s = null_mut();
        assert_eq!(
            procwire_semaphore_create(sem.as_ptr(), 0, 1, &mut s),
            ProcwireStatus::Ok
        );
        assert_eq!(
            procwire_semaphore_wait(s, -5),
            ProcwireStatus::InvalidArgument
        );
        procwire_semaphore_free(s);
    }
}

#[test]
fn pipe_round_trip_over_shared_memory() {
    let _watchdog = Watchdog::new(Duration::from_secs(60));
    let name = cname("ffi-pipe");
    // SAFETY: valid arguments throughout; every handle is freed once.
    unsafe {
        let mut options = std::mem::zeroed::<ProcwirePipeOptions>();
        procwire_pipe_options_init(&mut options);
        options.shared_memory = true;
        options.max_message_size = 64;
        let mut server = null_mut();
        assert_eq!(
            procwire_pipe_server_create(name.as_ptr(), &options, &mut server),
            ProcwireStatus::Ok
        );
        let server_addr = server as usize;
        let accepting = std::thread::spawn(move || {
            let mut conn = null_mut();
            let status = procwire_pipe_server_accept(server_addr as *const _, 10_000, &mut conn);
            assert_eq!(status, ProcwireStatus::Ok);
            let (mut data, mut len) = (null_mut(), 0);
            assert_eq!(
                procwire_pipe_recv(conn, PROCWIRE_WAIT_FOREVER, &mut data, &mut len),
                ProcwireStatus::Ok
            );
            assert_eq!(std::slice::from_raw_parts(data, len), b"ping");
            procwire_bytes_free(data, len);
            assert_eq!(
                procwire_pipe_send(conn, b"pong".as_ptr(), 4),
                ProcwireStatus::Ok
            );
            let mut peer = ProcwirePeerCredentials::default();
            assert!(procwire_pipe_peer_credentials(conn, &mut peer));
            assert_eq!(peer.pid, std::process::id());
            conn as usize
        });
        let mut client_options = std::mem::zeroed::<ProcwireClientOptions>();
        procwire_client_options_init(&mut client_options);
        client_options.read_mode = ProcwirePipeMode::Message as u32;
        client_options.shared_memory = true;
        let mut client = null_mut();
        assert_eq!(
            procwire_pipe_open(name.as_ptr(), &client_options, &mut client),
            ProcwireStatus::Ok
        );
        assert!(procwire_pipe_is_shared_memory(client));
        assert_eq!(
            procwire_pipe_send(client, b"ping".as_ptr(), 4),
            ProcwireStatus::Ok
        );
        let mut buf = [0u8; 2];
        let (mut len, mut complete) = (0, true);
        assert_eq!(
            procwire_pipe_recv_into(client, buf.as_mut_ptr(), 2, &mut len, &mut complete),
            ProcwireStatus::Ok
        );
        assert_eq!((&buf[..len], complete), (&b"po"[..], false));
        assert_eq!(
            procwire_pipe_recv_into(client, buf.as_mut_ptr(), 2, &mut len, &mut complete),
            ProcwireStatus::Ok
        );
        assert_eq!((&buf[..len], complete), (&b"ng"[..], true));
        let big = [7u8; 65];
        assert_eq!(
            procwire_pipe_send(client, big.as_ptr(), big.len()),
            ProcwireStatus::MessageTooLarge
        );
        assert!(
            last_error().contains("larger than the maximum of 64 bytes"),
            "{}",
            last_error()
        );
        let (mut data, mut n) = (null_mut(), 0);
        assert_eq!(
            procwire_pipe_recv(client, 0, &mut data, &mut n),
            ProcwireStatus::Timeout
        );
        let conn = accepting.join().unwrap() as *mut ProcwirePipeConnection;
        procwire_pipe_connection_free(conn);
        assert_eq!(
            procwire_pipe_recv(client, 10_000, &mut data, &mut n),
            ProcwireStatus::Disconnected
        );
        procwire_pipe_connection_free(client);
        procwire_pipe_server_free(server);
        let mut exists = true;
        assert_eq!(
            procwire_pipe_exists(name.as_ptr(), &mut exists),
            ProcwireStatus::Ok
        );
        assert!(!exists);
    }
}

#[test]
fn mailslot_info_read_and_buffer_too_small() {
    let name = cname("ffi-slot");
    // SAFETY: valid arguments throughout; every handle is freed once.
    unsafe {
        let mut options = std::mem::zeroed::<ProcwireMailslotOptions>();
        procwire_mailslot_options_init(&mut options);
        options.read_timeout_ms = 0;
        let mut slot = null_mut();
        assert_eq!(
            procwire_mailslot_create(name.as_ptr(), &options, &mut slot),
            ProcwireStatus::Ok
        );
        let mut writer = null_mut();
        assert_eq!(
            procwire_mailslot_writer_open(name.as_ptr(), 1000, &mut writer),
            ProcwireStatus::Ok
        );
        for m in [&b"hello"[..], b"mailslot"] {
            assert_eq!(
                procwire_mailslot_write(writer, m.as_ptr(), m.len()),
                ProcwireStatus::Ok
            );
        }
        let mut info = ProcwireMailslotInfo::default();
        assert_eq!(procwire_mailslot_info(slot, &mut info), ProcwireStatus::Ok);
        assert_eq!(
            (
                info.waiting,
                info.has_next,
                info.next_size,
                info.read_timeout_ms
            ),
            (2, true, 5, 0)
        );
        let mut small = [0u8; 2];
        let mut len = 0;
        assert_eq!(
            procwire_mailslot_read_into(slot, small.as_mut_ptr(), 2, &mut len),
            ProcwireStatus::BufferTooSmall
        );
        let (mut data, mut n) = (null_mut(), 0);
        assert_eq!(
            procwire_mailslot_read(slot, PROCWIRE_SLOT_TIMEOUT, &mut data, &mut n),
            ProcwireStatus::Ok
        );
        assert_eq!(std::slice::from_raw_parts(data, n), b"hello");
        procwire_bytes_free(data, n);
        assert_eq!(
            procwire_mailslot_read(slot, 1000, &mut data, &mut n),
            ProcwireStatus::Ok
        );
        procwire_bytes_free(data, n);
        assert_eq!(
            procwire_mailslot_read(slot, 0, &mut data, &mut n),
            ProcwireStatus::Timeout
        );
        procwire_mailslot_writer_free(writer);
        procwire_mailslot_free(slot);
    }
}

#[test]
fn file_backed_mapping_read_write_and_pointer() {
    let name = cname("ffi-map");
    let path = std::env::temp_dir().join(format!("{}.bin", unique_name("ffi-map")));
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: valid arguments throughout; every handle is freed once; the pointer is used
    // within the mapping's length while it lives.
    unsafe {
        let mut options = std::mem::zeroed::<ProcwireMappingOptions>();
        procwire_mapping_options_init(&mut options);
        options.file_path = cpath.as_ptr();
        let mut m = null_mut();
        assert_eq!(
            procwire_mapping_create(name.as_ptr(), 4096, &options, &mut m),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_mapping_len(m), 4096);
        assert!(procwire_mapping_is_writable(m));
        assert_eq!(
            procwire_mapping_write(m, 10, b"file".as_ptr(), 4),
            ProcwireStatus::Ok
        );
        assert_eq!(
            procwire_mapping_write(m, 4094, b"file".as_ptr(), 4),
            ProcwireStatus::OutOfRange
        );
        *procwire_mapping_ptr(m) = b'!';
        assert_eq!(procwire_mapping_flush(m), ProcwireStatus::Ok);
        let mut reader = null_mut();
        assert_eq!(
            procwire_mapping_open(name.as_ptr(), ProcwireAccess::Read as u32, &mut reader),
            ProcwireStatus::Ok
        );
        assert!(!procwire_mapping_is_writable(reader));
        let mut buf = [0u8; 4];
        assert_eq!(
            procwire_mapping_read(reader, 10, buf.as_mut_ptr(), 4),
            ProcwireStatus::Ok
        );
        assert_eq!(&buf, b"file");
        assert_eq!(
            procwire_mapping_write(reader, 0, b"x".as_ptr(), 1),
            ProcwireStatus::NotPermitted
        );
        procwire_mapping_free(reader);
        procwire_mapping_free(m);
    }
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!((on_disk[0], &on_disk[10..14]), (b'!', &b"file"[..]));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn mutex_belongs_to_the_locking_thread() {
    let _watchdog = Watchdog::new(Duration::from_secs(60));
    let name = cname("ffi-mutex");
    // SAFETY: valid arguments throughout; the handle is freed once, after the thread that
    // used it has ended.
    unsafe {
        let mut m = null_mut();
        assert_eq!(
            procwire_mutex_create(name.as_ptr(), &mut m),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_mutex_unlock(m), ProcwireStatus::NotPermitted);
        assert_eq!(procwire_mutex_lock(m, 1000), ProcwireStatus::Ok);
        assert_eq!(procwire_mutex_lock(m, 1000), ProcwireStatus::WouldDeadlock);
        let addr = m as usize;
        std::thread::spawn(move || {
            let m = addr as *const ProcwireMutex;
            assert_eq!(procwire_mutex_unlock(m), ProcwireStatus::NotPermitted);
            assert_eq!(procwire_mutex_lock(m, 50), ProcwireStatus::Timeout);
        })
        .join()
        .unwrap();
        assert_eq!(procwire_mutex_unlock(m), ProcwireStatus::Ok);
        assert_eq!(procwire_mutex_free(m), ProcwireStatus::Ok);
    }
}

#[test]
fn semaphore_and_event() {
    let _watchdog = Watchdog::new(Duration::from_secs(60));
    // SAFETY: valid arguments throughout; every handle is freed once.
    unsafe {
        let name = cname("ffi-sem");
        let mut s = null_mut();
        assert_eq!(
            procwire_semaphore_create(name.as_ptr(), 1, 2, &mut s),
            ProcwireStatus::Ok
        );
        let mut other = null_mut();
        assert_eq!(
            procwire_semaphore_open(name.as_ptr(), &mut other),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_semaphore_wait(other, 0), ProcwireStatus::Ok);
        assert_eq!(procwire_semaphore_wait(s, 10), ProcwireStatus::Timeout);
        let mut previous = 99;
        assert_eq!(
            procwire_semaphore_release(s, 2, &mut previous),
            ProcwireStatus::Ok
        );
        assert_eq!((previous, procwire_semaphore_count(other)), (0, 2));
        assert_eq!(
            procwire_semaphore_release(s, 1, null_mut()),
            ProcwireStatus::OverRelease
        );
        procwire_semaphore_free(other);
        procwire_semaphore_free(s);

        let name = cname("ffi-event");
        let mut e = null_mut();
        assert_eq!(
            procwire_event_create(name.as_ptr(), true, false, &mut e),
            ProcwireStatus::Ok
        );
        let mut opened = null_mut();
        assert_eq!(
            procwire_event_open(name.as_ptr(), &mut opened),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_event_wait(opened, 10), ProcwireStatus::Timeout);
        assert_eq!(procwire_event_set(e), ProcwireStatus::Ok);
        assert!(procwire_event_is_set(opened));
        assert_eq!(
            procwire_event_wait(opened, PROCWIRE_WAIT_FOREVER),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_event_reset(e), ProcwireStatus::Ok);
        assert!(!procwire_event_is_set(opened));
        let mut wrong = null_mut();
        assert_eq!(
            procwire_mutex_open(name.as_ptr(), &mut wrong),
            ProcwireStatus::WrongKind
        );
        procwire_event_free(opened);
        procwire_event_free(e);
    }
}
