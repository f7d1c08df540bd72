//! Which CPUs the data plane may use: the process's affinity mask, capped by the cgroup v2 CPU
//! quota (`cpu.max`). Running more executors than the quota allows only makes them steal time
//! from each other, so a container limited to 1.5 CPUs gets two executors, not one per host core.

use std::path::{Path, PathBuf};

/// The CPUs of the process's affinity mask, in ascending order.
///
/// # Errors
/// When `sched_getaffinity` fails (it does not for the calling process on Linux).
pub fn affinity_cpus() -> std::io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero bytes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed; pid 0 is this thread.
    let result = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the size of the set.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    Ok(cpus)
}

/// The CPU quota of a cgroup v2 `cpu.max` file's contents (`"<quota> <period>"` or
/// `"max <period>"`), rounded up to whole CPUs; `None` when unlimited or unreadable.
#[must_use]
pub fn parse_cpu_max(contents: &str) -> Option<usize> {
    let mut fields = contents.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?;
    let period: u64 = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    if period == 0 || quota == 0 {
        return None;
    }
    usize::try_from(quota.div_ceil(period)).ok()
}

/// The cgroup v2 directory of this process (from `/proc/self/cgroup`'s `0::<path>` line) under
/// `/sys/fs/cgroup`, where `cpu.max` and `memory.max` live.
#[must_use]
pub fn own_cgroup_dir() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = text.lines().find_map(|line| line.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(relative.trim_start_matches('/')))
}

/// The cgroup v2 CPU quota in whole CPUs, checking this process's cgroup and its ancestors (the
/// tightest limit wins); `None` when no cgroup sets one.
#[must_use]
pub fn cgroup_cpu_quota() -> Option<usize> {
    let mut dir = own_cgroup_dir()?;
    let mut tightest: Option<usize> = None;
    loop {
        if let Some(quota) = std::fs::read_to_string(dir.join("cpu.max")).ok().as_deref().and_then(parse_cpu_max) {
            tightest = Some(tightest.map_or(quota, |t| t.min(quota)));
        }
        if dir == Path::new("/sys/fs/cgroup") || !dir.pop() {
            break;
        }
    }
    tightest
}

/// The CPUs the data plane runs on: `requested` of them if set (at most as many as usable), else
/// as many as the affinity mask and the cgroup quota allow; always at least one.
///
/// # Errors
/// When the affinity mask cannot be read.
pub fn data_plane_cpus(requested: Option<usize>) -> std::io::Result<Vec<usize>> {
    let mut cpus = affinity_cpus()?;
    let usable = cgroup_cpu_quota().map_or(cpus.len(), |quota| quota.min(cpus.len())).max(1);
    cpus.truncate(requested.map_or(usable, |wanted| wanted.clamp(1, cpus.len().max(1))));
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_rounds_quota_up_to_whole_cpus() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("100000 100000"), Some(1));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(parse_cpu_max("400000"), Some(4));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cpu_max("100 0"), None);
    }

    #[test]
    fn affinity_mask_matches_the_kernels_count() {
        let cpus = affinity_cpus().unwrap();
        assert_eq!(cpus.len(), std::thread::available_parallelism().unwrap().get());
        assert!(cpus.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn requested_cores_are_capped_by_what_is_usable() {
        let all = affinity_cpus().unwrap();
        assert_eq!(data_plane_cpus(Some(1)).unwrap(), all[..1]);
        assert_eq!(data_plane_cpus(Some(10_000)).unwrap(), all);
        assert_eq!(data_plane_cpus(Some(0)).unwrap().len(), 1);
        assert!(!data_plane_cpus(None).unwrap().is_empty());
    }
}
