//! Connection-table figures (group `conntrack`), through nfrs-conntrack's public API:
//! bytes a source-NATed entry costs, entries created a second (track + NAT reply + confirm, no
//! rules), and established lookups a second. The workload is the gateway of issue 7: UDP flows
//! from 10.0.0.0/8 clients to one server, masqueraded behind 198.51.100.0/24.

use std::time::Instant;

use nfrs_conntrack::{status, ConnTable, CtConfig, Hook, Packet, Tuple, SEC};

use crate::figures::Config;
use crate::report::{Better, Figure, Report};

const SERVER: u32 = 0xcb00_710a; // 203.0.113.10
const SERVER_PORT: u16 = 53;
const CLIENT_BASE: u32 = 0x0a00_0000; // 10.0.0.0
const MASQ_BASE: u32 = 0xc633_6401; // 198.51.100.1
const PROTO_UDP: u8 = 17;

/// The original tuple's source (address, port) of flow `i`.
fn client(i: u32) -> (u32, u16) {
    (CLIENT_BASE + 1 + i / 50_000, 10_000 + (i % 50_000) as u16)
}

/// The masqueraded reply tuple of flow `i` (distinct for every flow).
fn masq_reply(i: u32) -> Tuple {
    Tuple::ports(
        PROTO_UDP,
        SERVER,
        SERVER_PORT,
        MASQ_BASE + i / 60_000,
        1024 + (i % 60_000) as u16,
    )
}

fn udp_header(sport: u16, dport: u16) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&8u16.to_be_bytes());
    // Checksum 0: UDP over IPv4 without a checksum, which conntrack accepts.
    h
}

/// A table of `n` confirmed, source-NATed UDP entries, built as the packet path would:
/// track at PREROUTING, NAT decides the reply tuple, by-source index, confirm.
pub fn fill(n: u32) -> Result<ConnTable, String> {
    let cfg = CtConfig {
        max: n + 16,
        buckets: n.max(1),
        ..CtConfig::default()
    };
    let mut t = ConnTable::new(cfg);
    t.reserve(n as usize);
    let now = SEC;
    for i in 0..n {
        let (src, sport) = client(i);
        let l4 = udp_header(sport, SERVER_PORT);
        let pkt = Packet {
            src,
            dst: SERVER,
            proto: PROTO_UDP,
            later_fragment: false,
            l4: &l4,
        };
        let tr = t.track(&pkt, 0, Hook::PreRouting, now);
        let id = match tr.conn {
            Some(id) if tr.unconfirmed && !tr.drop => id,
            _ => return Err(format!("conntrack did not create flow {i}: {tr:?}")),
        };
        t.set_reply(id, masq_reply(i));
        t.get_mut(id).status |= status::SRC_NAT | status::SRC_NAT_DONE;
        t.nat_bysource_add(id);
        t.confirm(id, now)
            .map_err(|e| format!("confirm of flow {i} failed: {e:?}"))?;
    }
    Ok(t)
}

/// Resident set size of this process in bytes (/proc/self/statm, 4 KiB pages assumed only
/// when smaps_rollup is unreadable).
pub fn rss_bytes() -> u64 {
    if let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        if let Some(kb) = s.lines().find_map(|l| {
            l.strip_prefix("Rss:")
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        }) {
            return kb * 1024;
        }
    }
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// The kernel's nf_conn slab object size from /proc/slabinfo (root only).
pub fn kernel_conn_objsize() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/slabinfo")
        .map_err(|e| format!("/proc/slabinfo unreadable: {e}"))?;
    s.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "nf_conntrack").then(|| f.nth(2)?.parse::<u64>().ok())?
        })
        .ok_or_else(|| "no nf_conntrack slab (module not loaded)".to_string())
}

