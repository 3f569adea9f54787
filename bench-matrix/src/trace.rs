//! Allocation traces (`.hz3trc`): the format written by
//! `bench-matrix/tracer/hz3trace.c`, its parser and validator, deterministic
//! subsampling, and the replay core the driver's `trace` workload runs.
//!
//! Format (little-endian):
//!
//! ```text
//! header, 48 bytes:
//!   magic "HZ3TRC01", u32 version (1), u16 threads (1..=32),
//!   u16 sample (1, or k when the file keeps about one object in k of the
//!   recording), u64 events, u64 objects, u64 body_len, u64 fnv1a64(body)
//! body, one record per allocator call:
//!   byte op | thread << 3      op 1 malloc, 2 calloc, 3 memalign, 4 free, 5 realloc
//!   malloc, calloc:  LEB128 size                        -> new object
//!   memalign:        byte log2(alignment), LEB128 size  -> new object
//!   free:            LEB128 back                        (id = objects so far - 1 - back)
//!   realloc:         LEB128 back, LEB128 new size (> 0) (the object keeps its id)
//! ```
//!
//! Objects are numbered in allocation order, so a trace holds no address.
//! [`parse`] checks everything: magic, version, lengths, checksum, every
//! record, and that every free or realloc names a live object.

use std::fmt;

pub const MAGIC: &[u8; 8] = b"HZ3TRC01";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 48;
pub const MAX_THREADS: u32 = 32;
/// Largest block size a trace may ask for (the replay keeps sizes in a u32).
pub const MAX_SIZE: u64 = u32::MAX as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Malloc = 1,
    Calloc = 2,
    Memalign = 3,
    Free = 4,
    Realloc = 5,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Malloc,
            2 => Op::Calloc,
            3 => Op::Memalign,
            4 => Op::Free,
            5 => Op::Realloc,
            _ => return None,
        })
    }
    pub fn creates(self) -> bool {
        matches!(self, Op::Malloc | Op::Calloc | Op::Memalign)
    }
}

/// One allocator call. `size` is 0 for a free; `align_log2` is 0 except for memalign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub op: Op,
    pub thread: u8,
    pub align_log2: u8,
    pub id: u32,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub threads: u32,
    /// 1, or k when about one object in k of the recording was kept.
    pub sample: u32,
    pub objects: u64,
    pub events: Vec<Event>,
}

/// What the header declares (checked against the body by [`scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub threads: u32,
    pub sample: u32,
    pub events: u64,
    pub objects: u64,
}

/// Why a trace was rejected; the message says what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError(pub String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace: {}", self.0)
    }
}

impl std::error::Error for TraceError {}

