//! The process's own CPU time and memory, read from `/proc/self` (Linux); `None`
//! elsewhere or when the files cannot be read.

/// CPU time (user + system) the process has used, in seconds: fields 14 and 15 of
/// `/proc/self/stat`, in clock ticks.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_of(&stat, rustix::param::clock_ticks_per_second())
}

/// Parses `/proc/<pid>/stat`: the command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted after the last `)`.
fn cpu_seconds_of(stat: &str, ticks_per_sec: u64) -> Option<f64> {
    if ticks_per_sec == 0 {
        return None;
    }
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: state (3), ppid (4), … utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_sec as f64)
}

/// Resident memory in bytes: `VmRSS` of `/proc/self/status` (in kB there).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    resident_bytes_of(&status)
}

fn resident_bytes_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 1000 200";
        assert_eq!(cpu_seconds_of(stat, 100), Some(3.0));
        assert_eq!(cpu_seconds_of("garbage", 100), None);
        assert_eq!(cpu_seconds_of(stat, 0), None);
        let status = "Name:\tpalisade\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(resident_bytes_of(status), Some(2 * 1024 * 1024));
        assert_eq!(resident_bytes_of("Name: x\n"), None);
    }

    #[test]
    fn this_process_has_figures_on_linux() {
        if cfg!(target_os = "linux") {
            let busy: u64 = (0..2_000_000u64).map(|i| i ^ (i >> 3)).sum();
            assert!(busy > 0);
            assert!(cpu_seconds().is_some_and(|s| s > 0.0));
            assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
        }
    }
}
