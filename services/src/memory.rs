//! Giving freed memory back to the system.

/// Returns the allocator's free memory to the system (glibc keeps what was freed in
/// its arenas, so a node's resident size would stay at its peak after many sessions
/// passivated). Blocking: it walks the heap; call it off the async threads. A no-op
/// where the allocator is not glibc's.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free pages of the allocator's own heap; it
    // takes no pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