fn err<T>(msg: String) -> Result<T, TraceError> {
    Err(TraceError(msg))
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Serialise a trace (header included). The ids must be in allocation order,
/// as [`parse`] and [`subsample`] produce them.
pub fn encode(t: &Trace) -> Vec<u8> {
    let mut body = Vec::with_capacity(t.events.len() * 3);
    let mut next: u64 = 0;
    for e in &t.events {
        body.push(e.op as u8 | (e.thread << 3));
        match e.op {
            Op::Malloc | Op::Calloc => put_varint(&mut body, e.size),
            Op::Memalign => {
                body.push(e.align_log2);
                put_varint(&mut body, e.size);
            }
            Op::Free => put_varint(&mut body, next - 1 - e.id as u64),
            Op::Realloc => {
                put_varint(&mut body, next - 1 - e.id as u64);
                put_varint(&mut body, e.size);
            }
        }
        if e.op.creates() {
            next += 1;
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(t.threads as u16).to_le_bytes());
    out.extend_from_slice(&(t.sample as u16).to_le_bytes());
    out.extend_from_slice(&(t.events.len() as u64).to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le16(b: &[u8], at: usize) -> u32 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u32
}

/// Parse and validate a whole `.hz3trc` file.
pub fn parse(bytes: &[u8]) -> Result<Trace, TraceError> {
    let mut events = Vec::new();
    let h = scan(bytes, |e| events.push(e))?;
    Ok(Trace {
        threads: h.threads,
        sample: h.sample,
        objects: h.objects,
        events,
    })
}

/// Validate a whole `.hz3trc` file, handing each event to `f` in order
/// (without keeping them). On error, `f` may have seen a prefix.
pub fn scan(bytes: &[u8], mut f: impl FnMut(Event)) -> Result<Header, TraceError> {
    if bytes.len() < HEADER_LEN {
        return err(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        if bytes[..HEADER_LEN].iter().all(|&b| b == 0) {
            return err("header is all zeros: the recording never finished \
                        (the traced program did not exit normally)"
                .into());
        }
        return err(format!(
            "bad magic {:?} (not an hz3trc file; expected \"HZ3TRC01\")",
            String::from_utf8_lossy(&bytes[..8])
        ));
    }
    let version = le32(bytes, 8);
    if version != VERSION {
        return err(format!(
            "format version {version} is not supported (this reader knows {VERSION})"
        ));
    }
    let threads = le16(bytes, 12);
    let sample = le16(bytes, 14);
    let events = le64(bytes, 16);
    let objects = le64(bytes, 24);
    let body_len = le64(bytes, 32);
    let stored = le64(bytes, 40);
    if threads == 0 || threads > MAX_THREADS {
        return err(format!("header says {threads} threads (1..={MAX_THREADS})"));
    }
    if sample == 0 {
        return err("header says sample 0 (1 = every object kept)".into());
    }
    let body = &bytes[HEADER_LEN..];
    if body_len != body.len() as u64 {
        return err(format!(
            "header says the body is {body_len} bytes but the file holds {} \
             (truncated or trailing bytes)",
            body.len()
        ));
    }
    let computed = fnv1a64(body);
    if computed != stored {
        return err(format!(
            "body checksum mismatch (header {stored:#018x}, computed {computed:#018x}): \
             the file is corrupt"
        ));
    }
    if objects > u32::MAX as u64 {
        return err(format!("{objects} objects: more than this reader supports"));
    }
    if events > body_len {
        return err(format!(
            "header says {events} events in a {body_len}-byte body (at least one byte each)"
        ));
    }
    let mut count: u64 = 0;
    let mut live: Vec<bool> = Vec::with_capacity(objects as usize);
    let mut pos = 0usize;
    let varint = |pos: &mut usize, what: &str, n: u64| -> Result<u64, TraceError> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = body.get(*pos) else {
                return err(format!("event {n}: body ends inside the {what}"));
            };
            *pos += 1;
            if shift == 63 && b > 1 || shift > 63 {
                return err(format!("event {n}: {what} overflows 64 bits"));
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    };
    while pos < body.len() {
        let n = count;
        let at = pos;
        let b = body[pos];
        pos += 1;
        let Some(op) = Op::from_u8(b & 7) else {
            return err(format!(
                "event {n} (body offset {at}): unknown op {} in byte {b:#04x}",
                b & 7
            ));
        };
        let thread = b >> 3;
        if thread as u32 >= threads {
            return err(format!(
                "event {n}: thread {thread} but the header says {threads} threads"
            ));
        }
        let mut e = Event {
            op,
            thread,
            align_log2: 0,
            id: 0,
            size: 0,
        };
        if op == Op::Memalign {
            let Some(&a) = body.get(pos) else {
                return err(format!("event {n}: body ends inside the alignment"));
            };
            pos += 1;
            if a > 30 {
                return err(format!("event {n}: alignment 2^{a} is absurd"));
            }
            e.align_log2 = a;
        }
        if op == Op::Free || op == Op::Realloc {
            let back = varint(&mut pos, "object reference", n)?;
            let made = live.len() as u64;
            if back >= made {
                return err(format!(
                    "event {n}: {op:?} of an object {back} back from the newest, \
                     but only {made} exist"
                ));
            }
            let id = made - 1 - back;
            if !live[id as usize] {
                return err(format!(
                    "event {n}: {op:?} of object {id}, which is not live"
                ));
            }
            e.id = id as u32;
        }
        if op != Op::Free {
            e.size = varint(&mut pos, "size", n)?;
            if e.size > MAX_SIZE {
                return err(format!("event {n}: size {} above {MAX_SIZE}", e.size));
            }
            if op == Op::Realloc && e.size == 0 {
                return err(format!("event {n}: realloc to size 0 (recorded as a free)"));
            }
        }
        if op.creates() {
            if live.len() as u64 >= objects {
                return err(format!(
                    "event {n}: more objects than the {objects} the header declares"
                ));
            }
            e.id = live.len() as u32;
            live.push(true);
        } else if op == Op::Free {
            live[e.id as usize] = false;
        }
        f(e);
        count += 1;
    }
    if count != events {
        return err(format!(
            "header says {events} events, the body holds {count}"
        ));
    }
    if live.len() as u64 != objects {
        return err(format!(
            "header says {objects} objects, the body creates {}",
            live.len()
        ));
    }
    Ok(Header {
        threads,
        sample,
        events,
        objects,
    })
}

fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Keep about one object in `k` (chosen by a hash of its id, so the choice is
/// fixed), with every event of each kept object, renumbered in allocation
/// order. Sizes, call mix and relative order are kept; the live set shrinks
/// by about `k`.
pub fn subsample(t: &Trace, k: u64) -> Trace {
    let k = k.max(1);
    let keep = |id: u32| k == 1 || mix64(id as u64 ^ 0x4833_5452).is_multiple_of(k);
    let mut new_id = vec![u32::MAX; t.objects as usize];
    let mut next = 0u32;
    let mut events = Vec::new();
    for e in &t.events {
        if !keep(e.id) {
            continue;
        }
        let mut e = *e;
        if e.op.creates() {
            new_id[e.id as usize] = next;
            next += 1;
        }
        e.id = new_id[e.id as usize];
        events.push(e);
    }
    Trace {
        threads: t.threads,
        sample: t.sample * k as u32,
        objects: next as u64,
        events,
    }
}

/// The smallest subsampling factor whose encoding fits in `max_bytes`.
pub fn fit(t: &Trace, max_bytes: usize) -> (u64, Trace) {
    let mut k = 1;
    loop {
        let s = subsample(t, k);
        if encode(&s).len() <= max_bytes || s.events.is_empty() {
            return (k, s);
        }
        k += 1;
    }
}

/// What a trace does, for `trace-info` and the README.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub threads: u32,
    pub sample: u32,
    pub events: u64,
    pub objects: u64,
    pub mallocs: u64,
    pub callocs: u64,
    pub memaligns: u64,
    pub reallocs: u64,
    pub frees: u64,
    /// Objects still live at the end of the trace (the replay frees them).
    pub live_at_end: u64,
    pub peak_live_objects: u64,
    pub peak_live_bytes: u64,
    /// Share of new blocks with size <= 64, <= 512, <= 4096, <= 64 KiB, larger.
    pub size_share: [f64; 5],
    pub max_size: u64,
    /// Median lifetime of freed objects, in events between birth and free.
    pub median_lifetime_events: u64,
}

pub fn summary(t: &Trace) -> Summary {
    let mut s = Summary {
        threads: t.threads,
        sample: t.sample,
        events: t.events.len() as u64,
        objects: t.objects,
        ..Default::default()
    };
    let mut size = vec![0u64; t.objects as usize];
    let mut born = vec![0u64; t.objects as usize];
    let (mut live, mut bytes) = (0u64, 0u64);
    let mut buckets = [0u64; 5];
    let mut lifetimes = Vec::new();
    for (n, e) in t.events.iter().enumerate() {
        let i = e.id as usize;
        match e.op {
            Op::Malloc | Op::Calloc | Op::Memalign => {
                match e.op {
                    Op::Malloc => s.mallocs += 1,
                    Op::Calloc => s.callocs += 1,
                    _ => s.memaligns += 1,
                }
                size[i] = e.size;
                born[i] = n as u64;
                live += 1;
                bytes += e.size;
                let b = match e.size {
                    0..=64 => 0,
                    65..=512 => 1,
                    513..=4096 => 2,
                    4097..=65536 => 3,
                    _ => 4,
                };
                buckets[b] += 1;
                s.max_size = s.max_size.max(e.size);
            }
            Op::Realloc => {
                s.reallocs += 1;
                bytes = bytes - size[i] + e.size;
                size[i] = e.size;
                s.max_size = s.max_size.max(e.size);
            }
            Op::Free => {
                s.frees += 1;
                live -= 1;
                bytes -= size[i];
                lifetimes.push(n as u64 - born[i]);
            }
        }
        s.peak_live_objects = s.peak_live_objects.max(live);
        s.peak_live_bytes = s.peak_live_bytes.max(bytes);
    }
    s.live_at_end = live;
    let created = (s.mallocs + s.callocs + s.memaligns).max(1) as f64;
    for (k, b) in buckets.iter().enumerate() {
        s.size_share[k] = (*b as f64 / created * 1000.0).round() / 1000.0;
    }
    if !lifetimes.is_empty() {
        let mid = lifetimes.len() / 2;
        s.median_lifetime_events = *lifetimes.select_nth_unstable(mid).1;
    }
    s
}

// ------------------------------------------------------------- replay ----

/// One replay step: `size` and `slot << 8 | align_log2 << 3 | op` (8 bytes,
/// so a plan of the built-in trace stays a few MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub size: u32,
    slot_op: u32,
}

/// Block tables are limited to 2^24 slots per thread (per copy).
pub const MAX_SLOTS: usize = 1 << 24;

impl Step {
    pub fn new(op: Op, align_log2: u8, slot: usize, size: u32) -> Step {
        assert!(slot < MAX_SLOTS && align_log2 < 32);
        Step {
            size,
            slot_op: (slot as u32) << 8 | (align_log2 as u32) << 3 | op as u32,
        }
    }
    #[inline(always)]
    pub fn op(self) -> Op {
        Op::from_u8((self.slot_op & 7) as u8).unwrap()
    }
    #[inline(always)]
    pub fn align_log2(self) -> u8 {
        (self.slot_op >> 3 & 31) as u8
    }
    #[inline(always)]
    pub fn slot(self) -> usize {
        (self.slot_op >> 8) as usize
    }
}

/// The part of a trace one replay thread runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadPlan {
    pub steps: Vec<Step>,
    /// Block table size: the most blocks this thread holds at once.
    pub slots: usize,
}

/// Builds thread plans from events in trace order: object `id` belongs to
/// thread `id % threads`, with every event of the object, in trace order; a
/// thread reuses the slot of a freed block for its next new one (so its table
/// is as large as its peak live count, not its object count). The result
/// depends only on the trace and the thread count, so every allocator replays
/// the same calls; no block crosses threads.
pub struct Planner {
    plans: Vec<ThreadPlan>,
    free: Vec<Vec<u32>>,
    slot_of: Vec<u32>,
}

impl Planner {
    pub fn new(threads: usize) -> Planner {
        let threads = threads.max(1);
        Planner {
            plans: vec![ThreadPlan::default(); threads],
            free: vec![Vec::new(); threads],
            slot_of: Vec::new(),
        }
    }

    pub fn push(&mut self, e: Event) {
        let id = e.id as usize;
        let th = id % self.plans.len();
        let plan = &mut self.plans[th];
        let slot = if e.op.creates() {
            let s = self.free[th].pop().unwrap_or_else(|| {
                plan.slots += 1;
                plan.slots as u32 - 1
            });
            if self.slot_of.len() <= id {
                self.slot_of.resize(id + 1, u32::MAX);
            }
            self.slot_of[id] = s;
            s
        } else {
            self.slot_of[id]
        };
        if e.op == Op::Free {
            self.free[th].push(slot);
        }
        plan.steps
            .push(Step::new(e.op, e.align_log2, slot as usize, e.size as u32));
    }

    pub fn finish(self) -> Vec<ThreadPlan> {
        self.plans
    }
}

/// Plan a parsed trace for `threads` replay threads.
pub fn plan(t: &Trace, threads: usize) -> Vec<ThreadPlan> {
    let mut p = Planner::new(threads);
    for &e in &t.events {
        p.push(e);
    }
    p.finish()
}

/// Validate a `.hz3trc` file and plan it for `threads` replay threads without
/// keeping the decoded events (what the driver does before its clock starts).
pub fn plan_bytes(bytes: &[u8], threads: usize) -> Result<(Header, Vec<ThreadPlan>), TraceError> {
    let mut p = Planner::new(threads);
    let h = scan(bytes, |e| p.push(e))?;
    Ok((h, p.finish()))
}

/// What a replay did: calls made, frees, the checksum of the tags read back
/// before each free, and blocks whose tag did not survive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOut {
    pub ops: u64,
    pub frees: u64,
    pub checksum: u64,
    pub corrupt: u64,
}

/// Distance, in steps, between the starts of two copies in [`replay`].
pub const COPY_STAGGER: usize = 97;

/// Replay `plan` `passes` times through the process's C allocator
/// (`malloc`/`calloc`/`realloc`/`posix_memalign`/`free`, so `LD_PRELOAD`
/// decides which allocator runs).
///
/// `copies` independent copies of the plan run interleaved, round-robin, copy
/// j starting `j * COPY_STAGGER` steps late (each with its own blocks). For a
/// trace that keeps one object in k, k copies restore the recorded program's
/// density: about its live set, and its lifetimes counted in calls, with the
/// same sizes and phases; the stagger keeps neighbouring calls from being the
/// same call of different copies.
///
/// Every new block gets a tag in its first bytes (up to 8) and one written
/// byte in every 4 KiB page, so its memory is really touched; the tag is
/// checked before realloc and free. Blocks still live at the end of a pass
/// are freed then. Tags depend only on `(seed, stream, pass, copy, slot)`, so
/// the checksum depends neither on timing, nor on addresses, nor on the
/// allocator. The block table is allocated here, before the first call.
pub fn replay(plan: &ThreadPlan, passes: u64, copies: usize, seed: u64, stream: u64) -> ReplayOut {
    let copies = copies.max(1);
    let n = plan.steps.len();
    let mut table = raw::Table::new(plan.slots * copies);
    let mut bases = vec![0u64; copies];
    let mut out = ReplayOut::default();
    if n == 0 {
        return out;
    }
    for pass in 0..passes {
        for (j, b) in bases.iter_mut().enumerate() {
            *b = mix64(
                seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407)
                    ^ (pass << 40)
                    ^ ((j as u64) << 24),
            );
        }
        let rounds = n + (copies - 1) * COPY_STAGGER;
        for r in 0..rounds {
            let first = r.saturating_sub(n - 1).div_ceil(COPY_STAGGER);
            let last = (r / COPY_STAGGER).min(copies - 1);
            for (j, base) in bases.iter().enumerate().take(last + 1).skip(first) {
                let s = plan.steps[r - j * COPY_STAGGER];
                let slot = j * plan.slots + s.slot();
                let tag = mix64(base ^ s.slot() as u64);
                match s.op() {
                    Op::Free => {
                        let (v, ok) = table.release(slot, tag);
                        out.checksum = out.checksum.wrapping_add(v);
                        out.corrupt += !ok as u64;
                        out.frees += 1;
                    }
                    Op::Realloc => out.corrupt += table.resize(slot, s.size, tag) as u64,
                    op => {
                        out.corrupt += table.create(slot, op, s.size, s.align_log2(), tag) as u64;
                    }
                }
                out.ops += 1;
            }
        }
        for slot in 0..plan.slots * copies {
            if table.is_live(slot) {
                let tag = mix64(bases[slot / plan.slots] ^ (slot % plan.slots) as u64);
                let (v, ok) = table.release(slot, tag);
                out.checksum = out.checksum.wrapping_add(v);
                out.corrupt += !ok as u64;
                out.frees += 1;
                out.ops += 1;
            }
        }
    }
    out
}

