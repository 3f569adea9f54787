//! The `trace` workload: replay a recorded allocation trace (`.hz3trc`, see
//! `bench_matrix::trace` and `bench-matrix/tracer/`), plus the `trace-info`
//! and `trace-pack` tools.
//!
//! `--trace NAME` picks a trace built into the driver (`python3`:
//! `bench-matrix/traces/python3.hz3trc`) or, when NAME contains a `/` or ends
//! in `.hz3trc`, a file. At T threads the trace's objects are split over the
//! threads (object id mod T, every event of an object on its thread, in trace
//! order), so a cell replays the whole trace once per pass whatever T is, and
//! every allocator replays exactly the same calls. No block crosses threads:
//! the recorded program is single-threaded, so the cell asks for no remote
//! frees and reports none.
//!
//! A trace that keeps one object in k of the recording (header `sample`) is
//! replayed as k interleaved copies per thread (see `trace::replay`), which
//! restores the recorded program's live set and call density.
//!
//! `--iters` is a budget of replayed calls per thread (like the other
//! workloads' per-thread iterations); every thread runs the same number of
//! passes, `max(1, round(iters * T / (events * k)))`.

use super::*;
use bench_matrix::trace::{self, Trace};

/// The traces compiled into the driver.
const BUILTIN: &[(&str, &[u8])] = &[("python3", include_bytes!("../../traces/python3.hz3trc"))];

pub fn defaults(name: &str) -> Option<(usize, usize, usize, u64)> {
    (name == "trace").then_some((16, 16, 1, 400_000))
}

/// The bytes of the trace named by `--trace`.
fn bytes_of(name: &str) -> std::borrow::Cow<'static, [u8]> {
    let bytes: std::borrow::Cow<'static, [u8]> = if name.contains('/') || name.ends_with(".hz3trc")
    {
        match std::fs::read(name) {
            Ok(b) => b.into(),
            Err(e) => die(&format!("cannot read trace {name}: {e}")),
        }
    } else {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((_, b)) => (*b).into(),
            None => die(&format!(
                "unknown trace '{name}' (built in: {}; or give a path)",
                BUILTIN.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
            )),
        }
    };
    bytes
}

/// The trace named by `--trace`, parsed and validated (dies with the parser's
/// message on a bad trace).
pub fn load(name: &str) -> Trace {
    trace::parse(&bytes_of(name)).unwrap_or_else(|e| die(&format!("{name}: {e}")))
}

/// Passes every thread runs for a per-thread budget of `iters` events.
pub fn passes(iters: u64, threads: usize, events: usize) -> u64 {
    let total = iters as f64 * threads as f64;
    ((total / events.max(1) as f64).round() as u64).max(1)
}

pub fn run(p: &Params) -> (ThreadOut, Duration) {
    let (h, plans) = trace::plan_bytes(&bytes_of(&p.trace), p.threads)
        .unwrap_or_else(|e| die(&format!("{}: {e}", p.trace)));
    let copies = h.sample as usize;
    let plans = Arc::new(plans);
    let passes = passes(p.iters, p.threads, h.events as usize * copies);
    let clock = Clock::new(p.threads);
    let seed = p.seed;
    let hs: Vec<_> = (0..p.threads)
        .map(|tid| {
            let (plans, clock) = (plans.clone(), clock.clone());
            std::thread::Builder::new()
                .name(format!("w{tid}"))
                .spawn(move || {
                    clock.worker_start();
                    let c0 = thread_cpu_ns();
                    let r = trace::replay(&plans[tid], passes, copies, seed, tid as u64);
                    let cpu_ns = thread_cpu_ns() - c0;
                    clock.worker_end();
                    ThreadOut {
                        ops: r.ops,
                        checksum: r.checksum,
                        corrupt: r.corrupt,
                        frees: r.frees,
                        remote: 0,
                        cpu_ns,
                    }
                })
                .expect("spawn worker")
        })
        .collect();
    clock.go();
    let mut total = ThreadOut::default();
    for h in hs {
        total.add(&h.join().expect("trace worker"));
    }
    (total, clock.wall())
}

const TOOL_USAGE: &str = "\
usage: hz3-bench-driver trace-info FILE|NAME
       hz3-bench-driver trace-pack IN OUT [--max-bytes N]   (default 1000000)

trace-info validates a trace and prints its summary as JSON.
trace-pack validates IN and writes OUT: IN subsampled by objects (about one in
k kept, chosen by a hash of the object id; the smallest k whose file fits in
--max-bytes), re-encoded and validated again.
";

/// `trace-info` and `trace-pack`; returns false when `args[0]` is neither.
pub fn tool(args: &[String]) -> bool {
    match args.first().map(|s| s.as_str()) {
        Some("trace-info") => {
            let Some(name) = args.get(1) else {
                die(TOOL_USAGE)
            };
            let t = load(name);
            println!("{}", serde_json::to_string(&trace::summary(&t)).unwrap());
            true
        }
        Some("trace-pack") => {
            let (Some(inp), Some(outp)) = (args.get(1), args.get(2)) else {
                die(TOOL_USAGE)
            };
            let max = match (args.get(3).map(|s| s.as_str()), args.get(4)) {
                (None, _) => 1_000_000,
                (Some("--max-bytes"), Some(v)) => {
                    parse_num(v).unwrap_or_else(|| die(&format!("bad --max-bytes {v}"))) as usize
                }
                _ => die(TOOL_USAGE),
            };
            let t = load(inp);
            let (k, s) = trace::fit(&t, max);
            let bytes = trace::encode(&s);
            if let Err(e) = trace::parse(&bytes) {
                die(&format!("packed trace does not validate: {e}"));
            }
            if let Err(e) = std::fs::write(outp, &bytes) {
                die(&format!("cannot write {outp}: {e}"));
            }
            eprintln!(
                "trace-pack: {} events, {} objects -> kept ~1/{k}: {} events, {} objects, {} bytes",
                t.events.len(),
                t.objects,
                s.events.len(),
                s.objects,
                bytes.len()
            );
            true
        }
        _ => false,
    }
}
