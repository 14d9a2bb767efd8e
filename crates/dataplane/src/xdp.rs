//! AF_XDP on one interface with nothing but system calls: a five-instruction XDP program
//! assembled here and loaded with bpf(2) ("redirect to the socket of my receive queue, else
//! pass"), an XSKMAP holding one AF_XDP socket per receive queue, attached with a BPF link
//! (closing the link detaches it, so the program never outlives the daemon), native (driver)
//! mode first and generic (SKB) mode when the driver refuses. Each socket has its own UMEM
//! (one anonymous mapping cut into [`FRAME_SIZE`] frames) and four rings shared with the
//! kernel: fill and rx carry receive frames, tx and completion carry sent ones. Layouts and
//! constants are the kernel UAPI's (linux/bpf.h, linux/if_xdp.h).
//!
//! Rings are single-producer single-consumer: the producer writes entries, then publishes its
//! index with a release store; the consumer reads the index with an acquire load before the
//! entries, and publishes its own index with a release store once it is done with them.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per UMEM frame (one received or sent frame each).
pub const FRAME_SIZE: u32 = 2048;
/// Receive frames per queue, and entries of its fill and rx rings (a power of two): 40 ms of
/// frames at 100 kpps for a daemon that is not scheduled at once.
pub const RX_FRAMES: u32 = 4096;
/// Send frames per queue, and entries of its tx and completion rings (a power of two).
pub const TX_FRAMES: u32 = 1024;
/// Frames per UMEM.
pub const FRAMES: u32 = RX_FRAMES + TX_FRAMES;
/// A kick of the tx ring after this many queued frames (the kernel's copy mode sends at most
/// 32 per call anyway).
const TX_BATCH: u32 = 32;

// bpf(2) commands, map and program types, attach type, helper (linux/bpf.h).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;
// XDP attach flags (linux/if_link.h).
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// Offset of `rx_queue_index` in `struct xdp_md` (data, data_end, data_meta, ingress_ifindex
/// come first, four bytes each).
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

// Instruction classes and modes (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_LD: u8 = 0x00;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_MEM: u8 = 0x60;
const BPF_IMM: u8 = 0x00;
const BPF_W: u8 = 0x00;
const BPF_DW: u8 = 0x18;
const BPF_MOV: u8 = 0xb0;
const BPF_K: u8 = 0x00;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// One eBPF instruction as the kernel reads it: opcode, destination register in the low
/// nibble and source register in the high nibble of one byte, offset, immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode (class | size/op | mode/source).
    pub code: u8,
    /// `dst | src << 4`.
    pub regs: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst & 0xf) | (src << 4),
            off,
            imm,
        }
    }

    /// The instruction's eight bytes as the kernel reads them (little-endian host).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// The redirect program for the XSKMAP `map_fd`:
/// `r2 = ctx->rx_queue_index; r1 = map; r3 = XDP_PASS; return bpf_redirect_map(r1, r2, r3)`.
/// The helper's flags' low bits are the verdict when the slot holds no socket.
pub fn program(map_fd: i32) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16)
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // r1 = map (a 16-byte load whose source register marks the immediate as a map fd)
        Insn::new(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        Insn::new(0, 0, 0, 0, 0),
        // r3 = XDP_PASS
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, XDP_PASS),
        // r0 = bpf_redirect_map(r1, r2, r3)
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ]
}

/// `union bpf_attr`, zeroed, filled field by field at the UAPI's offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<OwnedFd> {
    // SAFETY: bpf(2) reads (and for some commands writes) at most `size` bytes of `attr`,
    // which is valid for that long; the pointers stored inside it point to data the caller
    // keeps alive across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the commands used here return a fresh descriptor we exclusively own (map
    // update returns 0, which the caller does not keep).
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn xskmap(entries: u32) -> io::Result<OwnedFd> {
    // map_type, key_size, value_size, max_entries.
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, entries);
    bpf(BPF_MAP_CREATE, &mut a).map_err(|e| ctx("XSKMAP create", e))
}

fn map_set(map: RawFd, key: u32, value: u32) -> io::Result<()> {
    let mut a = Attr::new();
    // map_fd, key pointer, value pointer, flags (BPF_ANY).
    a.u32(0, map as u32)
        .u64(8, &key as *const u32 as u64)
        .u64(16, &value as *const u32 as u64);
    let r = bpf(BPF_MAP_UPDATE_ELEM, &mut a);
    match r {
        // Success returns 0, not a descriptor: do not let OwnedFd close fd 0.
        Ok(fd) => {
            std::mem::forget(fd);
            Ok(())
        }
        Err(e) => Err(ctx("XSKMAP insert", e)),
    }
}

