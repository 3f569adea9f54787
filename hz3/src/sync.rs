//! A small futex-based mutex for the allocator's slow paths (central caches, page
//! heaps, the large registry). Owns only the lock word; never allocates, never
//! panics. Invariants: the word is 0 (free), 1 (held) or 2 (held, maybe waiters);
//! only the holder moves it back to 0. `reset_after_fork` is for the child of
//! fork, where the only thread left holds every lock (taken in the prepare hook).
//! Must not touch allocator state (`arena`, `tcache`, `central`).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

/// The lock word and its futex: `AtomicU32` with the futex system calls in the
/// allocator; a loom model (atomic + condition variable) in the loom tests.
pub trait FutexWord {
    /// Spins before sleeping in `lock_contended`.
    const SPINS: u32;
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, val: u32, order: Ordering);
    fn swap(&self, val: u32, order: Ordering) -> u32;
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    /// Sleeps while the word is `val` (spurious wake-ups allowed).
    fn wait(&self, val: u32);
    /// Wakes one sleeper.
    fn wake_one(&self);
}

impl FutexWord for AtomicU32 {
    const SPINS: u32 = 64;
    #[inline(always)]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline(always)]
    fn store(&self, val: u32, order: Ordering) {
        AtomicU32::store(self, val, order)
    }
    #[inline(always)]
    fn swap(&self, val: u32, order: Ordering) -> u32 {
        AtomicU32::swap(self, val, order)
    }
    #[inline(always)]
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, success, failure)
    }
    fn wait(&self, val: u32) {
        futex_wait(self, val)
    }
    fn wake_one(&self) {
        futex_wake(self)
    }
}

/// The allocator's lock (`Mutex<AtomicU32>`).
pub struct Mutex<W = AtomicU32> {
    word: W,
}

impl Mutex {
    pub const fn new() -> Self {
        Mutex {
            word: AtomicU32::new(0),
        }
    }
}

impl<W: FutexWord> Mutex<W> {
    /// A lock over another lock word (the loom model's).
    #[cfg(all(test, loom))]
    pub fn with_word(word: W) -> Self {
        Mutex { word }
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
        for _ in 0..W::SPINS {
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
            self.word.wait(2);
        }
    }

    #[inline]
    pub fn unlock(&self) {
        if self.word.swap(0, Ordering::Release) == 2 {
            self.word.wake_one();
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

/// loom models of the lock (`.ci/run-loom.sh`): mutual exclusion (a critical
/// section's accesses are tracked by loom) and no lost wake-up (loom reports a
/// deadlock when every thread sleeps), under every interleaving. The futex is
/// modelled as the kernel implements it: compare-and-sleep and wake under one
/// internal lock.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{FutexWord, Mutex};
    use core::sync::atomic::Ordering;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicU32;
    use loom::sync::{Arc, Condvar, Mutex as LoomMutex};
    use loom::thread;

    struct LoomFutex {
        word: AtomicU32,
        bucket: LoomMutex<()>,
        sleepers: Condvar,
    }

    impl FutexWord for LoomFutex {
        const SPINS: u32 = 1;
        fn load(&self, order: Ordering) -> u32 {
            self.word.load(order)
        }
        fn store(&self, val: u32, order: Ordering) {
            self.word.store(val, order)
        }
        fn swap(&self, val: u32, order: Ordering) -> u32 {
            self.word.swap(val, order)
        }
        fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            self.word.compare_exchange(current, new, success, failure)
        }
        fn wait(&self, val: u32) {
            let g = self.bucket.lock().unwrap();
            if self.word.load(Ordering::SeqCst) == val {
                drop(self.sleepers.wait(g).unwrap());
            }
        }
        fn wake_one(&self) {
            let _g = self.bucket.lock().unwrap();
            self.sleepers.notify_one();
        }
    }

    fn new_lock() -> Mutex<LoomFutex> {
        Mutex::with_word(LoomFutex {
            word: AtomicU32::new(0),
            bucket: LoomMutex::new(()),
            sleepers: Condvar::new(),
        })
    }

    fn run(threads: usize, rounds: usize) {
        let mut b = loom::model::Builder::new();
        if b.preemption_bound.is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(move || {
            let shared = Arc::new((new_lock(), UnsafeCell::new(0usize)));
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let s = shared.clone();
                    thread::spawn(move || {
                        for _ in 0..rounds {
                            s.0.lock();
                            // Unsynchronised if the lock failed to exclude: loom reports it.
                            s.1.with_mut(|v| unsafe { *v += 1 });
                            s.0.unlock();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let n = shared.1.with(|v| unsafe { *v });
            assert_eq!(n, threads * rounds);
        });
    }

    /// Three threads, one critical section each: every contention pattern of
    /// the fast path, the spin and the futex sleep.
    #[test]
    fn loom_mutex_three_threads() {
        run(3, 1);
    }

    /// Two threads, two rounds each: re-locking after a wake-up.
    #[test]
    fn loom_mutex_two_threads_two_rounds() {
        run(2, 2);
    }
}
