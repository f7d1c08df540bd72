//! Checks, before any executor starts, that this process may use io_uring, so that a container
//! without it gets one line naming the cause and the fix instead of a panic deep in the reactor.

/// Why the data plane cannot start on this host.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreflightError {
    /// `io_uring_setup` is refused: seccomp (Docker's default profile before 25.0 and many
    /// hardened profiles block it) or the `kernel.io_uring_disabled` sysctl.
    #[error(
        "io_uring is not permitted in this environment (io_uring_setup: {errno_name}); spanpipe's data plane needs it. \
         Fix: allow the io_uring syscalls in the seccomp profile (e.g. `docker run --security-opt seccomp=unconfined`, \
         or a profile that permits io_uring_setup, io_uring_enter and io_uring_register) and make sure \
         `sysctl kernel.io_uring_disabled` is 0"
    )]
    Forbidden {
        /// `EPERM` or `EACCES`.
        errno_name: &'static str,
    },
    /// The kernel has no io_uring (older than 5.1, or built without it), or a seccomp filter
    /// answers ENOSYS.
    #[error(
        "io_uring is not available (io_uring_setup: ENOSYS): the kernel lacks it or a seccomp filter hides it. \
         Fix: run on Linux 5.8 or newer and allow io_uring in the seccomp profile \
         (e.g. `docker run --security-opt seccomp=unconfined`)"
    )]
    Unsupported,
    /// Too little locked memory for the rings.
    #[error(
        "too little locked memory for io_uring: the memlock limit is {limit_kib} KiB, at least {needed_kib} KiB is needed. \
         Fix: raise it (`ulimit -l unlimited`, systemd `LimitMEMLOCK=infinity`, or `docker run --ulimit memlock=-1`)"
    )]
    LockedMemory {
        /// The current soft limit.
        limit_kib: u64,
        /// What the reactor needs.
        needed_kib: u64,
    },
    /// Any other failure of `io_uring_setup`.
    #[error("io_uring could not be set up: {0}")]
    Other(String),
}

/// The smallest memlock limit glommio's reactor accepts.
const MIN_MEMLOCK_BYTES: u64 = 512 * 1024;

/// Creates (and closes) a one-entry io_uring and checks the memlock limit.
///
/// # Errors
/// A [`PreflightError`] naming the cause and the fix.
pub fn check_io_uring() -> Result<(), PreflightError> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
        && limit.rlim_cur < MIN_MEMLOCK_BYTES
    {
        return Err(PreflightError::LockedMemory {
            limit_kib: limit.rlim_cur / 1024,
            needed_kib: MIN_MEMLOCK_BYTES / 1024,
        });
    }
    // `struct io_uring_params` is 120 bytes; all zero asks for the defaults.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup reads and writes exactly one `io_uring_params` (120 bytes) at the
    // pointer, which `params` provides; the returned descriptor is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: `fd` is the descriptor io_uring_setup just returned; nothing else holds it.
        unsafe { libc::close(fd as libc::c_int) };
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    Err(match error.raw_os_error() {
        Some(libc::EPERM) => PreflightError::Forbidden { errno_name: "EPERM" },
        Some(libc::EACCES) => PreflightError::Forbidden { errno_name: "EACCES" },
        Some(libc::ENOSYS) => PreflightError::Unsupported,
        Some(libc::ENOMEM) => {
            PreflightError::LockedMemory { limit_kib: limit.rlim_cur / 1024, needed_kib: MIN_MEMLOCK_BYTES / 1024 }
        }
        _ => PreflightError::Other(error.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_uring_is_usable_on_the_test_host() {
        assert_eq!(check_io_uring(), Ok(()));
    }

    #[test]
    fn messages_are_one_line_naming_cause_and_fix() {
        for error in [
            PreflightError::Forbidden { errno_name: "EPERM" },
            PreflightError::Unsupported,
            PreflightError::LockedMemory { limit_kib: 64, needed_kib: 512 },
        ] {
            let text = error.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.contains("Fix:"), "{text}");
        }
    }
}
