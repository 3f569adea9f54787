//! Old glibc symbol versions for the two thread-key calls, the three calls
//! that start the background purge thread, and the two
//! dynamic-linker calls (`dlopen`, `dlsym`: glibc 2.34 moved them from libdl
//! into libc the same way; libdl.so.2 is NEEDED for older glibc), so a lane `.so`
//! built on a new system loads on glibc 2.17 and later (Debian 11, Ubuntu 20.04,
//! RHEL 8). Owns only these bindings; everything else calls `libc` directly.
//!
//! glibc 2.34 moved `pthread_key_create` and `pthread_setspecific` from
//! libpthread into libc under a new version, `GLIBC_2.34`, and a program
//! linked against it binds to that version, which older glibc lacks. Bind to
//! the original version instead (`GLIBC_2.2.5` on x86_64, `GLIBC_2.17` on
//! aarch64): new glibc keeps it as an alias in libc.so.6, older glibc defines
//! it in libpthread.so.0, which the preload object lists as NEEDED for that
//! reason (hz3/preload/build.rs). Same functions, same ABI, either way.
//!
//! `hz3/tests/lanes.rs` reads the version needs of every lane `.so` and fails on
//! anything above `GLIBC_2.17`.
//! Must not touch allocator state (`arena`, `tcache`).

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
macro_rules! old_version {
    ($name:literal) => {
        concat!($name, "@GLIBC_2.2.5")
    };
}
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "aarch64"))]
macro_rules! old_version {
    ($name:literal) => {
        concat!($name, "@GLIBC_2.17")
    };
}

#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
extern "C" {
    #[link_name = old_version!("pthread_key_create")]
    pub fn pthread_key_create(
        key: *mut libc::pthread_key_t,
        dtor: Option<unsafe extern "C" fn(*mut libc::c_void)>,
    ) -> libc::c_int;
    #[link_name = old_version!("pthread_setspecific")]
    pub fn pthread_setspecific(key: libc::pthread_key_t, value: *const libc::c_void)
        -> libc::c_int;
    // The background purge thread (`background`): three more calls glibc 2.34
    // (2.32 for pthread_sigmask) moved the same way.
    #[link_name = old_version!("pthread_create")]
    pub fn pthread_create(
        thread: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        start: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
        arg: *mut libc::c_void,
    ) -> libc::c_int;
    #[link_name = old_version!("pthread_attr_setstacksize")]
    pub fn pthread_attr_setstacksize(
        attr: *mut libc::pthread_attr_t,
        size: libc::size_t,
    ) -> libc::c_int;
    #[link_name = old_version!("pthread_sigmask")]
    pub fn pthread_sigmask(
        how: libc::c_int,
        set: *const libc::sigset_t,
        old: *mut libc::sigset_t,
    ) -> libc::c_int;
    // Only the C ABI (operator new's libstdc++ lookup) needs these two.
    #[cfg(feature = "c-abi")]
    #[link_name = old_version!("dlopen")]
    pub fn dlopen(name: *const libc::c_char, flags: libc::c_int) -> *mut libc::c_void;
    #[cfg(feature = "c-abi")]
    #[link_name = old_version!("dlsym")]
    pub fn dlsym(handle: *mut libc::c_void, name: *const libc::c_char) -> *mut libc::c_void;
}

#[cfg(all(
    feature = "c-abi",
    not(all(
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))
))]
pub use libc::{dlopen, dlsym};
#[cfg(not(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub use libc::{
    pthread_attr_setstacksize, pthread_create, pthread_key_create, pthread_setspecific,
    pthread_sigmask,
};