/// Slab memory of the whole machine in bytes (/proc/meminfo `Slab`).
fn slab_bytes() -> Result<u64, String> {
    let m = std::fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
    m.lines()
        .find_map(|l| {
            let v = l.strip_prefix("Slab:")?;
            v.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no Slab line in /proc/meminfo".to_string())
}

/// `conntrack -R` input creating `n` source-NATed UDP entries like [`fill`]'s: the same
/// original tuples, SNAT to one 198.51.100.x address per 50k flows (ports kept, no clash).
pub fn conntrack_load_file(n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 190);
    for i in 0..n {
        let (src, sport) = client(i);
        let src = std::net::Ipv4Addr::from(src);
        let server = std::net::Ipv4Addr::from(SERVER);
        let nat = std::net::Ipv4Addr::from(MASQ_BASE + i / 50_000);
        s.push_str(&format!(
            "-I -p udp -s {src} -d {server} --sport {sport} --dport {SERVER_PORT} -r {server} -q {src} --reply-port-src {SERVER_PORT} --reply-port-dst {sport} -t 600 --src-nat {nat}\n"
        ));
    }
    s
}

/// The kernel's memory a source-NATed entry: `n` entries loaded with `conntrack -R` into a
/// throwaway namespace, growth of the machine's slab memory divided by the entries created.
/// The machine is shared, so other activity adds noise (a few % at 100k entries).
pub fn kernel_bytes_per_entry(n: u32) -> Result<(f64, u32), String> {
    crate::kernel::availability()?;
    if crate::kernel::find_tool("conntrack").is_none() {
        return Err("`conntrack` (conntrack-tools) not found on PATH".into());
    }
    let file = crate::figures::TempFile::write("conntrack.load", &conntrack_load_file(n))?;
    let path = file.path().to_string_lossy().into_owned();
    let ns = crate::kernel::Netns::create()?;
    let before = slab_bytes()?;
    let ran = ns.run(&["conntrack", "-R", &path], None)?;
    let after = slab_bytes()?;
    let count = ns.run(&["conntrack", "-C"], None)?;
    count.check("conntrack -C")?;
    let created: u32 = count
        .stdout()
        .trim()
        .parse()
        .map_err(|_| format!("conntrack -C printed {:?}", count.stdout()))?;
    if created < n - n / 10 {
        let why = String::from_utf8_lossy(&ran.output.stderr)
            .trim()
            .to_string();
        return Err(format!(
            "conntrack -R created {created} of {n} entries: {why}"
        ));
    }
    Ok((
        after.saturating_sub(before) as f64 / f64::from(created),
        created,
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// The `conntrack` group.
pub fn conntrack_figures(cfg: &Config, report: &mut Report) {
    let n: u32 = if cfg.quick { 10_000 } else { 1_000_000 };
    let lookups_flows: u32 = 10_000;
    let runs = cfg.runs.unwrap_or(if cfg.quick { 3 } else { 5 }).max(1);
    let size = crate::figures::human_count(n as usize);
    report.workloads.push(format!(
        "conntrack: {size} UDP flows 10.0.0.0/8 -> 203.0.113.10:53, masqueraded behind 198.51.100.0/24 (reply tuple rewritten, by-source indexed), table sized to the flows"
    ));
    let mut bytes = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..runs {
        let before = rss_bytes();
        let t0 = Instant::now();
        let table = match fill(n) {
            Ok(t) => t,
            Err(e) => {
                report
                    .warnings
                    .push(format!("conntrack: building the table failed: {e}"));
                return;
            }
        };
        let dt = t0.elapsed().as_secs_f64();
        let after = rss_bytes();
        if table.count() != n {
            report.warnings.push(format!(
                "conntrack: {} entries in the table, {n} expected",
                table.count()
            ));
            return;
        }
        bytes.push(after.saturating_sub(before) as f64 / f64::from(n));
        rates.push(f64::from(n) / dt / 1e6);
        drop(std::hint::black_box(table));
    }

    let kernel_n: u32 = if cfg.quick { 2_000 } else { 100_000 };
    let measured = if cfg.kernel {
        kernel_bytes_per_entry(kernel_n)
    } else {
        Err("kernel anchor not requested (--no-kernel)".to_string())
    };
    let (anchor, anchor_value, note) = match measured {
        Ok((b, created)) => (
            format!("kernel slab growth, {} SNATed entries via conntrack -R (netns)", crate::figures::human_count(created as usize)),
            Some(b),
            "anchor: /proc/meminfo Slab growth while `conntrack -R` loads source-NATed UDP entries into a throwaway namespace (nf_conn + its extension area; the kernel's hash table is preallocated and not counted); the machine is shared, so other activity adds noise".to_string(),
        ),
        Err(why) => match (cfg.kernel, kernel_conn_objsize()) {
            (true, Ok(sz)) => (
                "kernel nf_conn slab object (/proc/slabinfo)".to_string(),
                Some(sz as f64),
                format!("kernel load measurement failed ({why}); anchor is the kernel's nf_conn object alone: its NAT extension and hash buckets are not counted, so the ratio is conservative"),
            ),
            _ => ("n/a".to_string(), None, format!("anchor n/a: {why}")),
        },
    };
    report.figures.push(Figure {
        key: "conntrack",
        name: format!("conntrack bytes per entry, {size} NATed flows"),
        value: median(bytes),
        unit: "B",
        better: Better::Lower,
        anchor,
        anchor_value,
        method: format!("RSS growth / entries, median of {runs}"),
        notes: vec![note],
    });
    report.figures.push(Figure {
        key: "conntrack",
        name: format!("conntrack new entries, {size} flows (no rules)"),
        value: median(rates),
        unit: "M/s",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["track + NAT reply + by-source + confirm, no rule evaluation; anchor n/a: the kernel's new-connection rate is measured whole-path in the lab group (root)".into()],
    });

    // Established lookups: both directions of 10k flows, in a scattered order.
    let table = match fill(lookups_flows) {
        Ok(t) => t,
        Err(e) => {
            report.warnings.push(format!("conntrack: {e}"));
            return;
        }
    };
    let mut table = table;
    let mut keys: Vec<Tuple> = (0..lookups_flows)
        .flat_map(|i| {
            let (src, sport) = client(i);
            [
                Tuple::ports(PROTO_UDP, src, sport, SERVER, SERVER_PORT),
                masq_reply(i),
            ]
        })
        .collect();
    let mut rng = crate::gen::Rng::new(3);
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let rounds = if cfg.quick { 5 } else { 100 };
    let mut per_sec = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut found = 0u32;
        for _ in 0..rounds {
            for k in &keys {
                found += u32::from(table.lookup(std::hint::black_box(k), 0, SEC).is_some());
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        if found != rounds * keys.len() as u32 {
            report.warnings.push(format!(
                "conntrack: {found} of {} lookups found their entry",
                rounds * keys.len() as u32
            ));
            return;
        }
        per_sec.push(f64::from(found) / dt / 1e6);
    }
    report.figures.push(Figure {
        key: "conntrack",
        name: "conntrack established lookups, 10k flows".into(),
        value: median(per_sec),
        unit: "M/s",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["lookup of either direction's tuple, scattered order; the kernel's per-packet rate is measured whole-path in the lab group (root)".into()],
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_fill_confirms_every_flow_with_nat_reply() {
        let mut t = fill(2000).unwrap();
        assert_eq!(t.count(), 2000);
        let (src, sport) = client(1999);
        let orig = Tuple::ports(PROTO_UDP, src, sport, SERVER, SERVER_PORT);
        let (id, dir) = t.lookup(&orig, 0, SEC).unwrap();
        assert_eq!(dir.index(), 0);
        assert_eq!(t.get(id).tuple[1], masq_reply(1999));
        let (id2, dir) = t.lookup(&masq_reply(1999), 0, SEC).unwrap();
        assert_eq!((id2, dir.index()), (id, 1));
    }

    #[test]
    fn test_load_file_matches_fill_tuples() {
        let f = conntrack_load_file(50_001);
        let lines: Vec<&str> = f.lines().collect();
        assert_eq!(lines.len(), 50_001);
        assert_eq!(lines[0], "-I -p udp -s 10.0.0.1 -d 203.0.113.10 --sport 10000 --dport 53 -r 203.0.113.10 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 10000 -t 600 --src-nat 198.51.100.1");
        assert!(lines[50_000].starts_with("-I -p udp -s 10.0.0.2 -d 203.0.113.10 --sport 10000 "));
        assert!(lines[50_000].ends_with("--src-nat 198.51.100.2"));
    }

    #[test]
    fn test_rss_reads() {
        assert!(rss_bytes() > 0);
    }
}