fn load_program(map: RawFd) -> io::Result<OwnedFd> {
    let insns = program(map);
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 0];
    for attempt in 0..2 {
        let mut a = Attr::new();
        // prog_type, insn_cnt, insns, license, (log_level, log_size, log_buf), prog_name,
        // expected_attach_type.
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(68, BPF_XDP);
        a.0[48..56].copy_from_slice(b"nfrs_xsk");
        if attempt == 1 {
            log = vec![0u8; 16384];
            a.u32(24, 1)
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64);
        }
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => return Ok(fd),
            Err(e) if attempt == 1 => {
                let text = String::from_utf8_lossy(&log);
                let last = text
                    .trim_end_matches('\0')
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("");
                return Err(io::Error::new(
                    e.kind(),
                    format!("XDP program load: {e}; verifier: {last}"),
                ));
            }
            Err(_) => {}
        }
    }
    unreachable!("the second attempt returns")
}

fn link_create(prog: RawFd, ifindex: i32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    // prog_fd, target_ifindex, attach_type, flags.
    a.u32(0, prog as u32)
        .u32(4, ifindex as u32)
        .u32(8, BPF_XDP)
        .u32(12, flags);
    bpf(BPF_LINK_CREATE, &mut a)
}

fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn cvt(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(ctx(what, io::Error::last_os_error()))
    } else {
        Ok(r)
    }
}

/// Producer/consumer index arithmetic of a ring of `size` (a power of two) entries; indices
/// run freely over u32 and wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Entries in the ring.
    pub size: u32,
}

impl Idx {
    /// Entries a producer at `prod` may still write when the consumer is at `cons`.
    pub fn free(self, prod: u32, cons: u32) -> u32 {
        self.size - prod.wrapping_sub(cons)
    }
    /// Entries a consumer at `cons` may read when the producer is at `prod`.
    pub fn ready(self, prod: u32, cons: u32) -> u32 {
        prod.wrapping_sub(cons)
    }
    /// The slot of index `i`.
    pub fn slot(self, i: u32) -> usize {
        (i & (self.size - 1)) as usize
    }
}

/// A memory mapping, unmapped on drop.
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn new(fd: RawFd, len: usize, offset: u64, what: &str) -> io::Result<Map> {
        let (flags, fd) = if fd < 0 {
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
        } else {
            (libc::MAP_SHARED | libc::MAP_POPULATE, fd)
        };
        // SAFETY: a fresh mapping (anonymous, or of the ring the kernel made for `fd` at
        // `offset`); the result is checked against MAP_FAILED and unmapped only in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ctx(what, io::Error::last_os_error()));
        }
        Ok(Map {
            ptr: p as *mut u8,
            len,
        })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `new`, unmapped only here.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

/// One mapped ring: the kernel's producer and consumer words, the entries, our cached
/// index (the side we own) and the last index seen of the other side.
struct Ring {
    _map: Map,
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    desc: *mut u8,
    idx: Idx,
    entry: usize,
    /// Our own index (producer index on fill/tx, consumer index on rx/completion).
    mine: Cell<u32>,
}

