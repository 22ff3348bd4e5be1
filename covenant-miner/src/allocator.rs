//! The heap allocator of the node binaries.
//!
//! jemalloc, because a node's threads keep allocating and freeing each
//! other's buffers: in a 32-client write profile glibc's malloc took 5.3 %
//! of all CPU and jemalloc 2.5 %. Chosen by each binary, not by this
//! library, so an application that links it keeps its own allocator.

#[cfg(unix)]
#[doc(hidden)]
pub use tikv_jemallocator;

/// Makes jemalloc the calling binary's global allocator (on Unix; elsewhere
/// the system's stays). Invoke once, at the binary's top level.
#[macro_export]
macro_rules! node_allocator {
    () => {
        #[cfg(unix)]
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::tikv_jemallocator::Jemalloc =
            $crate::allocator::tikv_jemallocator::Jemalloc;
    };
}
