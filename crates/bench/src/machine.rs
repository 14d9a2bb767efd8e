//! The machine a run measured: CPU model, cores, kernel, memory and load, read from /proc.

use std::fmt;

/// What the figures were measured on.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// `model name` of the first CPU in /proc/cpuinfo.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// /proc/sys/kernel/osrelease.
    pub kernel: String,
    /// MemTotal in bytes.
    pub memory: u64,
    /// The 1-minute load average when the run started (other work shares the machine).
    pub load1: f64,
}

impl Machine {
    /// Reads the description of this machine; fields that cannot be read say "unknown" / 0.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".to_string());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            })
            .unwrap_or(0);
        let load1 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores,
            kernel,
            memory,
            load1,
        }
    }
}

impl fmt::Display for Machine {
    /// One line: `AMD EPYC, 2 cores, Linux 6.18.44, 23.5 GiB RAM, load 1.20`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, Linux {}, {:.1} GiB RAM, load {:.2} at start",
            self.cpu,
            self.cores,
            self.kernel,
            self.memory as f64 / (1u64 << 30) as f64,
            self.load1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_detect_reads_proc() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.memory > 0);
        assert!(!m.kernel.is_empty() && m.kernel != "unknown");
        let line = m.to_string();
        assert!(line.contains(" cores, Linux "), "{line}");
    }
}