impl Ring {
    fn new(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        pgoff: u64,
        size: u32,
        entry: usize,
        what: &str,
    ) -> io::Result<Ring> {
        let len = off.desc as usize + size as usize * entry;
        let map = Map::new(fd, len, pgoff, what)?;
        if off.producer as usize + 4 > len || off.consumer as usize + 4 > len {
            return Err(io::Error::other(format!(
                "{what}: ring offsets out of range"
            )));
        }
        // SAFETY: the offsets lie inside the mapping (checked above); the kernel aligns the
        // index words to at least 4 bytes, as AtomicU32 needs.
        let (prod, cons, desc) = unsafe {
            (
                map.ptr.add(off.producer as usize) as *const AtomicU32,
                map.ptr.add(off.consumer as usize) as *const AtomicU32,
                map.ptr.add(off.desc as usize),
            )
        };
        Ok(Ring {
            _map: map,
            prod,
            cons,
            desc,
            idx: Idx { size },
            entry,
            mine: Cell::new(0),
        })
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping (see `new`); shared with the kernel, which
        // only ever accesses it atomically as well.
        unsafe { &*self.prod }
    }
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as `prod`.
        unsafe { &*self.cons }
    }
    /// The entry of index `i` (slot `i & (size - 1)`).
    fn at(&self, i: u32) -> *mut u8 {
        // SAFETY: the slot is below the ring's size, so the entry lies inside the mapping.
        unsafe { self.desc.add(self.idx.slot(i) * self.entry) }
    }

    /// Producer side: slots free now (acquire: the kernel is done with the entries it
    /// consumed before we overwrite them).
    fn free(&self) -> u32 {
        self.idx
            .free(self.mine.get(), self.cons().load(Ordering::Acquire))
    }
    /// Producer side: publishes `n` written entries (release: the entries are visible to the
    /// kernel before the index).
    fn publish(&self, n: u32) {
        let p = self.mine.get().wrapping_add(n);
        self.mine.set(p);
        self.prod().store(p, Ordering::Release);
    }
    /// Consumer side: entries ready now (acquire: the entries are read after the index).
    fn ready(&self) -> u32 {
        self.idx
            .ready(self.prod().load(Ordering::Acquire), self.mine.get())
    }
    /// Consumer side: gives `n` read entries back (release: our reads happen before the
    /// kernel may reuse them).
    fn release(&self, n: u32) {
        let c = self.mine.get().wrapping_add(n);
        self.mine.set(c);
        self.cons().store(c, Ordering::Release);
    }
    fn write_u64(&self, i: u32, v: u64) {
        // SAFETY: the entry lies inside the mapping and belongs to the producer (us) until
        // published; 8-byte entries are 8-aligned.
        unsafe { (self.at(i) as *mut u64).write_volatile(v) }
    }
    fn read_u64(&self, i: u32) -> u64 {
        // SAFETY: the entry lies inside the mapping and was published by the kernel (index
        // read with acquire) and not yet released by us.
        unsafe { (self.at(i) as *const u64).read_volatile() }
    }
    fn write_desc(&self, i: u32, addr: u64, len: u32) {
        let d = libc::xdp_desc {
            addr,
            len,
            options: 0,
        };
        // SAFETY: as `write_u64`; xdp_desc entries are 16 bytes, 8-aligned.
        unsafe { (self.at(i) as *mut libc::xdp_desc).write_volatile(d) }
    }
    fn read_desc(&self, i: u32) -> (u64, u32) {
        // SAFETY: as `read_u64`.
        let d = unsafe { (self.at(i) as *const libc::xdp_desc).read_volatile() };
        (d.addr, d.len)
    }
}

/// One AF_XDP socket on one receive queue with its UMEM and rings. Fields drop in order: the
/// socket closes before its rings and UMEM are unmapped.
struct Queue {
    fd: OwnedFd,
    fill: Ring,
    comp: Ring,
    rx: Ring,
    tx: Ring,
    umem: Map,
    /// UMEM frames free for sending.
    free: RefCell<Vec<u64>>,
    /// Frames queued on tx since the last kick.
    pending: Cell<u32>,
}

fn setopt<T>(fd: RawFd, opt: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `v`, alive for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(r, what).map(|_| ())
}

