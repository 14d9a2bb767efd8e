//! The TUN path allocates nothing per packet once warm: a ping delivered to the host kernel
//! through the device and the kernel's echo reply sent on through OUTPUT, over and over.

use nfrs_dataplane::daemon::{frame_in, Live, Ports, Wire};
use nfrs_dataplane::tap::{from_host, Tap};
use nfrs_engine::engine::Engine;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;

/// The engine tests' allocator, counting per thread: only this test's own allocations count,
/// not the test harness's main thread running beside it.
#[path = "../../engine/tests/common/counting.rs"]
mod counting;

#[global_allocator]
static A: counting::Counting = counting::Counting;

/// Counts what leaves by the interfaces, keeping nothing.
struct Sink {
    macs: [[u8; 6]; 2],
    sent: std::cell::Cell<u64>,
}

impl Ports for Sink {
    fn mac(&self, dev: usize) -> [u8; 6] {
        self.macs[dev]
    }
    fn send(&self, _: usize, _: &[u8]) {
        self.sent.set(self.sent.get() + 1);
    }
    fn count_rx(&self, _: usize, _: usize) {}
    fn n_ports(&self) -> usize {
        2
    }
}

fn ip(line: &str) -> Vec<u8> {
    let l = nfrs_wire::line::parse_input_line(line).unwrap();
    nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap()
}

#[test]
fn the_tun_path_allocates_nothing_per_packet() {
    let h = nfrs_dataplane::hostfile::parse(
        "[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"b\"\naddress = \"10.0.1.1/24\"\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap()
    .host;
    let rs = nfrs_rules::restore::restore_new(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p icmp -j ACCEPT\n-A OUTPUT -p icmp -j ACCEPT\nCOMMIT\n",
        &Default::default(),
    )
    .unwrap();
    let mut engine = Engine::new(
        nfrs_engine::host::HostNet::new(&h).unwrap(),
        rs,
        &h.effective_sysctls(),
    )
    .unwrap();
    engine.external_stack = true;
    let (a, kernel) = UnixDatagram::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    kernel.set_nonblocking(true).unwrap();
    let mut w = Wire {
        tx: Vec::with_capacity(65536),
        tap: Some(Tap::from_fd(OwnedFd::from(a), "t0")),
        ..Default::default()
    };
    let peer = [0x02, 0, 0, 0, 1, 1];
    w.neigh.add_static(0, 0x0a00_0002, peer);
    let mut live = Live {
        engine,
        now: 1_000,
        pool: Vec::with_capacity(64),
        events: Default::default(),
        log: Default::default(),
    };
    live.engine.events.reserve(16);
    let ports = Sink {
        macs: [[0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]],
        sent: Default::default(),
    };
    let mut frame = vec![0x02, 0, 0, 0, 0, 1];
    frame.extend_from_slice(&peer);
    frame.extend_from_slice(&[8, 0]);
    frame.extend_from_slice(&ip("0 a icmp 10.0.0.2 > 10.0.0.1 type=8 id=1 seq=1"));
    let reply = ip("0 a icmp 10.0.0.1 > 10.0.0.2 type=0 id=1 seq=1");
    let mut buf = [0u8; 2048];
    let mut round = |live: &mut Live, w: &mut Wire| {
        frame_in(live, &ports, w, 0, &frame);
        let n = kernel.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &frame[14..]);
        kernel.send(&reply).unwrap();
        from_host(live, &ports, w);
    };
    for _ in 0..100 {
        round(&mut live, &mut w);
    }
    let before = counting::allocs();
    for _ in 0..1000 {
        round(&mut live, &mut w);
    }
    let made = counting::allocs() - before;
    assert_eq!(ports.sent.get(), 1100, "every reply left");
    assert_eq!(made, 0, "allocations in 1000 rounds");
}
