//! Heartbeat (issue 16): the time-driven upkeep that lets idle memory go back
//! while a program runs only fast paths, without a thread of its own.
//!
//! Every thread cache counts its fast-path frees down (`tcache`: one
//! decrement and one sign test on the free fast path); every
//! `FREES_PER_BEAT` frees the thread beats: unless a beat of any thread read
//! the clock within the last few million cycles of the time-stamp counter,
//! it reads the coarse clock (`on_beat`) and, once per `period_ms` for the
//! whole process, runs a pass: owners whose threads are all gone have what
//! they still keep put back into their spans (`owner::collect_departed`),
//! then idle classes give back what their central caches keep and every
//! page heap's decay epoch that is over ends (`owner::decay_tick`) and cached large mappings unused for the decay
//! period are unmapped (`large::decay_tick`). The background purge thread,
//! when it is on, runs the same pass (`pass`) on its own clock.
//! `HZ3_HEARTBEAT=0` turns the beat off (the free countdown then never
//! reaches zero again), leaving decay to the slow-path beat.
//!
//! Owns: the time of the next pass, the flag that lets one thread at a time
//! run it, and when the clock was last read. Never allocates. A pass takes
//! only the locks of the modules it calls, one at a time, never with another
//! allocator lock held (a beat is taken from `free`, outside every lock).
//! Must not touch thread caches, central caches, inboxes or spans (`tcache`,
//! `central`, `inbox`, `span`, `outbox`); it reaches them only through the
//! owner records.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::options;
use crate::os;

/// Fast-path frees of one thread between two beats: a program doing one
/// free per millisecond beats every 256 ms, about as often as a pass is due
/// in a lane with a 1 s decay. A beat costs about 15 instructions when the
/// clock was read recently (the callgrind gate's loop): 0.06 per
/// malloc/free pair (0.12 at 128, which took `mem_mstress` to 59.99).
pub const FREES_PER_BEAT: i32 = 256;

/// `os::now_ms` from which the next pass is due.
static NEXT_PASS_MS: AtomicU64 = AtomicU64::new(0);
/// A thread runs a pass.
static BUSY: AtomicBool = AtomicBool::new(false);
/// `cycles()` when a beat last read the clock (any thread).
static CLOCK_READ_AT: AtomicU64 = AtomicU64::new(0);
/// Cycles within which a beat skips the clock because another beat read it
/// (2^22: 1.4 ms at 3 GHz, 4 ms at 1 GHz; the coarse clock moves every 1 to
/// 4 ms). A busy thread beats every microsecond or so and reads the clock
/// about once per millisecond for the whole process.
const CLOCK_SKIP_CYCLES: u64 = 1 << 22;

/// The time-stamp counter where there is a cheap one (x86-64), else None
/// (every beat reads the clock). Only compared with an earlier reading to
/// skip a clock read: a counter that went back or differs between CPUs
/// makes the difference huge, and the beat reads the clock.
#[inline(always)]
fn cycles() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no memory effects.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
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

/// A beat of some thread read the clock within the last
/// `CLOCK_SKIP_CYCLES` (`tcache::beat` then skips `on_beat`).
#[inline(always)]
pub fn clock_read_recently() -> bool {
    match cycles() {
        Some(c) => c.wrapping_sub(CLOCK_READ_AT.load(Ordering::Relaxed)) < CLOCK_SKIP_CYCLES,
        None => false,
    }
}

/// A thread's free countdown ran out and no beat read the clock recently
/// (`tcache::beat`): runs a pass when one is due. Returns the frees until
/// the thread's next beat (i32::MAX when the heartbeat is off: years of
/// frees between two checks of the option).
pub fn on_beat() -> i32 {
    if let Some(c) = cycles() {
        CLOCK_READ_AT.store(c, Ordering::Relaxed);
    }
    if !options::heartbeat() {
        return i32::MAX;
    }
    let now = os::now_ms();
    if now >= NEXT_PASS_MS.load(Ordering::Relaxed) {
        pass(now);
    }
    FREES_PER_BEAT
}

/// One pass (see the module comment), unless another thread runs one.
pub fn pass(now: u64) {
    if BUSY.swap(true, Ordering::Acquire) {
        return;
    }
    NEXT_PASS_MS.store(now + period_ms(), Ordering::Relaxed);
    crate::owner::collect_departed();
    crate::owner::decay_tick();
    crate::large::decay_tick();
    BUSY.store(false, Ordering::Release);
}

/// Fork child: only the forking thread survives, so no pass runs (a fork
/// taken while another thread was between two of a pass's locks leaves the
/// flag set).
pub fn after_fork_child() {
    BUSY.store(false, Ordering::Relaxed);
}