/// The unsafe part of the replay: a table of blocks from the C allocator.
///
/// Invariants: `ptr[i]` is either null or a block returned by the C
/// allocator for `len[i]` bytes and not yet freed; `live[i]` says whether slot
/// i holds a block (a `malloc(0)` may legitimately return null). Every read
/// or write stays inside `[ptr, ptr + len)`. `create` is only called on a dead
/// slot and `resize`/`release` only on a live one — [`parse`] guarantees
/// that for a validated trace, and the methods check it anyway (a violation
/// panics instead of touching memory).
mod raw {
    use super::Op;

    pub const PAGE: usize = 4096;

    pub struct Table {
        ptr: Vec<*mut u8>,
        len: Vec<u32>,
        live: Vec<bool>,
    }

    fn oom(size: usize) -> ! {
        panic!("trace replay: the allocator returned NULL for {size} bytes");
    }

    /// Write the low `min(len, 8)` bytes of `tag` at the start, and one byte in
    /// every page from `from` (rounded up to a page) on.
    fn stamp(p: *mut u8, len: usize, tag: u64, from: usize) {
        let n = len.min(8);
        let bytes = tag.to_le_bytes();
        // SAFETY: p is a live block of len >= n bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n) };
        let mut off = from.div_ceil(PAGE).max(1) * PAGE;
        while off < len {
            // SAFETY: off < len.
            unsafe { p.add(off).write_volatile(tag as u8) };
            off += PAGE;
        }
    }

