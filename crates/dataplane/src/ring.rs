//! A TPACKET_V3 receive ring on a packet socket: the kernel fills fixed-size blocks of frames in
//! a memory area shared with us and hands each block over (status bit TP_STATUS_USER) when it is
//! full or after the retire timeout; we read its frames in place and give it back
//! (TP_STATUS_KERNEL). Layouts are the kernel UAPI's (linux/if_packet.h), read at fixed offsets.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, Ordering};

const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// Bytes per block (a multiple of the page size).
pub const BLOCK_SIZE: usize = 1 << 18;
/// Blocks per ring.
pub const BLOCK_NR: usize = 8;
const FRAME_SIZE: usize = 2048;
/// How long (ms) the kernel waits before handing over a block that is not full.
const RETIRE_MS: u32 = 1;

// struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1:
// block_status @8, num_pkts @12, offset_to_first_pkt @16.
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
// struct tpacket3_hdr: tp_next_offset @0, tp_snaplen @12, tp_len @16, tp_mac @24.
const PH_NEXT: usize = 0;
const PH_SNAPLEN: usize = 12;
const PH_LEN: usize = 16;
const PH_MAC: usize = 24;
const PH_MIN: usize = 32;

/// The mapped ring.
#[derive(Debug)]
pub struct Ring {
    base: *mut u8,
    cur: Cell<usize>,
}

fn setopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: the pointer and length describe `v`, alive for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            opt,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Ring {
    /// Sets up and maps a TPACKET_V3 receive ring on `fd` (before it is bound).
    pub fn new(fd: RawFd) -> io::Result<Ring> {
        setopt(fd, PACKET_VERSION, &TPACKET_V3)?;
        // struct tpacket_req3: block size, block count, frame size, frame count, retire
        // timeout, private area size, feature word.
        let req: [u32; 7] = [
            BLOCK_SIZE as u32,
            BLOCK_NR as u32,
            FRAME_SIZE as u32,
            (BLOCK_SIZE / FRAME_SIZE * BLOCK_NR) as u32,
            RETIRE_MS,
            0,
            0,
        ];
        setopt(fd, PACKET_RX_RING, &req)?;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for `fd`;
        // checked against MAP_FAILED; unmapped only in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BLOCK_SIZE * BLOCK_NR,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            base: p as *mut u8,
            cur: Cell::new(0),
        })
    }

    fn read_u32(block: *const u8, off: usize) -> u32 {
        // SAFETY: callers pass offsets checked to lie inside the block (BLOCK_SIZE bytes of
        // the live mapping); unaligned reads are allowed.
        unsafe { std::ptr::read_unaligned(block.add(off) as *const u32) }
    }

    /// Calls `f` with every frame of the blocks ready now (at most one pass over the ring);
    /// returns how many frames it saw.
    pub fn for_each(&self, f: &mut dyn FnMut(&[u8])) -> usize {
        let mut seen = 0;
        for _ in 0..BLOCK_NR {
            let i = self.cur.get();
            // SAFETY: i < BLOCK_NR, so the block lies inside the mapping.
            let block = unsafe { self.base.add(i * BLOCK_SIZE) };
            // SAFETY: the status word is inside the block; volatile because the kernel
            // writes it concurrently.
            let status = unsafe { std::ptr::read_volatile(block.add(BD_STATUS) as *const u32) };
            if status & TP_STATUS_USER == 0 {
                break;
            }
            // The block's contents are the kernel's until we see the status; read after it.
            fence(Ordering::Acquire);
            let n = Self::read_u32(block, BD_NUM_PKTS);
            let mut off = Self::read_u32(block, BD_FIRST) as usize;
            for _ in 0..n {
                if off < PH_MIN || off + PH_MIN > BLOCK_SIZE {
                    break;
                }
                let next = Self::read_u32(block, off + PH_NEXT) as usize;
                let snap = Self::read_u32(block, off + PH_SNAPLEN) as usize;
                let len = Self::read_u32(block, off + PH_LEN) as usize;
                // SAFETY: off + PH_MIN ≤ BLOCK_SIZE was checked above.
                let mac = usize::from(unsafe {
                    std::ptr::read_unaligned(block.add(off + PH_MAC) as *const u16)
                });
                if snap == len && off + mac + snap <= BLOCK_SIZE {
                    // SAFETY: the frame's bytes lie inside the block (checked just above), and
                    // the block is ours until its status is given back below.
                    let frame = unsafe { std::slice::from_raw_parts(block.add(off + mac), snap) };
                    f(frame);
                    seen += 1;
                }
                if next == 0 {
                    break;
                }
                off += next;
            }
            // Every read of the block happens before the kernel may reuse it.
            fence(Ordering::Release);
            // SAFETY: the status word is inside the block.
            unsafe { std::ptr::write_volatile(block.add(BD_STATUS) as *mut u32, TP_STATUS_KERNEL) };
            self.cur.set((i + 1) % BLOCK_NR);
        }
        seen
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` is the mapping made in `new`, of this length, unmapped only here.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, BLOCK_SIZE * BLOCK_NR);
        }
    }
}
