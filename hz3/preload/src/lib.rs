//! The LD_PRELOAD shared object: links the hz3 core with its C ABI (feature
//! `c-abi`) into one cdylib, so the release profile's fat LTO inlines the whole
//! allocator into the exported entry points. No std (the core needs none), so
//! the object depends on libc alone: no unwinder, none of std's text.
//! Owns only the panic handler a no_std object must have.
#![cfg_attr(not(test), no_std)]

pub use hz3::c_abi;

/// A panic cannot happen in the allocator (it never formats or unwraps on its
/// paths); should one anyway, say so on stderr and abort, as glibc does on heap
/// corruption.
#[cfg(not(test))]
#[panic_handler]
fn on_panic(_: &core::panic::PanicInfo) -> ! {
    const MSG: &[u8] = b"hz3: internal error (panic); aborting\n";
    // SAFETY: plain syscall wrappers.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::abort()
    }
}
