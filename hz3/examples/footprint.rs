//! Prints the bytes of one thread's cache in the lane this was built with
//! (used by the lane tests to compare owner counts).
fn main() {
    println!("{}", hz3::thread_cache_bytes());
}
