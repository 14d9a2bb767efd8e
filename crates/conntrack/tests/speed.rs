//! Rough speed and size figures (run with `cargo test --release -p nfrs-conntrack --test speed
//! -- --ignored --nocapture`); not a benchmark harness, just numbers for the reports.

use std::time::Instant;

use nfrs_conntrack::{Conn, ConnTable, CtConfig, Hook, Packet};

fn udp(sport: u16) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&53u16.to_be_bytes());
    b[4..6].copy_from_slice(&8u16.to_be_bytes());
    b
}

#[test]
#[ignore]
fn new_connections_and_lookups_per_second() {
    let n: u32 = std::env::var("NFRS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut t = ConnTable::new(CtConfig {
        max: 0,
        buckets: 1 << 20,
        checksum: false,
        ..CtConfig::default()
    });
    t.reserve(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let l4 = udp((i & 0xffff) as u16);
        let p = Packet {
            src: 0x0a00_0000 | (i >> 16),
            dst: 0xc633_6401,
            proto: 17,
            later_fragment: false,
            l4: &l4,
        };
        let r = t.track(&p, 0, Hook::PreRouting, 0);
        t.confirm(r.conn.unwrap(), 0).unwrap();
    }
    let new_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..n {
        let l4 = udp((i & 0xffff) as u16);
        let p = Packet {
            src: 0x0a00_0000 | (i >> 16),
            dst: 0xc633_6401,
            proto: 17,
            later_fragment: false,
            l4: &l4,
        };
        t.track(&p, 0, Hook::PreRouting, 1);
    }
    let est_s = start.elapsed().as_secs_f64();
    println!(
        "size_of::<Conn>() = {} bytes; {} new conns/s; {} established packets/s (1M entries)",
        std::mem::size_of::<Conn>(),
        (n as f64 / new_s) as u64,
        (n as f64 / est_s) as u64
    );
    assert_eq!(t.count(), n);
}
