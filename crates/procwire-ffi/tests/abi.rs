//! The C ABI called from Rust, in one process: every technique's calls, the checks on
//! pointers and arguments, and the last error message.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use std::time::Duration;

use procwire_ffi::args::{procwire_bytes_free, PROCWIRE_WAIT_FOREVER};
use procwire_ffi::handle::*;
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

/// A connected pair on the message pipe `name`: (server end, client end).
///
/// # Safety
///
/// Frees nothing: the caller frees both ends and the server.
unsafe fn connected_pair(
    name: &CString,
    shared_memory: bool,
) -> (
    *mut ProcwirePipeServer,
    *mut ProcwirePipeConnection,
    *mut ProcwirePipeConnection,
) {
    // SAFETY: valid arguments; the handles are the caller's.
    unsafe {
        let mut options = std::mem::zeroed::<ProcwirePipeOptions>();
        procwire_pipe_options_init(&mut options);
        options.shared_memory = shared_memory;
        let mut server = null_mut();
        assert_eq!(
            procwire_pipe_server_create(name.as_ptr(), &options, &mut server),
            ProcwireStatus::Ok
        );
        let name = name.clone();
        let opening = std::thread::spawn(move || {
            let mut client_options = std::mem::zeroed::<ProcwireClientOptions>();
            procwire_client_options_init(&mut client_options);
            client_options.read_mode = ProcwirePipeMode::Message as u32;
            client_options.shared_memory = shared_memory;
            let mut client = null_mut();
            assert_eq!(
                procwire_pipe_open(name.as_ptr(), &client_options, &mut client),
                ProcwireStatus::Ok
            );
            client as usize
        });
        let mut conn = null_mut();
        assert_eq!(
            procwire_pipe_server_accept(server, 10_000, &mut conn),
            ProcwireStatus::Ok
        );
        let client = opening.join().unwrap() as *mut ProcwirePipeConnection;
        (server, conn, client)
    }
}

