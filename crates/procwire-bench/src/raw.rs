//! The floors that need more than the standard library: a process-shared robust
//! `pthread_mutex_t` in shared memory, and a futex ping-pong.

use std::sync::atomic::{AtomicU32, Ordering};

use procwire::mapping::View;
use rustix::thread::futex;

/// A `pthread_mutex_t` at the start of a view, process-shared and robust.
pub struct PthreadMutex {
    ptr: *mut libc::pthread_mutex_t,
    _view: View,
}

impl PthreadMutex {
    /// Initializes a new mutex at the start of `view`.
    pub fn init(view: View) -> PthreadMutex {
        let ptr = view.as_ptr().cast::<libc::pthread_mutex_t>();
        assert!(view.len() >= std::mem::size_of::<libc::pthread_mutex_t>());
        assert_eq!(
            ptr as usize % std::mem::align_of::<libc::pthread_mutex_t>(),
            0
        );
        // SAFETY: `ptr` is aligned and inside the writable view, which lives as long as the
        // returned value; nobody else uses the memory before `init` returns (a peer is
        // started afterwards); the attribute object is local and destroyed after use.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
            assert_eq!(
                libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                0
            );
            assert_eq!(
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                0
            );
            assert_eq!(libc::pthread_mutex_init(ptr, &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        PthreadMutex { ptr, _view: view }
    }

    /// Uses a mutex another process initialized at the start of `view`.
    ///
    /// # Safety
    ///
    /// The start of `view` must hold a mutex made by [`PthreadMutex::init`] in another
    /// process, alive for as long as the returned value is used.
    pub unsafe fn attach(view: View) -> PthreadMutex {
        let ptr = view.as_ptr().cast::<libc::pthread_mutex_t>();
        PthreadMutex { ptr, _view: view }
    }

    /// Locks the mutex (making it consistent again if its last owner died).
    pub fn lock(&self) {
        // SAFETY: `ptr` points to an initialized process-shared mutex in a mapping that
        // `self` keeps alive.
        let r = unsafe { libc::pthread_mutex_lock(self.ptr) };
        if r == libc::EOWNERDEAD {
            // SAFETY: as above; we hold the mutex after EOWNERDEAD.
            unsafe { libc::pthread_mutex_consistent(self.ptr) };
        } else {
            assert_eq!(r, 0, "pthread_mutex_lock");
        }
    }

    /// Unlocks the mutex, which this thread holds.
    pub fn unlock(&self) {
        // SAFETY: as in `lock`, and this thread holds the mutex.
        let r = unsafe { libc::pthread_mutex_unlock(self.ptr) };
        assert_eq!(r, 0, "pthread_mutex_unlock");
    }
}

/// Sets `word` to 1 and wakes a waiter.
pub fn signal(word: &AtomicU32) {
    word.store(1, Ordering::Release);
    let _ = futex::wake(word, futex::Flags::empty(), 1);
}

/// Waits until `word` is 1, then sets it back to 0.
pub fn wait(word: &AtomicU32) {
    while word.load(Ordering::Acquire) == 0 {
        let _ = futex::wait(word, futex::Flags::empty(), 0, None);
    }
    word.store(0, Ordering::Relaxed);
}
