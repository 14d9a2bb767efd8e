//! A payload rewrite a NAT helper asks for (kernel `nf_nat_mangle_tcp_packet`): replace
//! `len` bytes at `off` of the TCP payload with new text. Held inline: no allocation.

use core::fmt;

/// Longest replacement text (an EPRT with an IPv4 address is the longest: 25 bytes).
pub const MAX_TEXT: usize = 48;

/// Replace `payload[off..off + len]` with [`Rewrite::text`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rewrite {
    /// Offset in the TCP payload.
    pub off: usize,
    /// Length of the replaced bytes.
    pub len: usize,
    buf: [u8; MAX_TEXT],
    n: u8,
}

impl fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Rewrite {{ off: {}, len: {}, text: {:?} }}",
            self.off,
            self.len,
            String::from_utf8_lossy(self.text())
        )
    }
}

/// `fmt::Write` into a fixed buffer (text longer than [`MAX_TEXT`] is an error).
struct Fixed<'a> {
    buf: &'a mut [u8; MAX_TEXT],
    n: usize,
}

impl fmt::Write for Fixed<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        let end = self.n + b.len();
        if end > MAX_TEXT {
            return Err(fmt::Error);
        }
        self.buf[self.n..end].copy_from_slice(b);
        self.n = end;
        Ok(())
    }
}

impl Rewrite {
    /// A rewrite whose text is formatted from `args` (`None` if it does not fit).
    pub fn format(off: usize, len: usize, args: fmt::Arguments<'_>) -> Option<Rewrite> {
        let mut buf = [0u8; MAX_TEXT];
        let mut w = Fixed {
            buf: &mut buf,
            n: 0,
        };
        fmt::write(&mut w, args).ok()?;
        let n = w.n as u8;
        Some(Rewrite { off, len, buf, n })
    }

    /// The replacement text.
    pub fn text(&self) -> &[u8] {
        &self.buf[..self.n as usize]
    }

    /// Length change of the payload (new minus old).
    pub fn delta(&self) -> i32 {
        self.n as i32 - self.len as i32
    }

    /// Applies the rewrite to a payload held in a `Vec` (tests and simple callers; the engine
    /// may splice its own packet buffer with `off`, `len` and `text`).
    pub fn apply(&self, payload: &mut Vec<u8>) {
        let end = (self.off + self.len).min(payload.len());
        payload.splice(self.off.min(end)..end, self.text().iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_apply_and_delta() {
        let r = Rewrite::format(5, 8, format_args!("{},{}", 192, 1)).unwrap();
        assert_eq!(r.text(), b"192,1");
        assert_eq!(r.delta(), -3);
        let mut p = b"PORT 10,0,0,2\r\n".to_vec();
        r.apply(&mut p);
        assert_eq!(p, b"PORT 192,1\r\n");
        assert!(format!("{r:?}").contains("192,1"));
        assert!(Rewrite::format(0, 0, format_args!("{}", "x".repeat(49))).is_none());
    }
}
