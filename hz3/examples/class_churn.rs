//! Churns blocks of uniform sizes 16..=4096 B (2048 slots, one thread, fixed
//! seed) through the lane this was built with and prints the most bytes its
//! spans ever held (used by the lane tests to compare class layouts).
fn main() {
    let mut slots = [core::ptr::null_mut::<u8>(); 2048];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..400_000 {
        let i = (next() % 2048) as usize;
        if slots[i].is_null() {
            let size = 16 + (next() % 4081) as usize;
            let p = hz3::raw::malloc(size);
            assert!(!p.is_null());
            // SAFETY: p holds at least `size` bytes.
            unsafe { core::ptr::write_bytes(p, 1, size.min(64)) };
            slots[i] = p;
        } else {
            // SAFETY: a live block from hz3::raw::malloc.
            unsafe { hz3::raw::free(slots[i]) };
            slots[i] = core::ptr::null_mut();
        }
    }
    println!("{}", hz3::stats().span_bytes_peak);
}
