//! How the processes of the daemon ask glibc's allocator to hand memory back.

/// Blocks of at least this size get their own mapping, returned to the system when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Fixes glibc's mmap threshold at its default of 128 KiB. Left alone, glibc raises it to the size
/// of each large block freed (up to 32 MiB), after which blocks that size come from the heap
/// arenas, where freed space stays resident: model loading (ONNX Runtime, llama.cpp,
/// whisper.cpp) frees many such blocks. Setting it also turns that adjustment off. Call before
/// loading models; a no-op on other C libraries.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
