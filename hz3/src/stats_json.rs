//! The statistics as one JSON object, written into a caller's buffer with
//! snprintf's contract (`hz3_stats_json`, `hz3::stats_json`, `HZ3_PRINT_STATS=json`): never
//! allocates, never writes past the buffer, always NUL-terminates a non-empty
//! buffer, and returns the length the whole text needs (without the NUL), so a
//! caller whose buffer was too small can retry with a bigger one.
//!
//! Owns only the text layout; the numbers come from `stats::stats()` and, for
//! the calling thread, from its cache (`tcache`). Must not change any state.
//! Must not touch allocation data structures (`central`, `page_heap`, `span`).

use crate::config;
use crate::stats::{self, Stats};
use crate::tcache;
use crate::tls;

/// Appends to a byte buffer, counting what did not fit.
struct Out<'a> {
    buf: &'a mut [u8],
    /// Bytes the text needs so far (may exceed `buf.len() - 1`).
    len: usize,
}

impl Out<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            // Keep the last byte for the NUL.
            if self.len + 1 < self.buf.len() {
                self.buf[self.len] = b;
            }
            self.len += 1;
        }
        self
    }
    fn s(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    fn u(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        self.bytes(crate::os::decimal(v, &mut tmp))
    }
    /// `"name":value` with a leading comma unless `first`.
    fn field(&mut self, first: bool, name: &str, v: u64) -> &mut Self {
        if !first {
            self.s(",");
        }
        self.s("\"").s(name).s("\":").u(v)
    }
    fn finish(self) -> usize {
        if !self.buf.is_empty() {
            let end = self.len.min(self.buf.len() - 1);
            self.buf[end] = 0;
        }
        self.len
    }
}

/// Writes the statistics of the process and of the calling thread's cache as
/// JSON into `buf` (NUL-terminated, truncated if needed); returns the full
/// length. Lane names are `[a-z0-9_]`, so no string needs escaping.
pub fn write(buf: &mut [u8]) -> usize {
    let s: Stats = stats::stats();
    let mut o = Out { buf, len: 0 };
    o.s("{\"lane\":\"").s(config::LANE).s("\"");
    o.field(false, "arena_reserved_bytes", s.arena_reserved)
        .field(false, "segments_mapped", s.segments_mapped)
        .field(false, "span_bytes", s.span_bytes)
        .field(false, "span_bytes_peak", s.span_bytes_peak)
        .field(false, "bytes_purged", s.bytes_purged)
        .field(false, "dirty_free_bytes", s.dirty_free_bytes)
        .field(false, "spans_released", s.spans_released)
        .field(false, "large_live_bytes", s.large_live_bytes)
        .field(false, "large_cached_bytes", s.large_cached_bytes)
        .field(false, "large_maps", s.large_maps)
        .field(false, "large_cache_hits", s.large_cache_hits)
        .field(false, "large_cache_decayed", s.large_cache_decayed)
        .field(false, "threads_started", s.threads_started)
        .field(false, "threads_exited", s.threads_exited)
        .field(false, "live_thread_caches", s.live_thread_caches)
        .field(false, "owners", s.owners)
        .field(false, "transfer_refills", s.transfer_refills);
    // The calling thread's own cache: null when it has none yet.
    let t = tls::tc();
    o.s(",\"thread\":{");
    if t.is_null() {
        o.s("\"has_cache\":0");
    } else {
        // SAFETY: the calling thread's own live cache, read by its owner thread.
        let (owner, cached, events) = unsafe {
            (
                (*t).owner as u64,
                tcache::cached_bytes(t) as u64,
                tcache::slow_path_events(t) as u64,
            )
        };
        o.s("\"has_cache\":1")
            .field(false, "owner", owner)
            .field(false, "cached_bytes", cached)
            .field(false, "slow_path_events", events);
    }
    o.s("},\"classes\":[");
    let mut first = true;
    for c in s.classes.iter().filter(|c| c.refills > 0 || c.spans > 0) {
        if !first {
            o.s(",");
        }
        first = false;
        o.s("{")
            .field(true, "size", c.size)
            .field(false, "spans", c.spans)
            .field(false, "free_objects", c.free_objects)
            .field(false, "refills", c.refills)
            .field(false, "flushes", c.flushes)
            .s("}");
    }
    o.s("]}");
    o.finish()
}

/// Prints the JSON object and a newline to stderr (`HZ3_PRINT_STATS=json` at
/// exit), through a fixed stack buffer; a longer text is cut, still one line.
pub fn print() {
    let mut buf = [0u8; 16384];
    let n = write(&mut buf).min(buf.len() - 1);
    buf[n] = b'\n';
    crate::os::write_err(&buf[..=n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_truncates_terminates_and_counts() {
        let mut b = [0xffu8; 8];
        let mut o = Out {
            buf: &mut b,
            len: 0,
        };
        o.s("{\"a\":").u(1234567).s("}");
        assert_eq!(o.finish(), 13, "the full length, not what fit");
        assert_eq!(&b, b"{\"a\":12\0", "7 bytes and the NUL");
        let mut e: [u8; 0] = [];
        let mut o = Out {
            buf: &mut e,
            len: 0,
        };
        o.s("xyz").u(0);
        assert_eq!(o.finish(), 4, "an empty buffer is never written");
    }

    #[test]
    fn write_gives_one_json_object() {
        let mut big = [0u8; 65536];
        let n = write(&mut big);
        assert!(n > 100 && n < big.len());
        assert_eq!(big[n], 0);
        let text = core::str::from_utf8(&big[..n]).unwrap();
        assert!(
            text.starts_with("{\"lane\":\"") && text.ends_with("]}"),
            "{text}"
        );
        assert!(text.contains("\"thread\":{\"has_cache\":"), "{text}");
        let depth = text.bytes().fold(0i32, |d, b| match b {
            b'{' | b'[' => d + 1,
            b'}' | b']' => d - 1,
            _ => d,
        });
        assert_eq!(depth, 0, "balanced: {text}");
    }
}
