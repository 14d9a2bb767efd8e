//! Reads scenario packet lines (`<time> <dev> <packet>`) on stdin and prints one line per packet:
//! `<dev> <frame hex>`, the n-th packet getting IP id n. Source MAC `02:00:00:00:01:NN` and
//! destination MAC `02:00:00:00:00:NN`, NN = 1 for a device named `lan*`, 2 otherwise (the
//! capture lab of tests/data/README.md). A line `raw <dev> <frame hex>` is passed through.

use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::line::{parse_input_line, strip_comment};
use std::io::BufRead;

fn main() {
    let mut n = 0u16;
    for (i, l) in std::io::stdin().lock().lines().enumerate() {
        let l = l.expect("read stdin");
        let Some(l) = strip_comment(&l) else { continue };
        n += 1;
        // `raw <dev> <frame hex>` passes a frame through unchanged (e.g. an ARP request).
        if let Some(r) = l.strip_prefix("raw ") {
            println!("{}", r.trim());
            continue;
        }
        let input = parse_input_line(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let nn = if input.dev.starts_with("lan") { 1 } else { 2 };
        let ctx = FrameCtx {
            src_mac: MacAddr([2, 0, 0, 0, 1, nn]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, nn]),
            ip_id: n,
            allow_masked: false,
        };
        let f = build_frame(&input.spec, &ctx).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        println!("{} {hex}", input.dev);
    }
}
