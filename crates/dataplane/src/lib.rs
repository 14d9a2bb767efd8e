//! `dataplane` (nfrs-dataplane): the live side of nfrs — the `nfrs run` daemon. It attaches to
//! real interfaces with AF_XDP where they take it ([`xdp`]: its own XDP program, no C library),
//! else AF_PACKET with a TPACKET_V3 receive ring ([`packet`]), answers and resolves ARP
//! for the addresses it owns, feeds each frame with the monotonic clock into the engine and
//! transmits what the engine emits (bridging the ports of a `[[bridge]]` at layer 2, see
//! [`bridge`]); it serves the control socket through which the
//! management commands (`iptables*`, `conntrack`, `sysctl`, `proc`) reach the live state.
//!
//! # Public API
//! - [`daemon::run`] with [`daemon::Config`]: the daemon (until SIGTERM/SIGINT).
//! - [`control::request`]: a client's one request to a store's daemon (`None`: no daemon).
//! - [`proto::Request`] / [`proto::Response`]: the control protocol (JSON lines, bounded).
//! - [`hostfile::load`]: the live host file (scenario host tables plus `[live]`).
//! - [`cmds::conntrack`] / [`cmds::conntrack_table`]: `conntrack -L/-D/-F/-C`, `-L expect`
//!   over an engine or a table; [`cmds::proc_conntrack`], [`cmds::proc_expect`]: the /proc files.
//! - [`ctsave::save`] / [`ctsave::restore`] / [`ctsave::load_table`]: the conntrack snapshot.
//! - [`check::State::of`] + [`check::check`]: `nfrs check PACKET`, changing nothing.
//! - [`metrics::render`] / [`metrics::serve`]: `nfrs run --metrics` (Prometheus text).
//! - [`events::Events`]: `conntrack -E` events derived on the packet thread;
//!   [`control::stream`]: a client's event stream.
//! - [`tap::start`] / [`tap::from_host`]: the TUN device (`[live] tap`) between the engine and
//!   the host kernel's own stack (local deliveries in, the kernel's packets through OUTPUT).

pub mod arp;
pub mod bridge;
pub mod check;
pub mod cmds;
pub mod control;
pub mod ctsave;
pub mod daemon;
pub mod events;
pub mod hostfile;
pub mod logsink;
pub mod metrics;
pub mod netlink;
pub mod origdst;
pub mod packet;
pub mod proto;
pub mod ring;
pub mod tap;
pub mod xdp;