impl Queue {
    fn open(ifindex: i32, queue: u32, copy: bool) -> io::Result<Queue> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = cvt(
            unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) },
            "AF_XDP socket",
        )?;
        // SAFETY: `raw` is a fresh descriptor we exclusively own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let umem = Map::new(-1, (FRAMES * FRAME_SIZE) as usize, 0, "UMEM mmap")?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr as u64,
            len: umem.len as u64,
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setopt(s, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        for (opt, size, what) in [
            (libc::XDP_UMEM_FILL_RING, RX_FRAMES, "fill ring"),
            (libc::XDP_UMEM_COMPLETION_RING, TX_FRAMES, "completion ring"),
            (libc::XDP_RX_RING, RX_FRAMES, "rx ring"),
            (libc::XDP_TX_RING, TX_FRAMES, "tx ring"),
        ] {
            setopt(s, opt, &size, what)?;
        }
        // SAFETY: xdp_mmap_offsets is plain data; zeroed is a valid value.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: the pointer and length describe `off`, writable for the call.
        cvt(
            unsafe {
                libc::getsockopt(
                    s,
                    libc::SOL_XDP,
                    libc::XDP_MMAP_OFFSETS,
                    &mut off as *mut libc::xdp_mmap_offsets as *mut libc::c_void,
                    &mut len,
                )
            },
            "XDP_MMAP_OFFSETS",
        )?;
        if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::other(
                "XDP_MMAP_OFFSETS: a kernel without ring flags (older than 5.4)",
            ));
        }
        let fill = Ring::new(
            s,
            &off.fr,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            RX_FRAMES,
            8,
            "fill ring mmap",
        )?;
        let comp = Ring::new(
            s,
            &off.cr,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            TX_FRAMES,
            8,
            "completion ring mmap",
        )?;
        let rx = Ring::new(
            s,
            &off.rx,
            libc::XDP_PGOFF_RX_RING as u64,
            RX_FRAMES,
            16,
            "rx ring mmap",
        )?;
        let tx = Ring::new(
            s,
            &off.tx,
            libc::XDP_PGOFF_TX_RING as u64,
            TX_FRAMES,
            16,
            "tx ring mmap",
        )?;
        // The first RX_FRAMES frames receive (all in the fill ring, which has room for all of
        // them), the others send (as many as tx and completion slots).
        for i in 0..RX_FRAMES {
            fill.write_u64(fill.mine.get().wrapping_add(i), u64::from(i * FRAME_SIZE));
        }
        fill.publish(RX_FRAMES);
        let free = (RX_FRAMES..FRAMES)
            .map(|i| u64::from(i * FRAME_SIZE))
            .collect();
        // SAFETY: sockaddr_xdp is plain data; zeroed is a valid value.
        let mut sxdp: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sxdp.sxdp_family = libc::AF_XDP as u16;
        // No flag: zero-copy when the driver can, else copy; XDP_COPY forces copy.
        sxdp.sxdp_flags = if copy { libc::XDP_COPY } else { 0 };
        sxdp.sxdp_ifindex = ifindex as u32;
        sxdp.sxdp_queue_id = queue;
        // SAFETY: the pointer and length describe `sxdp`, alive for the call.
        cvt(
            unsafe {
                libc::bind(
                    s,
                    &sxdp as *const libc::sockaddr_xdp as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            },
            "AF_XDP bind",
        )?;
        Ok(Queue {
            fd,
            fill,
            comp,
            rx,
            tx,
            umem,
            free: RefCell::new(free),
            pending: Cell::new(0),
        })
    }

    /// The kernel's counters of this socket (XDP_STATISTICS).
    fn stats(&self) -> Option<libc::xdp_statistics> {
        // SAFETY: xdp_statistics is plain data; zeroed is a valid value.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: the pointer and length describe `st`, writable for the call.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                &mut st as *mut libc::xdp_statistics as *mut libc::c_void,
                &mut len,
            )
        };
        (r == 0).then_some(st)
    }

    fn zerocopy(&self) -> bool {
        let mut o = libc::xdp_options { flags: 0 };
        let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
        // SAFETY: the pointer and length describe `o`, writable for the call.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                &mut o as *mut libc::xdp_options as *mut libc::c_void,
                &mut len,
            )
        };
        r == 0 && o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
    }

    /// Calls `f` with up to `max` received frames, then gives their UMEM frames back to the
    /// fill ring.
    fn recv(&self, max: u32, f: &mut dyn FnMut(&[u8])) -> usize {
        let n = self.rx.ready().min(max);
        if n == 0 {
            return 0;
        }
        let base = self.rx.mine.get();
        for i in 0..n {
            let (addr, len) = self.rx.read_desc(base.wrapping_add(i));
            let (a, l) = (addr as usize, len as usize);
            if a.checked_add(l).is_some_and(|end| end <= self.umem.len) {
                // SAFETY: the frame lies inside the UMEM (checked just above) and is ours
                // until its frame goes back to the fill ring below; the kernel does not
                // write a frame that is in neither the fill ring nor in flight.
                f(unsafe { std::slice::from_raw_parts(self.umem.ptr.add(a), l) });
            }
        }
        // Every received frame goes straight back to the fill ring; it holds all receive
        // frames, so there is always room.
        let room = self.fill.free();
        debug_assert!(room >= n);
        let k = n.min(room);
        let p = self.fill.mine.get();
        for i in 0..k {
            let (addr, _) = self.rx.read_desc(base.wrapping_add(i));
            self.fill
                .write_u64(p.wrapping_add(i), addr & !u64::from(FRAME_SIZE - 1));
        }
        self.fill.publish(k);
        self.rx.release(n);
        n as usize
    }

    /// Moves completed tx frames back to the free list.
    fn reclaim(&self) {
        let n = self.comp.ready();
        if n == 0 {
            return;
        }
        let base = self.comp.mine.get();
        let mut free = self.free.borrow_mut();
        for i in 0..n {
            free.push(self.comp.read_u64(base.wrapping_add(i)) & !u64::from(FRAME_SIZE - 1));
        }
        self.comp.release(n);
    }

    /// Queues one frame, `head` then `body`, on the tx ring (a kick every TX_BATCH frames).
    fn send(&self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let len = head.len() + body.len();
        if len > FRAME_SIZE as usize {
            return Err(io::Error::other(format!(
                "frame of {len} bytes exceeds the AF_XDP frame size {FRAME_SIZE}"
            )));
        }
        if self.free.borrow().is_empty() {
            self.reclaim();
        }
        if self.free.borrow().is_empty() {
            self.kick()?;
            self.reclaim();
        }
        let Some(addr) = self.free.borrow_mut().pop() else {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "AF_XDP tx: every frame in flight",
            ));
        };
        // There are as many tx slots as send frames, so a frame in hand means a free slot.
        debug_assert!(self.tx.free() > 0);
        // SAFETY: `addr` is a free send frame (below the UMEM's length, FRAME_SIZE bytes,
        // not in any ring), and head and body together fit in it (checked above).
        unsafe {
            let to = self.umem.ptr.add(addr as usize);
            std::ptr::copy_nonoverlapping(head.as_ptr(), to, head.len());
            std::ptr::copy_nonoverlapping(body.as_ptr(), to.add(head.len()), body.len());
        };
        self.tx.write_desc(self.tx.mine.get(), addr, len as u32);
        self.tx.publish(1);
        self.pending.set(self.pending.get() + 1);
        if self.pending.get() >= TX_BATCH {
            self.kick()?;
        }
        Ok(())
    }

    /// Tells the kernel to send what the tx ring holds (copy mode sends a batch per call and
    /// answers EAGAIN while more remain).
    fn kick(&self) -> io::Result<()> {
        self.pending.set(0);
        for _ in 0..TX_FRAMES / TX_BATCH + 1 {
            // SAFETY: a zero-length sendto with no buffer and no address only wakes the
            // socket's transmit path.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if r >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => self.reclaim(),
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
            if self.tx.free() == TX_FRAMES {
                break;
            }
        }
        self.reclaim();
        Ok(())
    }
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (XDP_FLAGS_DRV_MODE).
    Native,
    /// After the driver, on the socket buffer (XDP_FLAGS_SKB_MODE).
    Generic,
}

