//! The lab: throwaway network namespaces built from a scenario's host.
//!
//! One namespace is the device under test (DUT); each DUT interface is one end of a veth pair
//! whose other end (`w0`) sits alone in a "wire" namespace, without address and with ARP off,
//! so that its kernel never answers anything. Frames are injected and captured on the wire ends
//! with AF_PACKET. Every namespace carries a prefix unique to this run and is deleted when the
//! [`Lab`] is dropped, also after an error or an interrupt.

use crate::sys;
use nfrs_scenario::host::{format_mac, Host};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where an exclusive run notes the machine-wide values it changed (its pid, then `name=value`
/// lines), removed once restored.
pub const RESTORE_FILE: &str = "/run/nfrs-kernel-run.restore";

/// The name of the wire end in every wire namespace.
pub const WIRE_IF: &str = "w0";

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a program, feeding `stdin`, returning stdout; a failure carries stderr.
pub fn run_cmd(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", args[0]))?;
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("piped stdin");
        si.write_all(input.as_bytes())
            .map_err(|e| format!("`{}`: writing its input: {e}", args.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes a sysctl by its Linux name in the calling thread's namespace.
pub fn write_sysctl(name: &str, value: &str) -> Result<(), String> {
    let path = sysctl_path(name);
    std::fs::write(&path, format!("{value}\n")).map_err(|e| format!("sysctl {name}={value}: {e}"))
}

/// Reads a sysctl by its Linux name in the calling thread's namespace.
pub fn read_sysctl(name: &str) -> Result<String, String> {
    std::fs::read_to_string(sysctl_path(name))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("sysctl {name}: {e}"))
}

fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// Whether a sysctl names one interface (`net.ipv4.conf.lan0.rp_filter`): such ones are written
/// after the interfaces exist, the others before.
fn names_interface(name: &str, host: &Host) -> bool {
    host.interfaces
        .iter()
        .map(|i| &i.name)
        .chain(host.bridges.iter().map(|b| &b.name))
        .any(|n| name.contains(&format!(".{n}.")))
}

/// Deletes namespaces left by kernel-run processes that no longer exist (a run killed with
/// SIGKILL cannot clean up after itself). Returns the names deleted.
pub fn cleanup_stale() -> Vec<String> {
    let mut gone = Vec::new();
    // Machine-wide settings an exclusive run changed and could not restore.
    if let Ok(note) = std::fs::read_to_string(RESTORE_FILE) {
        let mut lines = note.lines();
        let pid = lines.next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            for l in lines {
                if let Some((k, v)) = l.split_once('=') {
                    if write_sysctl(k, v).is_ok() {
                        gone.push(format!("(restored {k}={v})"));
                    }
                }
            }
            let _ = std::fs::remove_file(RESTORE_FILE);
        }
    }
    let Ok(rd) = std::fs::read_dir("/run/netns") else {
        return gone;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Our names: nfrs<pid>x<run>-<role>.
        let Some(rest) = name.strip_prefix("nfrs") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if sys::delete_netns(&name).is_ok() {
            gone.push(name);
        }
    }
    gone
}

/// The namespaces of one run, deleted on drop.
pub struct Lab {
    /// The DUT namespace name.
    pub dut: String,
    /// The wire namespace of each interface, in `[[interface]]` order.
    pub wires: Vec<String>,
    created: Vec<String>,
    /// The namespace this process started in.
    pub home: OwnedFd,
    /// The DUT namespace.
    pub dut_fd: Option<OwnedFd>,
    /// The wire namespaces.
    pub wire_fds: Vec<OwnedFd>,
    restore_global: Vec<(String, String)>,
}

impl Lab {
    /// Builds the namespaces, interfaces, addresses, routes, neighbours and sysctls of `host`.
    /// `peers` are the addresses the DUT must reach without ARP: each gets a permanent
    /// neighbour entry on the interface whose subnet holds it.
    pub fn build(host: &Host, peers: &[Ipv4Addr]) -> Result<Lab, String> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("nfrs{}x{}", std::process::id(), n);
        let mut lab = Lab {
            dut: format!("{prefix}-dut"),
            wires: (1..=host.interfaces.len())
                .map(|i| format!("{prefix}-w{i}"))
                .collect(),
            created: Vec::new(),
            home: sys::open_ro("/proc/thread-self/ns/net")
                .map_err(|e| format!("cannot open own network namespace: {e}"))?,
            dut_fd: None,
            wire_fds: Vec::new(),
            restore_global: Vec::new(),
        };
        lab.setup(host, peers)?;
        Ok(lab)
    }

    fn check_interrupt() -> Result<(), String> {
        if crate::signals::interrupted() {
            return Err("interrupted".into());
        }
        Ok(())
    }

    fn setup(&mut self, host: &Host, peers: &[Ipv4Addr]) -> Result<(), String> {
        // Namespaces.
        let mut all = vec![self.dut.clone()];
        all.extend(self.wires.iter().cloned());
        Self::check_interrupt()?;
        // Recorded before creation: a partial failure still deletes whatever exists.
        self.created = all.clone();
        let batch: String = all.iter().map(|ns| format!("netns add {ns}\n")).collect();
        run_cmd(&["ip", "-batch", "-"], Some(&batch))?;
        let open = |ns: &str| {
            sys::open_ro(&format!("/run/netns/{ns}")).map_err(|e| format!("namespace {ns}: {e}"))
        };
        self.dut_fd = Some(open(&self.dut)?);
        for w in &self.wires {
            self.wire_fds.push(open(w)?);
        }

        // IPv6 off everywhere before any interface exists (no DAD, RS or MLD frames).
        let v6off = || -> std::io::Result<()> {
            for k in ["all", "default"] {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{k}/disable_ipv6"), "1\n")?;
            }
            Ok(())
        };
        for fd in &self.wire_fds {
            sys::in_netns(&self.home, fd, v6off).map_err(|e| format!("wire ipv6 off: {e}"))?;
        }
        let dut_fd = self.dut_fd.as_ref().expect("just set");
        // The lab's sysctls, then the scenario's (those naming no interface).
        let sysctls = host.effective_sysctls();
        let globals = host.global_sysctls();
        let mut err = None;
        sys::in_netns(&self.home, dut_fd, || {
            for (k, v) in &sysctls {
                if globals.contains(&k.as_str()) || names_interface(k, host) {
                    continue;
                }
                if let Err(e) = write_sysctl(k, v) {
                    err = Some(e);
                    break;
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = err {
            return Err(e);
        }
        // Machine-wide settings (only for `exclusive` scenarios): remember and restore.
        for g in &globals {
            let old = read_sysctl(g)?;
            self.restore_global.push((g.to_string(), old));
        }
        if !self.restore_global.is_empty() {
            // Written before changing anything, so that `--cleanup` can restore the machine if
            // this process is killed outright.
            let mut note = format!("{}\n", std::process::id());
            for (k, v) in &self.restore_global {
                note.push_str(&format!("{k}={v}\n"));
            }
            std::fs::write(RESTORE_FILE, note).map_err(|e| format!("{RESTORE_FILE}: {e}"))?;
            for g in &globals {
                let new = host.sysctls.get(*g).cloned().unwrap_or_default();
                write_sysctl(g, &new)?;
            }
        }

        // Interfaces: each veth end created directly in its namespace.
        // Distinct interface indexes on the two ends: when a veth's index equals its peer's (both
        // 2 in fresh namespaces), the kernel treats its carrier change as non-urgent and the
        // interface only starts forwarding about a second later.
        let mut batch = String::from("link set lo up\n");
        for (i, ifc) in host.interfaces.iter().enumerate() {
            batch.push_str(&format!(
                "link add {} index {} address {} mtu {} type veth peer name {} index {} mtu 65535 netns {}\n",
                ifc.name,
                100 + i,
                format_mac(&ifc.mac),
                ifc.mtu,
                WIRE_IF,
                1000 + i,
                self.wires[i]
            ));
        }
        for b in &host.bridges {
            batch.push_str(&format!(
                "link add {} address {} type bridge stp_state 0 forward_delay 0 mcast_snooping 0 ageing_time {}\n",
                b.name,
                format_mac(&b.mac),
                u64::from(b.ageing_time) * 100
            ));
            for p in &b.ports {
                batch.push_str(&format!("link set {p} master {}\n", b.name));
            }
        }
        Self::check_interrupt()?;
        run_cmd(&["ip", "-n", &self.dut, "-batch", "-"], Some(&batch))?;

        // Sysctls naming an interface, now that it exists.
        let mut err = None;
        sys::in_netns(&self.home, dut_fd, || {
            for (k, v) in &sysctls {
                if names_interface(k, host) {
                    if let Err(e) = write_sysctl(k, v) {
                        err = Some(e);
                        break;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = err {
            return Err(e);
        }

        // Offloads off on the DUT side: a checksum left to the "hardware" would reach the wire
        // unfinished.
        // One shell for all of them (each program start costs milliseconds).
        // `lo` too: a packet the host sends to itself would otherwise be delivered (and seen by
        // the local-delivery observer) with its transport checksum left unfinished.
        let mut script = format!(
            "set -e\nip netns exec {} ethtool -K lo rx off tx off sg off tso off gso off gro off\n",
            self.dut
        );
        for ifc in &host.interfaces {
            script.push_str(&format!(
                "ip netns exec {} ethtool -K {} rx off tx off sg off tso off gso off gro off\n",
                self.dut, ifc.name
            ));
        }
        for b in &host.bridges {
            script.push_str(&format!(
                "ip netns exec {} ethtool -K {} tx off sg off tso off gso off gro off\n",
                self.dut, b.name
            ));
        }
        for w in &self.wires {
            script.push_str(&format!("ip -n {w} link set {WIRE_IF} arp off up\n"));
        }
        Self::check_interrupt()?;
        run_cmd(&["sh", "-s"], Some(&script))?;

        let mut batch = String::new();
        for ifc in &host.interfaces {
            for a in &ifc.addresses {
                let brd = if a.prefix < 31 { " brd +" } else { "" };
                batch.push_str(&format!("addr add {a}{brd} dev {}\n", ifc.name));
            }
            batch.push_str(&format!("link set {} up\n", ifc.name));
        }
        for b in &host.bridges {
            for a in &b.addresses {
                let brd = if a.prefix < 31 { " brd +" } else { "" };
                batch.push_str(&format!("addr add {a}{brd} dev {}\n", b.name));
            }
            batch.push_str(&format!("link set {} up\n", b.name));
        }
        for r in &host.routes {
            let to = match r.to {
                Some(c) => c.to_string(),
                None => "default".into(),
            };
            let via = r.via.map(|v| format!(" via {v}")).unwrap_or_default();
            batch.push_str(&format!("route add {to}{via} dev {}\n", r.dev));
        }
        let mut seen = std::collections::BTreeSet::new();
        for nb in &host.neighbours {
            seen.insert((nb.dev.clone(), nb.address));
            batch.push_str(&format!(
                "neigh replace {} lladdr {} dev {} nud permanent\n",
                nb.address,
                format_mac(&nb.mac),
                nb.dev
            ));
        }
        // Every address of a small connected subnet gets an entry, so that the DUT never ARPs
        // (SCENARIOS.md: an address without an entry has the interface's default neighbour MAC);
        // larger subnets get the addresses the scenario mentions.
        let mut all_peers: Vec<Ipv4Addr> = peers.to_vec();
        let own = host
            .interfaces
            .iter()
            .flat_map(|i| i.addresses.iter())
            .chain(host.bridges.iter().flat_map(|b| b.addresses.iter()));
        for c in own {
            if c.prefix >= 22 && c.prefix <= 30 {
                let net = u32::from(c.network());
                let bcast = u32::from(c.broadcast());
                all_peers.extend((net + 1..bcast).map(Ipv4Addr::from));
            }
        }
        for p in &all_peers {
            if host.is_local_address(*p) {
                continue;
            }
            let Some(dev) = host.connected_device(*p) else {
                continue;
            };
            if host
                .device_addresses(dev)
                .iter()
                .any(|c| c.broadcast() == *p || c.network() == *p)
            {
                continue;
            }
            if !seen.insert((dev.to_string(), *p)) {
                continue;
            }
            let mac = host.neighbour_mac(dev, *p).expect("device exists");
            batch.push_str(&format!(
                "neigh replace {p} lladdr {} dev {dev} nud permanent\n",
                format_mac(&mac)
            ));
        }
        Self::check_interrupt()?;
        run_cmd(&["ip", "-n", &self.dut, "-batch", "-"], Some(&batch))?;
        self.wait_running(host)?;
        Ok(())
    }

    /// Polls until every interface (both ends) is running: before that a veth drops frames.
    fn wait_running(&self, host: &Host) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let dut_fd = self.dut_fd.as_ref().expect("built");
        loop {
            Self::check_interrupt()?;
            let mut all = true;
            for ifc in &host.interfaces {
                let up = sys::in_netns(&self.home, dut_fd, || Ok(oper_up(&ifc.name)))
                    .map_err(|e| e.to_string())?;
                all &= up;
            }
            for b in &host.bridges {
                let up = sys::in_netns(&self.home, dut_fd, || Ok(oper_up(&b.name)))
                    .map_err(|e| e.to_string())?;
                all &= up;
            }
            for fd in &self.wire_fds {
                let up = sys::in_netns(&self.home, fd, || Ok(oper_up(WIRE_IF)))
                    .map_err(|e| e.to_string())?;
                all &= up;
            }
            if all && !host.bridges.is_empty() {
                // Bridge ports start out blocking even without STP: wait for forwarding.
                let out = self.dut_cmd(&["bridge", "-j", "link"], None)?;
                let ports = host.bridges.iter().map(|b| b.ports.len()).sum::<usize>();
                all = out.matches("\"state\":\"forwarding\"").count() >= ports;
            }
            if all {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("interfaces did not come up within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs a command inside the DUT namespace.
    pub fn dut_cmd(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", &self.dut];
        full.extend_from_slice(args);
        run_cmd(&full, stdin)
    }

    /// The DUT namespace fd.
    pub fn dut(&self) -> &OwnedFd {
        self.dut_fd.as_ref().expect("built")
    }
}

/// Whether interface `name` of the calling thread's namespace is running (IFF_RUNNING: carrier
/// and operational state up, queueing discipline attached).
fn oper_up(name: &str) -> bool {
    sys::if_running(name).unwrap_or(false)
}

impl Drop for Lab {
    fn drop(&mut self) {
        let had_globals = !self.restore_global.is_empty();
        for (k, v) in self.restore_global.drain(..) {
            if let Err(e) = write_sysctl(&k, &v) {
                eprintln!("kernel-run: could not restore {k}={v}: {e}");
            }
        }
        if had_globals {
            let _ = std::fs::remove_file(RESTORE_FILE);
        }
        self.dut_fd = None;
        self.wire_fds.clear();
        if std::env::var_os("NFRS_ORACLE_KEEP_LAB").is_some() {
            // Debugging aid: leave the namespaces for inspection (delete them by hand).
            eprintln!("kernel-run: keeping namespaces {:?}", self.created);
            return;
        }
        for ns in self.created.drain(..) {
            match sys::delete_netns(&ns) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("kernel-run: could not delete namespace {ns}: {e}"),
            }
        }
    }
}
