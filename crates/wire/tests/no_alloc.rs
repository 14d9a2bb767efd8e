//! The packet path allocates nothing: parsing the descriptor, every `mangle` write, and every
//! `emit` builder run with a counting allocator and must not allocate.

use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::desc::{mangle, PacketDesc, QuotedDesc};
use nfrs_wire::emit;
use nfrs_wire::line::PacketSpec;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv4Addr;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only counts
// allocations made by the current thread (a test needs this to observe allocation at all).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> usize {
    let before = COUNT.with(Cell::get);
    let r = f();
    let n = COUNT.with(Cell::get) - before;
    drop(r);
    n
}

fn frame(line: &str) -> Vec<u8> {
    build_frame(
        &PacketSpec::parse(line).unwrap(),
        &FrameCtx {
            ip_id: 1,
            ..FrameCtx::default()
        },
    )
    .unwrap()
}

#[test]
fn packet_path_does_not_allocate() {
    let mut tcp = frame("tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7");
    let mut udp =
        frame("udp 10.0.0.3:5353 > 203.0.113.53:53 ipopts=070b04000000000000000000 payload=\"q\"");
    let mut icmp = frame("icmp 10.0.0.2 > 203.0.113.9 type=8 id=77 seq=1 payload=\"ping\"");
    let err = frame(
        "icmp 10.0.0.1 > 10.0.0.2 type=3 code=3 inner=\"udp 10.0.0.2:1 > 10.0.0.1:2 len=10\"",
    );
    let a = Ipv4Addr::new(192, 0, 2, 1);
    let mut out = [0u8; 1600];
    let n = allocations(|| {
        let mut d = PacketDesc::parse_frame(&tcp).unwrap();
        mangle::dec_ttl(&mut tcp, &mut d);
        mangle::set_src_addr(&mut tcp, &mut d, a);
        mangle::set_dst_addr(&mut tcp, &mut d, a);
        mangle::set_src_port(&mut tcp, &mut d, 1);
        mangle::set_dst_port(&mut tcp, &mut d, 2);
        mangle::set_seq(&mut tcp, &mut d, 3);
        mangle::set_ack(&mut tcp, &mut d, 4);
        mangle::set_mss(&mut tcp, &mut d, 1400);
        mangle::set_tos(&mut tcp, &mut d, 0x10);
        mangle::set_ip_id(&mut tcp, &mut d, 9);
        let mut u = PacketDesc::parse_frame(&udp).unwrap();
        mangle::set_src_port(&mut udp, &mut u, 7);
        mangle::write_ip_header(&mut udp, &u, 22, &[8, 1, 2, 3, 4]);
        let mut i = PacketDesc::parse_frame(&icmp).unwrap();
        mangle::set_icmp_id(&mut icmp, &mut i, 5);
        let e = PacketDesc::parse_frame(&err).unwrap();
        let q = QuotedDesc::parse(&err, &e).unwrap();
        let _ = emit::tcp_reset(&tcp[14..], emit::ResetSender::Stack, 64, &mut out);
        let _ = emit::icmp_error(&udp[14..], 3, 3, 0, a, 64, 0, 1500, &mut out);
        let _ = emit::echo_reply(&icmp[14..], 64, 0, &mut out);
        let mut ip = udp[14..].to_vec();
        let _ = emit::record_route_on_receipt(&mut ip, a);
        let _ = emit::may_answer_with_icmp_error(&ip);
        let _ = emit::reject_is_silent(&ip);
        (d, u, i, q)
    });
    // The one `to_vec` above is the only allocation.
    assert_eq!(n, 1);
}
