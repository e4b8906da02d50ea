//! The global allocator: the system allocator, except that very large allocations are
//! served by `mmap(MAP_NORESERVE)`.
//!
//! Why: the protocol crate decodes an array by first reserving `count` elements, with
//! `count` read from the request. A hostile count (2^31 topics in a 20-byte Metadata
//! request) asks for hundreds of GB; the system allocator refuses and Rust aborts the whole
//! process. Reserved-but-untouched `MAP_NORESERVE` memory costs nothing, the decoder fails
//! at the first missing element, and the mapping is released: the request is answered
//! with a closed connection and no other client notices. Memory that is actually written
//! is bounded by the request size, which `socket.request.max.bytes` limits.

// unsafe is denied crate-wide (Cargo.toml [lints]); allowed here because the global
// allocator is unsafe by contract and calls mmap, munmap and mallopt.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of at least this many bytes are mapped directly.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct GregorAlloc;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint has no preconditions.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast::<u8>()
    }
}

// SAFETY: every method either forwards to `System` with the caller's layout or serves a
// page-aligned anonymous mapping of at least `layout.size()` bytes (alignment <= PAGE is
// checked by `is_huge`), released with the same size it was mapped with.
unsafe impl GlobalAlloc for GregorAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: see `map`.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Anonymous mappings are zero-filled.
            // SAFETY: see `map`.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from `map` with this size (same layout as at allocation).
            unsafe {
                libc::munmap(ptr.cast::<libc::c_void>(), layout.size());
            }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a fresh allocation, a copy of the overlapping prefix, and the release of
        // the old block with the layout it was allocated with.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

/// Tunes glibc's malloc for a broker that receives requests of up to a few MB: buffers
/// below 16 MiB come from the heap instead of fresh `mmap`s, and up to 16 MiB of freed heap
/// is kept instead of being handed back at once. Without this, every 1 MB produce request
/// landed in newly faulted, zeroed pages (about 10 % of broker CPU when producing at
/// 800 MB/s, measured with perf). Idle memory stays small: the heap only holds what
/// recent requests needed, at most 16 MiB free per arena.
pub fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; called once before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hostile_reservation_does_not_abort() {
        // 64 GiB reserved, a few bytes used.
        let mut v: Vec<u64> = Vec::with_capacity(8 << 30);
        v.push(1);
        assert_eq!(v[0], 1);
    }
}
