//! RSS readings from /proc without going through malloc: fixed stack buffers
//! and raw `libc::open`/`pread`. The sampler thread's buffer is allocated
//! before sampling begins and never grows (it decimates in place instead).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most points a timeline carries in the JSON output.
const TIMELINE_POINTS: usize = 160;
/// Sampler buffer capacity; when full, every other sample is dropped and the period doubles.
const SAMPLE_CAP: usize = 8192;

fn page_kib() -> u64 {
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ps > 0 {
        ps as u64 / 1024
    } else {
        4
    }
}

/// An open /proc file read with pread at offset 0 into a stack buffer.
struct ProcFile(libc::c_int);

impl ProcFile {
    fn open(path: &std::ffi::CStr) -> Option<ProcFile> {
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        (fd >= 0).then_some(ProcFile(fd))
    }
    fn read<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let n = unsafe { libc::pread(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        (n > 0).then(|| &buf[..n as usize])
    }
}

impl Drop for ProcFile {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

/// Parse the `idx`-th whitespace-separated unsigned integer.
fn nth_u64(s: &[u8], idx: usize) -> Option<u64> {
    s.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .nth(idx)
        .and_then(parse_u64)
}

fn parse_u64(f: &[u8]) -> Option<u64> {
    if f.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &b in f {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

fn statm_rss_kib(f: &ProcFile, page_kib: u64) -> Option<u64> {
    let mut buf = [0u8; 128];
    let s = f.read(&mut buf)?;
    Some(nth_u64(s, 1)? * page_kib)
}

/// Resident set size now (KiB).
pub fn current_rss_kib() -> u64 {
    ProcFile::open(c"/proc/self/statm")
        .and_then(|f| statm_rss_kib(&f, page_kib()))
        .unwrap_or(0)
}

/// VmHWM (peak RSS, KiB) from /proc/self/status.
pub fn vm_hwm_kib() -> Option<u64> {
    let f = ProcFile::open(c"/proc/self/status")?;
    let mut buf = [0u8; 8192];
    let s = f.read(&mut buf)?;
    let key = b"VmHWM:";
    let pos = s.windows(key.len()).position(|w| w == key)?;
    let rest = &s[pos + key.len()..];
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    nth_u64(&rest[..line_end], 0)
}

struct Shared {
    epoch: Instant,
    /// ns since epoch when the timed region began; u64::MAX = not yet.
    begin_ns: AtomicU64,
    /// ns since begin when the timed region ended; u64::MAX = still running.
    end_ns: AtomicU64,
    stop: AtomicBool,
}

pub struct Sampler {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<Vec<(u64, u64)>>>,
}

pub struct SamplerStats {
    pub samples: u64,
    pub mean_kib: Option<u64>,
    pub max_kib: u64,
    /// `[ms since begin, KiB]`, at most TIMELINE_POINTS points, max per bucket.
    pub timeline: Vec<[f64; 2]>,
}

impl Sampler {
    pub fn start(period: Duration) -> Sampler {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            begin_ns: AtomicU64::new(u64::MAX),
            end_ns: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || sample_loop(&sh, period))
            .expect("spawn sampler");
        Sampler {
            shared,
            handle: Some(handle),
        }
    }

    /// The timed region starts now.
    pub fn begin(&mut self) {
        let ns = self.shared.epoch.elapsed().as_nanos() as u64;
        self.shared.begin_ns.store(ns, Ordering::Release);
    }

    /// The timed region lasted `wall` from `begin`.
    pub fn end_at(&mut self, wall: Duration) {
        self.shared
            .end_ns
            .store(wall.as_nanos() as u64, Ordering::Release);
    }

    pub fn stop(mut self) -> SamplerStats {
        self.shared.stop.store(true, Ordering::Release);
        let samples = self.handle.take().unwrap().join().expect("sampler thread");
        let end = self.shared.end_ns.load(Ordering::Acquire);
        let in_window: Vec<u64> = samples.iter().filter(|s| s.0 <= end).map(|s| s.1).collect();
        let mean_kib = if in_window.is_empty() {
            None
        } else {
            Some(in_window.iter().sum::<u64>() / in_window.len() as u64)
        };
        SamplerStats {
            samples: in_window.len() as u64,
            mean_kib,
            max_kib: samples.iter().map(|s| s.1).max().unwrap_or(0),
            timeline: downsample(&samples, TIMELINE_POINTS),
        }
    }
}

fn sample_loop(sh: &Shared, period: Duration) -> Vec<(u64, u64)> {
    let mut buf: Vec<(u64, u64)> = Vec::with_capacity(SAMPLE_CAP);
    let Some(f) = ProcFile::open(c"/proc/self/statm") else {
        return buf;
    };
    let pk = page_kib();
    let mut period = period;
    // Wait for the timed region to begin.
    while sh.begin_ns.load(Ordering::Acquire) == u64::MAX {
        if sh.stop.load(Ordering::Acquire) {
            return buf;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let begin = sh.begin_ns.load(Ordering::Acquire);
    loop {
        let stopping = sh.stop.load(Ordering::Acquire);
        if let Some(kib) = statm_rss_kib(&f, pk) {
            let now = sh.epoch.elapsed().as_nanos() as u64;
            if buf.len() == buf.capacity() {
                // Decimate in place: keep every other sample, sample half as often.
                let mut w = 0;
                for r in (0..buf.len()).step_by(2) {
                    buf[w] = buf[r];
                    w += 1;
                }
                buf.truncate(w);
                period *= 2;
            }
            buf.push((now.saturating_sub(begin), kib));
        }
        if stopping {
            return buf;
        }
        std::thread::sleep(period);
    }
}

/// At most `points` points: equal time buckets, keeping each bucket's max so
/// peaks survive.
fn downsample(samples: &[(u64, u64)], points: usize) -> Vec<[f64; 2]> {
    if samples.len() <= points {
        return samples
            .iter()
            .map(|&(t, k)| [t as f64 / 1e6, k as f64])
            .collect();
    }
    let t_end = samples.last().unwrap().0.max(1);
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(points);
    let mut bucket_max: Option<(u64, u64)> = None;
    let mut bucket = 0usize;
    for &(t, k) in samples {
        let b = ((t as u128 * points as u128) / (t_end as u128 + 1)) as usize;
        if b != bucket {
            if let Some((bt, bk)) = bucket_max.take() {
                out.push([bt as f64 / 1e6, bk as f64]);
            }
            bucket = b;
        }
        bucket_max = match bucket_max {
            Some((bt, bk)) if bk >= k => Some((bt, bk)),
            _ => Some((t, k)),
        };
    }
    if let Some((bt, bk)) = bucket_max {
        out.push([bt as f64 / 1e6, bk as f64]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_statm_and_status() {
        assert_eq!(nth_u64(b"123 456 7\n", 1), Some(456));
        assert!(current_rss_kib() > 0);
        assert!(vm_hwm_kib().unwrap() > 0);
    }

    #[test]
    fn downsample_keeps_peaks() {
        let s: Vec<(u64, u64)> = (0..1000u64)
            .map(|i| (i * 1_000_000, if i == 500 { 999 } else { 1 }))
            .collect();
        let d = downsample(&s, 100);
        assert!(d.len() <= 100);
        assert!(d.iter().any(|p| p[1] == 999.0));
    }
}
