//! The kernel anchor: the real tools run in a throwaway network namespace.
//!
//! [`Netns::create`] makes `nfrs-bench-<pid>` with `ip netns add`; dropping it runs
//! `ip netns del`, so the namespace goes away on every return path, error or panic included.
//! A run killed by a signal leaves its namespace behind: the next run deletes any
//! `nfrs-bench-<pid>` whose process is gone ([`clean_stale`]). Commands enter the namespace
//! with `nsenter --net=/run/netns/NAME` (lighter than `ip netns exec`, which also remounts
//! /sys), or `ip netns exec` when nsenter is absent. They get their own xtables lock file
//! (`XTABLES_LOCKFILE`, honoured by iptables 1.8.9): `-w` still takes the lock, but other
//! iptables users of a shared machine, working on other namespaces, cannot make the anchor wait.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// Why the kernel anchor cannot run here, or `Ok` when it can.
pub fn availability() -> Result<(), String> {
    if !is_root() {
        return Err("not root (network namespaces and iptables need CAP_NET_ADMIN)".into());
    }
    for tool in ["ip", "iptables-legacy-restore", "iptables-legacy-save"] {
        if find_tool(tool).is_none() {
            return Err(format!("`{tool}` not found on PATH"));
        }
    }
    Ok(())
}

/// True when the effective uid is 0 (read from /proc/self/status, no libc call needed).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// The full path of `tool` on PATH (plus the sbin directories, which a non-login root shell
/// may lack).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes namespaces `nfrs-bench-<pid>` left by runs whose process no longer exists.
/// Returns the names deleted.
pub fn clean_stale() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    let mut gone = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix("nfrs-bench-") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) {
            let ok = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                gone.push(name.to_string());
            }
        }
    }
    gone
}

/// One finished command: wall time from spawn to exit, exit status and output.
#[derive(Debug)]
pub struct Ran {
    pub secs: f64,
    pub output: Output,
}

impl Ran {
    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// `Err` with the tool's stderr when it did not exit 0.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}): {}",
                self.output.status,
                String::from_utf8_lossy(&self.output.stderr).trim()
            ))
        }
    }
}

/// A network namespace owned by this run, deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
    nsenter: Option<PathBuf>,
    lock: PathBuf,
}

impl Netns {
    /// Creates `nfrs-bench-<pid>` (after deleting stale ones of dead runs). One at a time in a
    /// process: a namespace of this name that exists already can only be left over by an
    /// earlier process with the same pid, or by a drop that failed, and is replaced.
    pub fn create() -> Result<Netns, String> {
        clean_stale();
        let name = format!("nfrs-bench-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("cannot run `ip netns add`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`ip netns add {name}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let lock = std::env::temp_dir().join(format!("{name}.xtables.lock"));
        Ok(Netns {
            name,
            nsenter: find_tool("nsenter"),
            lock,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn command(&self, argv: &[&str]) -> Command {
        let mut c = match &self.nsenter {
            Some(nsenter) => {
                let mut c = Command::new(nsenter);
                c.arg(format!("--net=/run/netns/{}", self.name));
                c
            }
            None => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &self.name]);
                c
            }
        };
        c.args(argv);
        c.env("XTABLES_LOCKFILE", &self.lock);
        c
    }

    /// Runs `argv` inside the namespace with `stdin` (a file, or nothing), timing it from spawn
    /// to exit with stdout and stderr collected.
    pub fn run(&self, argv: &[&str], stdin: Option<&Path>) -> Result<Ran, String> {
        let mut c = self.command(argv);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        match stdin {
            Some(p) => {
                let f = std::fs::File::open(p)
                    .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
                c.stdin(f);
            }
            None => {
                c.stdin(Stdio::null());
            }
        }
        let t0 = Instant::now();
        let child = c
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
        let output = child
            .wait_with_output()
            .map_err(|e| format!("waiting for {}: {e}", argv.join(" ")))?;
        Ok(Ran {
            secs: t0.elapsed().as_secs_f64(),
            output,
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
        let ok = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "nfrs bench: warning: could not delete network namespace {} (run `ip netns del {}`)",
                self.name, self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_find_tool() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("no-such-tool-nfrs").is_none());
    }

    #[test]
    fn test_netns_deleted_on_drop() {
        if availability().is_err() {
            eprintln!("skipped: kernel anchor unavailable ({:?})", availability());
            return;
        }
        let ns = Netns::create().unwrap();
        let name = ns.name().to_string();
        let listed = || {
            let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str()))
        };
        assert!(listed());
        let ran = ns.run(&["iptables-legacy-save"], None).unwrap();
        ran.check("iptables-legacy-save").unwrap();
        // -w takes this run's own lock file, which goes with the namespace.
        let ran = ns.run(&["iptables-legacy", "-w", "-S"], None).unwrap();
        ran.check("iptables-legacy -w -S").unwrap();
        assert!(ns.lock.exists(), "{} not used", ns.lock.display());
        let lock = ns.lock.clone();
        drop(ns);
        assert!(!lock.exists());
        assert!(!listed(), "{name} still present after drop");
    }
}
