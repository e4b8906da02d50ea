//! Fuzz target `message_set`: see `gregor::fuzz_targets::message_set` for what it feeds and checks.
#![no_main]

// The broker's own allocator, as in the binary: huge reservations from hostile counts are
// lazily mapped there instead of aborting (see src/alloc.rs).
#[global_allocator]
static ALLOCATOR: gregor::alloc::GregorAlloc = gregor::alloc::GregorAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| gregor::fuzz_targets::message_set(data));
