//! Heartbeat (issue 16): the time-driven upkeep that lets idle memory go back
//! while a program runs only fast paths, without a thread of its own.
//!
//! Every thread cache counts its fast-path frees down (`tcache`: one
//! decrement and one sign test on the free fast path); every
//! `FREES_PER_BEAT` frees (`FREES_PER_IDLE_BEAT` while nothing is left to
//! give back) the thread calls `on_beat`, which reads the coarse clock and,
//! once per `period_ms` for the whole process, runs a pass: owners
//! whose threads are all gone have what they still keep put back into their
//! spans (`owner::collect_departed`), then every page heap's decay epoch that
//! is over ends (`page_heap::decay_tick`) and cached large mappings unused for
//! the decay period are unmapped (`large::decay_tick`). The background purge
//! thread, when it is on, runs the same pass (`pass`) on its own clock.
//! `HZ3_HEARTBEAT=0` turns the beat off (the free countdown then never
//! reaches zero again), leaving decay to the slow-path beat.
//!
//! Owns: the time of the next pass, the flag that lets one thread at a
//! time run it, and whether anything may be left to give back. Never allocates. A pass takes only the locks of the modules
//! it calls, one at a time, never with another allocator lock held (a beat is
//! taken from `free`, outside every lock).
//! Must not touch thread caches, central caches, inboxes or spans (`tcache`,
//! `central`, `inbox`, `span`, `outbox`); it reaches them only through
//! `owner`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::options;
use crate::os;

/// Fast-path frees of one thread between two clock reads while something
/// may be due to go back: a program doing one free per millisecond still
/// beats every 128 ms; a busy one pays a clock read (vDSO) per 128 frees.
pub const FREES_PER_BEAT: i32 = 128;
/// The same while the last pass found nothing left to give back (no free
/// dirty page, no cached large mapping, no departed owner waiting) and
/// nothing was freed to a page heap or the large cache, and no thread
/// exited, since (`wake`); a thread holding this longer countdown gets the
/// short one back at its next slow-path event once something is
/// (`tcache::on_event`).
pub const FREES_PER_IDLE_BEAT: i32 = 2048;

/// `os::now_ms` from which the next pass is due.
static NEXT_PASS_MS: AtomicU64 = AtomicU64::new(0);
/// A thread runs a pass.
static BUSY: AtomicBool = AtomicBool::new(false);
/// Something may be left to give back (see `FREES_PER_IDLE_BEAT`).
static PENDING: AtomicBool = AtomicBool::new(true);

/// Something was freed that a later pass may give back (pages to a page
/// heap, a mapping to the large cache, a thread exited): beats come every
/// `FREES_PER_BEAT` frees again from each thread's next beat on. A load
/// first, so the slow paths that call it do not bounce the line.
#[inline]
pub fn wake() {
    if !PENDING.load(Ordering::Relaxed) {
        PENDING.store(true, Ordering::Relaxed);
    }
}

/// Time between two passes: a quarter of the decay period (10 ms to 1 s), as
/// the background thread wakes; 1 s while decay is off.
pub fn period_ms() -> u64 {
    match options::purge_decay_ms() {
        0 => 1000,
        d => (d / 4).clamp(10, 1000),
    }
}

/// Something may be left to give back (see `FREES_PER_IDLE_BEAT`).
#[inline]
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed)
}

/// A thread's free countdown ran out (`tcache::beat`): runs a pass when one
/// is due. Returns the frees until the thread's next beat (i32::MAX when the
/// heartbeat is off: years of frees between two checks of the option).
pub fn on_beat() -> i32 {
    if !options::heartbeat() {
        return i32::MAX;
    }
    let now = os::now_ms();
    if now >= NEXT_PASS_MS.load(Ordering::Relaxed) {
        pass(now);
    }
    if PENDING.load(Ordering::Relaxed) {
        FREES_PER_BEAT
    } else {
        FREES_PER_IDLE_BEAT
    }
}

/// One pass (see the module comment), unless another thread runs one.
pub fn pass(now: u64) {
    if BUSY.swap(true, Ordering::Acquire) {
        return;
    }
    NEXT_PASS_MS.store(now + period_ms(), Ordering::Relaxed);
    // Cleared before the work: a `wake` during the pass is kept.
    PENDING.store(false, Ordering::Relaxed);
    let waiting = crate::owner::collect_departed();
    crate::page_heap::decay_tick();
    crate::large::decay_tick();
    if waiting || crate::page_heap::any_dirty() || crate::large::cached_bytes() > 0 {
        PENDING.store(true, Ordering::Relaxed);
    }
    BUSY.store(false, Ordering::Release);
}

/// Fork child: only the forking thread survives, so no pass runs (a fork
/// taken while another thread was between two of a pass's locks leaves the
/// flag set).
pub fn after_fork_child() {
    BUSY.store(false, Ordering::Relaxed);
}
