//! A small futex-based mutex for the allocator's slow paths (central caches, page
//! heaps, the large registry). Owns only the lock word; never allocates, never
//! panics. Invariants: the word is 0 (free), 1 (held) or 2 (held, maybe waiters);
//! only the holder moves it back to 0. `reset_after_fork` is for the child of
//! fork, where the only thread left holds every lock (taken in the prepare hook).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

pub struct Mutex {
    word: AtomicU32,
}

impl Mutex {
    pub const fn new() -> Self {
        Mutex {
            word: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn lock(&self) {
        if self
            .word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..64 {
            core::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == 0
                && self
                    .word
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        while self.word.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.word, 2);
        }
    }

    #[inline]
    pub fn unlock(&self) {
        if self.word.swap(0, Ordering::Release) == 2 {
            futex_wake(&self.word);
        }
    }

    /// In a fork child: the lock was held by the forking thread, which is now alone.
    pub fn reset_after_fork(&self) {
        self.word.store(0, Ordering::Relaxed);
    }
}

impl Default for Mutex {
    fn default() -> Self {
        Self::new()
    }
}

fn futex_wait(w: &AtomicU32, val: u32) {
    // SAFETY: FUTEX_WAIT_PRIVATE on a valid, aligned u32; spurious wake-ups are handled by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(w: &AtomicU32) {
    // SAFETY: FUTEX_WAKE_PRIVATE on a valid, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Data guarded by a `Mutex`, reached only through `with`.
pub struct Locked<T> {
    pub lock: Mutex,
    data: UnsafeCell<T>,
}

// SAFETY: all access to `data` happens with `lock` held.
unsafe impl<T: Send> Sync for Locked<T> {}

impl<T> Locked<T> {
    pub const fn new(v: T) -> Self {
        Locked {
            lock: Mutex::new(),
            data: UnsafeCell::new(v),
        }
    }

    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held until after f returns.
        let r = f(unsafe { &mut *self.data.get() });
        self.lock.unlock();
        r
    }
}
