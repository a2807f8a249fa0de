//! Thread identities for owner-tracking futex words: who this thread is, and whether the
//! thread a word names is still alive.
//!
//! A thread is named by its TID and its start time (`/proc/TID/stat`, field 22, in clock
//! ticks since boot). The TID alone is not enough: the kernel hands TIDs out again once they
//! wrap around `pid_max` (32768 on many systems), so a TID found alive may belong to a newer
//! thread. The pair is unique for as long as the machine runs.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::process::Pid;

/// A thread as the kernel knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadId {
    /// The thread's id (`gettid`).
    pub(crate) tid: u32,
    /// Its start time in clock ticks since boot, plus one; 0 when unknown (no `/proc`).
    pub(crate) start: u64,
}

/// Whether a thread still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// It runs, or there is no way to tell that it does not.
    Alive,
    /// It has exited (or is a zombie), or its TID now names a newer thread.
    Dead,
}

/// The calling thread, cached per thread.
///
/// The cache is renewed in a child after `fork`, which keeps the parent's thread-locals but
/// not its TID: a page marked `MADV_WIPEONFORK` reads as zero in the child, which tells the
/// child to look itself up again. Without that page (kernels before 4.14) the process id is
/// asked of the kernel on every call instead.
#[inline]
pub(crate) fn current_thread() -> ThreadId {
    thread_local! {
        static ME: Cell<(u64, ThreadId)> = const { Cell::new((0, ThreadId { tid: 0, start: 0 })) };
    }
    let epoch = process_epoch();
    ME.with(|me| {
        let (cached_epoch, id) = me.get();
        if cached_epoch == epoch && id.tid != 0 {
            return id;
        }
        let id = look_up_current_thread();
        me.set((epoch, id));
        id
    })
}

/// This process, named as a thread is: its pid (the TID of its main thread) and its start
/// time. [`liveness`] answers for it as for a thread.
pub(crate) fn current_process() -> ThreadId {
    ThreadId {
        tid: std::process::id(),
        start: read_stat("/proc/self/stat").map_or(0, |s| s.start + 1),
    }
}

/// Asks the kernel who the calling thread is; once per thread (and after a `fork`).
#[cold]
fn look_up_current_thread() -> ThreadId {
    ThreadId {
        tid: rustix::thread::gettid().as_raw_pid() as u32,
        start: read_stat("/proc/thread-self/stat").map_or(0, |s| s.start + 1),
    }
}

/// Whether `owner` still runs.
///
/// Reads `/proc/TID/stat`: a missing entry, a zombie, or a start time other than the one
/// recorded means the owner is gone. When `/proc` hides the thread (mounted with `hidepid`,
/// or not mounted) `kill(TID, 0)` decides: `ESRCH` means gone, anything else alive.
///
/// # References
/// - [`proc_pid_stat(5)`](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)
/// - [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html)
pub(crate) fn liveness(owner: ThreadId) -> Liveness {
    if owner.tid == 0 {
        return Liveness::Dead;
    }
    match read_stat(&format!("/proc/{}/stat", owner.tid)) {
        Some(stat) => {
            let zombie = matches!(stat.state, b'Z' | b'X' | b'x');
            let reborn = owner.start != 0 && stat.start + 1 != owner.start;
            if zombie || reborn {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        }
        None => {
            let Some(pid) = i32::try_from(owner.tid).ok().and_then(Pid::from_raw) else {
                return Liveness::Dead;
            };
            match rustix::process::test_kill_process(pid) {
                Err(Errno::SRCH) => Liveness::Dead,
                _ => Liveness::Alive,
            }
        }
    }
}

/// The user ids of a running process (real, effective, saved, file system) from
/// `/proc/PID/status`; `None` when they cannot be read.
pub(crate) fn process_uids(pid: u32) -> Option<[u32; 4]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_ascii_whitespace().map(|n| n.parse::<u32>().ok());
    Some([ids.next()??, ids.next()??, ids.next()??, ids.next()??])
}

/// The fields of `/proc/TID/stat` that matter here.
struct Stat {
    state: u8,
    start: u64,
}

fn read_stat(path: &str) -> Option<Stat> {
    let text = std::fs::read(path).ok()?;
    parse_stat(&text)
}

