//! The LD_PRELOAD shared object: links the hz3 core with its C ABI (feature
//! `c-abi`) into one cdylib, so the release profile's fat LTO inlines the whole
//! allocator into the exported entry points. Owns no code of its own.

pub use hz3::c_abi;