/// AF_XDP on every receive queue of one interface. Fields drop in order: the link first (the
/// program detaches and the kernel's stack sees the interface's frames again), then the
/// sockets.
pub struct XdpSocket {
    _link: OwnedFd,
    queues: Vec<Queue>,
    epoll: Option<OwnedFd>,
    _prog: OwnedFd,
    _map: OwnedFd,
    /// How the program is attached.
    pub attach: AttachMode,
    /// Whether the sockets are bound in zero-copy mode.
    pub zerocopy: bool,
}

impl std::fmt::Debug for XdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The largest frame received into a UMEM frame: copy mode puts 256 bytes of headroom before
/// it.
pub const MAX_RX_FRAME: u32 = FRAME_SIZE - 256;

/// Whether frames of an interface with this MTU (Ethernet header and one VLAN tag on top)
/// fit in a receive frame.
pub fn mtu_fits(mtu: u32) -> bool {
    mtu.saturating_add(18) <= MAX_RX_FRAME
}

/// Receive queues of interface `name` (sysfs `queues/rx-*`; at least 1).
pub fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

impl XdpSocket {
    /// Sets AF_XDP up on interface `name` (index `ifindex`): native mode unless the driver
    /// refuses (or `NFRS_XDP_MODE=generic`), zero-copy when the driver can (unless
    /// `NFRS_XDP_COPY=1`).
    pub fn open(name: &str, ifindex: i32) -> io::Result<XdpSocket> {
        if let Some(mtu) = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            if !mtu_fits(mtu) {
                return Err(io::Error::other(format!(
                    "MTU {mtu} too large: a received frame must fit in {} bytes",
                    MAX_RX_FRAME
                )));
            }
        }
        let nq = rx_queues(name);
        let map = xskmap(nq)?;
        let prog = load_program(map.as_raw_fd())?;
        let copy = std::env::var("NFRS_XDP_COPY").as_deref() == Ok("1");
        let mut queues = Vec::with_capacity(nq as usize);
        for q in 0..nq {
            let queue = Queue::open(ifindex, q, copy).map_err(|e| ctx(&format!("queue {q}"), e))?;
            map_set(map.as_raw_fd(), q, queue.fd.as_raw_fd() as u32)?;
            queues.push(queue);
        }
        let want = std::env::var("NFRS_XDP_MODE").unwrap_or_default();
        let native = if want == "generic" {
            Err(io::Error::other("NFRS_XDP_MODE=generic"))
        } else {
            link_create(prog.as_raw_fd(), ifindex, XDP_FLAGS_DRV_MODE)
        };
        let (link, attach) = match native {
            Ok(l) => (l, AttachMode::Native),
            Err(ne) if want == "native" => {
                return Err(ctx("XDP attach (native, NFRS_XDP_MODE=native)", ne))
            }
            Err(ne) => match link_create(prog.as_raw_fd(), ifindex, XDP_FLAGS_SKB_MODE) {
                Ok(l) => (l, AttachMode::Generic),
                Err(ge) => {
                    return Err(io::Error::new(
                        ge.kind(),
                        format!("XDP attach: native: {ne}; generic: {ge}"),
                    ))
                }
            },
        };
        let epoll = if queues.len() > 1 {
            // SAFETY: plain epoll_create1(2) call; the result is checked before use.
            let e = cvt(
                unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
                "epoll_create1",
            )?;
            // SAFETY: `e` is a fresh descriptor we exclusively own.
            let e = unsafe { OwnedFd::from_raw_fd(e) };
            for q in &queues {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: q.fd.as_raw_fd() as u64,
                };
                // SAFETY: both descriptors are live; `ev` is valid for the call.
                cvt(
                    unsafe {
                        libc::epoll_ctl(
                            e.as_raw_fd(),
                            libc::EPOLL_CTL_ADD,
                            q.fd.as_raw_fd(),
                            &mut ev,
                        )
                    },
                    "epoll_ctl",
                )?;
            }
            Some(e)
        } else {
            None
        };
        let zerocopy = queues.iter().all(|q| q.zerocopy());
        Ok(XdpSocket {
            _link: link,
            queues,
            epoll,
            _prog: prog,
            _map: map,
            attach,
            zerocopy,
        })
    }

    /// For the startup report: `native, copy mode, 1 queue`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} mode, {} queue{}, {} receive + {} send frames of {} bytes a queue",
            match self.attach {
                AttachMode::Native => "native",
                AttachMode::Generic => "generic",
            },
            if self.zerocopy { "zero-copy" } else { "copy" },
            self.queues.len(),
            if self.queues.len() == 1 { "" } else { "s" },
            RX_FRAMES,
            TX_FRAMES,
            FRAME_SIZE
        )
    }

    /// The kernel's loss counters summed over the queues, for the report at stop: frames
    /// dropped (no room in the rx ring or in the UMEM, or too long), rx ring full, fill ring
    /// found empty, invalid rx and tx descriptors.
    pub fn stats(&self) -> String {
        let mut t = [0u64; 5];
        for st in self.queues.iter().filter_map(|q| q.stats()) {
            let v = [
                st.rx_dropped,
                st.rx_ring_full,
                st.rx_fill_ring_empty_descs,
                st.rx_invalid_descs,
                st.tx_invalid_descs,
            ];
            for (a, b) in t.iter_mut().zip(v) {
                *a += b;
            }
        }
        format!(
            "AF_XDP kernel counters: rx_dropped {} rx_ring_full {} fill_ring_empty {} rx_invalid {} tx_invalid {}",
            t[0], t[1], t[2], t[3], t[4]
        )
    }

    /// Calls `f` with the frames waiting now, at most `max` per queue.
    pub fn recv_batch(&self, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let max = max.min(RX_FRAMES as usize) as u32;
        self.queues.iter().map(|q| q.recv(max, f)).sum()
    }

    /// Queues one whole frame, `head` then `body`, for sending (on queue 0's socket);
    /// [`XdpSocket::flush`] or a full batch makes the kernel send it.
    pub fn send(&self, head: &[u8], body: &[u8]) -> io::Result<()> {
        self.queues[0].send(head, body)
    }

    /// Makes the kernel send the frames queued so far and reclaims sent ones.
    pub fn flush(&self) -> io::Result<()> {
        let q = &self.queues[0];
        if q.pending.get() > 0 {
            q.kick()
        } else {
            q.reclaim();
            Ok(())
        }
    }
}