/// Parses `pid (comm) state ppid … starttime …`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // After the state (field 3) come fields 4..; starttime is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some(Stat { state, start })
}

/// A number that differs between this process and any child it forks without `exec`.
#[inline]
fn process_epoch() -> u64 {
    /// The word of [`wipe_on_fork_word`]; null until first use.
    static WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
    /// Set when the kernel has no `MADV_WIPEONFORK`.
    static NO_WORD: AtomicBool = AtomicBool::new(false);
    let getpid = || rustix::process::getpid().as_raw_pid() as u64;
    let mut ptr = WORD.load(Ordering::Acquire);
    if ptr.is_null() {
        if NO_WORD.load(Ordering::Relaxed) {
            return getpid();
        }
        match wipe_on_fork_word() {
            Some(word) => {
                let mine = std::ptr::from_ref(word).cast_mut();
                // Racing threads may each make a page; one wins, the others' pages leak
                // (a page each, once).
                ptr = match WORD.compare_exchange(
                    std::ptr::null_mut(),
                    mine,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => mine,
                    Err(winner) => winner,
                };
            }
            None => {
                NO_WORD.store(true, Ordering::Relaxed);
                return getpid();
            }
        }
    }
    // SAFETY: a non-null `WORD` was made from a `&'static AtomicU64` (a page that is never
    // unmapped), so it is valid, aligned and initialized for the life of the process, and
    // only shared references to it exist.
    let word = unsafe { &*ptr };
    match word.load(Ordering::Relaxed) {
        0 => {
            // First use, or the first use in a forked child (the page was wiped): the pid
            // is the epoch; every thread that races here computes the same one.
            let pid = getpid();
            match word.compare_exchange(0, pid, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => pid,
                Err(now) => now,
            }
        }
        epoch => epoch,
    }
}

/// A word on a private page that the kernel zeroes in a forked child, leaked for the life of
/// the process; `None` when the kernel does not support `MADV_WIPEONFORK`.
///
/// # References
/// - [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html), `MADV_WIPEONFORK`
fn wipe_on_fork_word() -> Option<&'static AtomicU64> {
    use rustix::mm::{Advice, MapFlags, ProtFlags};
    let len = rustix::param::page_size();
    // SAFETY: a fresh anonymous mapping at an address the kernel picks touches no existing
    // memory.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: `ptr..ptr + len` is the mapping just made, which nothing else uses.
    let advised = unsafe { rustix::mm::madvise(ptr, len, Advice::LinuxWipeOnFork) };
    if advised.is_err() {
        // SAFETY: the mapping is ours and no reference into it was handed out.
        let _ = unsafe { rustix::mm::munmap(ptr, len) };
        return None;
    }
    // SAFETY: the page is readable and writable, page-aligned (so aligned for `AtomicU64`),
    // zero-filled (a valid `AtomicU64`), never unmapped (so valid for `'static`), and only
    // ever reached through this shared reference.
    Some(unsafe { &*ptr.cast::<AtomicU64>() })
}

/// The CPU the calling thread runs on now (it may move at any time; a hint).
///
/// # References
/// - [`getcpu(2)`](https://man7.org/linux/man-pages/man2/getcpu.2.html)
pub(crate) fn current_cpu() -> u32 {
    rustix::thread::sched_getcpu() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = b"4242 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.start, 987654);
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"1 (x) S 1 2").is_none());
    }

    #[test]
    fn this_thread_is_alive_and_distinct_from_others() {
        let me = current_thread();
        assert_ne!(me.tid, 0);
        assert_ne!(me.start, 0, "/proc is mounted in the test environment");
        assert_eq!(current_thread(), me, "cached");
        assert_eq!(liveness(me), Liveness::Alive);
        let other = std::thread::spawn(current_thread).join().unwrap();
        assert_ne!(other.tid, me.tid);
        // The thread has exited: its TID goes away (or, at worst, names a newer thread)
        // once the kernel has released it, a moment after the join.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while liveness(other) == Liveness::Alive {
            assert!(
                std::time::Instant::now() < deadline,
                "{other:?} still alive"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let reborn = ThreadId {
            tid: me.tid,
            start: me.start + 1,
        };
        assert_eq!(liveness(reborn), Liveness::Dead, "a different start time");
    }
}
