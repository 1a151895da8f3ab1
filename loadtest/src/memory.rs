//! A process's memory, from /proc.

/// `VmRSS` and `VmHWM` (peak) of `pid` in KiB, if the process exists.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time `pid` has used (user + system) in milliseconds, if the process exists.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing paren are fixed:
    // utime and stime are the 12th and 13th of them, in clock ticks.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports them in USER_HZ ticks, which its ABI fixes at 100 per second.
    Some((utime + stime) * 10.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_memory() {
        let (rss, peak) = super::rss_kib(std::process::id()).unwrap();
        assert!(rss > 0 && peak >= rss);
        assert_eq!(super::rss_kib(u32::MAX), None);
    }

    #[test]
    fn reads_our_own_cpu_time_and_it_grows() {
        let before = super::cpu_ms(std::process::id()).unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = super::cpu_ms(std::process::id()).unwrap();
        assert!(after > before, "{before} -> {after}");
        assert_eq!(super::cpu_ms(u32::MAX), None);
    }
}