    /// The first `min(len, 8)` bytes as a little-endian number.
    fn read_tag(p: *const u8, len: usize) -> u64 {
        let n = len.min(8);
        let mut bytes = [0u8; 8];
        // SAFETY: p is a live block of len >= n bytes.
        unsafe { std::ptr::copy_nonoverlapping(p, bytes.as_mut_ptr(), n) };
        u64::from_le_bytes(bytes)
    }

    fn mask(len: usize) -> u64 {
        if len >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * len)) - 1
        }
    }

    impl Table {
        pub fn new(n: usize) -> Table {
            Table {
                ptr: vec![std::ptr::null_mut(); n],
                len: vec![0; n],
                live: vec![false; n],
            }
        }

        pub fn is_live(&self, i: usize) -> bool {
            self.live[i]
        }

        /// Allocate slot i; returns true when a calloc block was not zeroed.
        pub fn create(&mut self, i: usize, op: Op, size: u32, align_log2: u8, tag: u64) -> bool {
            assert!(!self.live[i], "trace replay: slot {i} allocated twice");
            let len = size as usize;
            let mut bad = false;
            // SAFETY: plain C allocator calls; the result is checked for null.
            let p = unsafe {
                match op {
                    Op::Calloc => libc::calloc(1, len) as *mut u8,
                    Op::Memalign => {
                        let align = (1usize << align_log2).max(std::mem::size_of::<usize>());
                        let mut q: *mut libc::c_void = std::ptr::null_mut();
                        if libc::posix_memalign(&mut q, align, len) != 0 {
                            q = std::ptr::null_mut();
                        }
                        q as *mut u8
                    }
                    _ => libc::malloc(len) as *mut u8,
                }
            };
            if p.is_null() && len > 0 {
                oom(len);
            }
            if !p.is_null() {
                if op == Op::Calloc {
                    bad = read_tag(p, len) != 0;
                }
                stamp(p, len, tag, 0);
            }
            self.ptr[i] = p;
            self.len[i] = size;
            self.live[i] = true;
            bad
        }

        /// realloc slot i to `size`; returns true when the kept prefix of the
        /// tag did not survive.
        pub fn resize(&mut self, i: usize, size: u32, tag: u64) -> bool {
            assert!(self.live[i], "trace replay: realloc of dead slot {i}");
            let (old, len) = (self.len[i] as usize, size as usize);
            let p = self.ptr[i];
            let kept = old.min(len).min(8);
            let before = if p.is_null() { 0 } else { read_tag(p, kept) };
            // SAFETY: p is null or a live block of this allocator.
            let q = unsafe { libc::realloc(p as *mut libc::c_void, len) } as *mut u8;
            if q.is_null() {
                oom(len);
            }
            let after = read_tag(q, kept);
            stamp(q, len, tag, old);
            self.ptr[i] = q;
            self.len[i] = size;
            before != after || (before != tag & mask(kept) && !p.is_null())
        }

        /// Free slot i; returns (the checksum contribution, tag intact).
        pub fn release(&mut self, i: usize, tag: u64) -> (u64, bool) {
            assert!(self.live[i], "trace replay: free of dead slot {i}");
            let (p, len) = (self.ptr[i], self.len[i] as usize);
            let v = if p.is_null() { 0 } else { read_tag(p, len) };
            let ok = v == tag & mask(len);
            // SAFETY: p is null or a live block of this allocator.
            unsafe { libc::free(p as *mut libc::c_void) };
            self.ptr[i] = std::ptr::null_mut();
            self.live[i] = false;
            (v.rotate_left(7) ^ len as u64, ok)
        }
    }

    impl Drop for Table {
        fn drop(&mut self) {
            for i in 0..self.ptr.len() {
                if self.live[i] {
                    // SAFETY: live blocks are owned by the table.
                    unsafe { libc::free(self.ptr[i] as *mut libc::c_void) };
                }
            }
        }
    }
}