impl AsRawFd for XdpSocket {
    /// The descriptor to poll for received frames (an epoll set over several queues).
    fn as_raw_fd(&self) -> RawFd {
        match &self.epoll {
            Some(e) => e.as_raw_fd(),
            None => self.queues[0].fd.as_raw_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_bytes() {
        let p = program(7);
        let bytes: Vec<[u8; 8]> = p.iter().map(|i| i.to_bytes()).collect();
        // ldxw r2, [r1+16]
        assert_eq!(bytes[0], [0x61, 0x12, 16, 0, 0, 0, 0, 0]);
        // lddw r1, map fd 7 (src = BPF_PSEUDO_MAP_FD), then the zero upper half
        assert_eq!(bytes[1], [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes[2], [0; 8]);
        // mov r3, 2 (XDP_PASS)
        assert_eq!(bytes[3], [0xb7, 0x03, 0, 0, 2, 0, 0, 0]);
        // call 51 (bpf_redirect_map)
        assert_eq!(bytes[4], [0x85, 0, 0, 0, 51, 0, 0, 0]);
        // exit
        assert_eq!(bytes[5], [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        // The in-memory layout is the byte encoding (what bpf(2) reads).
        for i in p {
            // SAFETY: Insn is repr(C), 8 bytes of plain data.
            let raw: [u8; 8] = unsafe { std::mem::transmute(i) };
            assert_eq!(raw, i.to_bytes());
        }
    }

    #[test]
    fn ring_index_arithmetic() {
        let r = Idx { size: 8 };
        assert_eq!(r.free(0, 0), 8);
        assert_eq!(r.ready(0, 0), 0);
        assert_eq!(r.free(5, 2), 5);
        assert_eq!(r.ready(5, 2), 3);
        assert_eq!(r.free(10, 2), 0);
        assert_eq!(r.slot(10), 2);
        // Across the u32 wrap.
        let p = 3u32;
        let c = u32::MAX - 1;
        assert_eq!(r.ready(p, c), 5);
        assert_eq!(r.free(p, c), 3);
        assert_eq!(r.slot(u32::MAX), 7);
        assert_eq!(r.slot(u32::MAX.wrapping_add(1)), 0);
    }

    #[test]
    fn attr_fields_land_at_their_offsets() {
        let mut a = Attr::new();
        a.u32(4, 0x0102_0304).u64(8, 0x1122_3344_5566_7788);
        assert_eq!(&a.0[4..8], &0x0102_0304u32.to_ne_bytes());
        assert_eq!(&a.0[8..16], &0x1122_3344_5566_7788u64.to_ne_bytes());
        assert!(a.0[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn unknown_interface_fails() {
        // Without root the XSKMAP is refused; with root the bind to index 0 is.
        assert!(XdpSocket::open("nfrs-no-such0", 0).is_err());
    }

    #[test]
    fn the_verifier_takes_the_program() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading an XDP program needs root");
            return;
        }
        let map = xskmap(4).expect("XSKMAP");
        let prog = load_program(map.as_raw_fd()).expect("the verifier refused the program");
        assert!(prog.as_raw_fd() > 2);
    }

    #[test]
    fn mtu_limit() {
        assert!(mtu_fits(1500));
        assert!(mtu_fits(1774));
        assert!(!mtu_fits(1775));
        assert!(!mtu_fits(9000));
        assert!(!mtu_fits(u32::MAX));
    }

    #[test]
    fn loopback_queue_count() {
        assert!(rx_queues("lo") >= 1);
        assert_eq!(rx_queues("nfrs-no-such0"), 1);
    }
}
