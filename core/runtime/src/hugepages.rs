//! Opting the process out of transparent huge pages.
//!
//! mimalloc asks the kernel for huge pages on its arena (`madvise(MADV_HUGEPAGE)`), so on a host
//! whose THP setting is `madvise` or `always` every arena region the collector touches becomes
//! resident 2 MiB at a time. For a collector whose big allocations are batches of a few MiB that
//! live for one export, that inflates the resident set without a matching gain: measured on the
//! end-to-end probe (one core, 100-span OTLP/gRPC requests), disabling THP took the idle resident
//! set from 17 to 8 MiB, receive → drop from 28 to 14 MiB peak and uncompressed forwarding from
//! 68–98 to 55 MiB, at equal or lower CPU per span. `prctl(PR_SET_THP_DISABLE)` applies to every
//! later page fault of the process (and is inherited by children), so it is set once, before the
//! data plane allocates.

/// Disables transparent huge pages for this process. Returns whether the kernel agreed; a kernel
/// without the option (before 3.15) leaves things as they were, which only costs memory.
pub fn disable_transparent_huge_pages() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers; the unused arguments
    // must be zero.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay enabled");
    }
    result == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_reports_the_flag_set() {
        assert!(disable_transparent_huge_pages());
        // SAFETY: PR_GET_THP_DISABLE takes no pointers and returns the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