#[test]
fn sync_objects_pass_and_wrong_kinds_and_bad_arguments_are_refused() {
    let _watchdog = Watchdog::new(Duration::from_secs(60));
    let name = cname("ffi-pass");
    // SAFETY: valid arguments (or NULL where the library checks); every handle is freed
    // once.
    unsafe {
        let (server, conn, client) = connected_pair(&name, false);
        let sem_name = cname("ffi-pass-sem");
        let mut sem = null_mut();
        assert_eq!(
            procwire_semaphore_create(sem_name.as_ptr(), 0, 4, &mut sem),
            ProcwireStatus::Ok
        );
        let mutex_name = cname("ffi-pass-mutex");
        let mut mutex = null_mut();
        assert_eq!(
            procwire_mutex_create(mutex_name.as_ptr(), &mut mutex),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_pipe_send_semaphore(conn, sem), ProcwireStatus::Ok);
        assert_eq!(procwire_pipe_send_mutex(conn, mutex), ProcwireStatus::Ok);

        let (mut handle, mut kind) = (null_mut(), ProcwireHandleKind::None);
        assert_eq!(
            procwire_pipe_recv_handle(client, 10_000, &mut kind, &mut handle),
            ProcwireStatus::Ok
        );
        assert_eq!(kind, ProcwireHandleKind::Semaphore);
        assert_eq!(procwire_passed_handle_kind(handle), kind);
        assert_eq!(
            procwire_passed_handle_access(handle),
            ProcwireAccess::ReadWrite
        );
        assert_eq!(
            CStr::from_ptr(procwire_passed_handle_name(handle))
                .to_str()
                .unwrap(),
            format!(r"Local\{}", sem_name.to_str().unwrap())
        );
        let mut passed_sem = null_mut();
        assert_eq!(
            procwire_passed_handle_into_semaphore(handle, &mut passed_sem),
            ProcwireStatus::Ok
        );
        assert_eq!(
            procwire_passed_handle_kind(handle),
            ProcwireHandleKind::None
        );
        procwire_passed_handle_free(handle);
        // The same count: a release through the passed handle is seen here.
        assert_eq!(
            procwire_semaphore_release(passed_sem, 3, null_mut()),
            ProcwireStatus::Ok
        );
        assert_eq!(procwire_semaphore_count(sem), 3);

        // The mutex, asked for as an event: WRONG_KIND, naming both, and it stays.
        let mut handle = null_mut();
        assert_eq!(
            procwire_pipe_recv_handle(client, 10_000, null_mut(), &mut handle),
            ProcwireStatus::Ok
        );
        let mut event = null_mut();
        assert_eq!(
            procwire_passed_handle_into_event(handle, &mut event),
            ProcwireStatus::WrongKind
        );
        assert!(event.is_null(), "no output on failure");
        assert!(
            last_error().contains("is a mutex `") && last_error().contains("not an event"),
            "{}",
            last_error()
        );
        let mut passed_mutex = null_mut();
        assert_eq!(
            procwire_passed_handle_into_mutex(handle, &mut passed_mutex),
            ProcwireStatus::Ok
        );
        procwire_passed_handle_free(handle);
        assert_eq!(procwire_mutex_lock(passed_mutex, 0), ProcwireStatus::Ok);
        // Held through the passed handle: this one cannot take it (another handle, same
        // thread: the mutex is not recursive).
        assert_ne!(procwire_mutex_lock(mutex, 0), ProcwireStatus::Ok);
        assert_eq!(procwire_mutex_unlock(passed_mutex), ProcwireStatus::Ok);

        // Nothing pending: a receive times out; a message where a handle is awaited is
        // WRONG_FRAME and stays.
        assert_eq!(
            procwire_pipe_recv_handle(client, 0, null_mut(), &mut handle),
            ProcwireStatus::Timeout
        );
        assert_eq!(
            procwire_pipe_send(conn, b"msg".as_ptr(), 3),
            ProcwireStatus::Ok
        );
        assert_eq!(
            procwire_pipe_recv_handle(client, 10_000, null_mut(), &mut handle),
            ProcwireStatus::WrongFrame
        );
        let (mut data, mut len) = (null_mut(), 0);
        assert_eq!(
            procwire_pipe_recv(client, 10_000, &mut data, &mut len),
            ProcwireStatus::Ok
        );
        assert_eq!(std::slice::from_raw_parts(data, len), b"msg");
        procwire_bytes_free(data, len);

        // Bad arguments.
        assert_eq!(
            procwire_pipe_send_file(conn, -1, 0),
            ProcwireStatus::InvalidArgument
        );
        assert_eq!(
            procwire_pipe_send_mutex(conn, null()),
            ProcwireStatus::NullPointer
        );
        assert!(last_error().contains("`mutex` is NULL"), "{}", last_error());
        assert_eq!(
            procwire_pipe_recv_handle(client, 10_000, null_mut(), null_mut()),
            ProcwireStatus::NullPointer
        );
        assert_eq!(
            procwire_passed_handle_into_mapping(null_mut(), &mut null_mut()),
            ProcwireStatus::NullPointer
        );
        assert_eq!(
            procwire_passed_handle_kind(null()),
            ProcwireHandleKind::None
        );
        assert_eq!(procwire_passed_handle_free(null_mut()), ProcwireStatus::Ok);
        assert_eq!(
            procwire_pipe_send_mapping(conn, null(), 7),
            ProcwireStatus::NullPointer
        );

        procwire_mutex_free(passed_mutex);
        procwire_mutex_free(mutex);
        procwire_semaphore_free(passed_sem);
        procwire_semaphore_free(sem);
        procwire_pipe_connection_free(client);
        procwire_pipe_connection_free(conn);
        procwire_pipe_server_free(server);

        // A shared-memory connection cannot carry handles: BAD_HANDLE, saying why.
        let name = cname("ffi-pass-shm");
        let (server, conn, client) = connected_pair(&name, true);
        let event_name = cname("ffi-pass-event");
        let mut event = null_mut();
        assert_eq!(
            procwire_event_create(event_name.as_ptr(), true, false, &mut event),
            ProcwireStatus::Ok
        );
        assert_eq!(
            procwire_pipe_send_event(conn, event),
            ProcwireStatus::BadHandle
        );
        assert!(last_error().contains("shared memory"), "{}", last_error());
        procwire_event_free(event);
        procwire_pipe_connection_free(client);
        procwire_pipe_connection_free(conn);
        procwire_pipe_server_free(server);
    }
}
