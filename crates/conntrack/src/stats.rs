//! The table's statistics: the counters Linux keeps per CPU in `/proc/net/stat/nf_conntrack`
//! and `conntrack -S` prints (nfrs has one "CPU"). Each is a plain `u64` bumped where the
//! kernel bumps its own; reading them allocates nothing.

use core::fmt;

/// Conntrack statistics under the kernel's names (`struct ip_conntrack_stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// NAT asked whether a tuple is taken and it was (`nf_conntrack_tuple_taken`; a packet
    /// finding its connection does not count, as measured on 6.18).
    pub found: u64,
    /// Packets conntrack judged INVALID (a tracker refused them, or no tuple could be made).
    pub invalid: u64,
    /// Entries inserted from user space (ctnetlink); confirming a packet's entry does not
    /// count (measured: 0 after traffic on 6.18).
    pub insert: u64,
    /// Entries that could not be confirmed because another one holds a tuple (the packet
    /// was dropped).
    pub insert_failed: u64,
    /// Packets conntrack dropped (every packet refused because the table was full, not only
    /// the ones whose message got past the rate limit).
    pub drop: u64,
    /// Entries evicted to make room (early drop of non-assured entries).
    pub early_drop: u64,
    /// ICMP packets refused before tracking (too short, bad checksum, type beyond 18) and
    /// errors conntrack could not relate (quoting no known connection, outer address not the
    /// connection's): `icmp_error` in /proc, measured on 6.18.
    pub error: u64,
    /// Lookups restarted because the hash was resized under them (never in nfrs: one thread).
    pub search_restart: u64,
    /// Clashes resolved at confirm (UDP races; nfrs drops instead, so never).
    pub clash_resolve: u64,
    /// Insertions refused for a too long hash chain (nfrs's chains have no limit, so never).
    pub chaintoolong: u64,
    /// New connections that matched an expectation.
    pub expect_new: u64,
    /// Expectations added.
    pub expect_create: u64,
    /// Expectations removed (used, timed out, replaced, evicted, or gone with their master).
    pub expect_delete: u64,
}

impl CtStats {
    /// The `conntrack -S` line of conntrack-tools 1.4.7 for CPU `cpu` (no newline).
    pub fn conntrack_line(&self, cpu: u32) -> ConntrackLine<'_> {
        ConntrackLine { s: self, cpu }
    }

    /// The `conntrack -S expect` line of conntrack-tools 1.4.7 for CPU `cpu` (no newline).
    pub fn expect_line(&self, cpu: u32) -> ExpectLine<'_> {
        ExpectLine { s: self, cpu }
    }

    /// The metric names and values, in `conntrack -S` order then the expectation ones.
    pub fn fields(&self) -> [(&'static str, u64); 13] {
        [
            ("found", self.found),
            ("invalid", self.invalid),
            ("insert", self.insert),
            ("insert_failed", self.insert_failed),
            ("drop", self.drop),
            ("early_drop", self.early_drop),
            ("error", self.error),
            ("search_restart", self.search_restart),
            ("clash_resolve", self.clash_resolve),
            ("chaintoolong", self.chaintoolong),
            ("expect_new", self.expect_new),
            ("expect_create", self.expect_create),
            ("expect_delete", self.expect_delete),
        ]
    }
}

/// See [`CtStats::conntrack_line`].
pub struct ConntrackLine<'a> {
    s: &'a CtStats,
    cpu: u32,
}

/// See [`CtStats::expect_line`].
pub struct ExpectLine<'a> {
    s: &'a CtStats,
    cpu: u32,
}

impl fmt::Display for ConntrackLine<'_> {
    /// conntrack-tools: `cpu=` with the number left-aligned in 4 columns, a tab, then each
    /// counter as `name=value ` (a space after the last one too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu={:<4}\t", self.cpu)?;
        for (name, v) in &self.s.fields()[..10] {
            write!(f, "{name}={v} ")?;
        }
        Ok(())
    }
}

impl fmt::Display for ExpectLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu={:<4}\t", self.cpu)?;
        for (name, v) in &self.s.fields()[10..] {
            write!(f, "{name}={v} ")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `conntrack -S` and `conntrack -S expect` (conntrack-tools 1.4.7) in a fresh namespace
    /// on Linux 6.18, first CPU's lines, recorded 2026-11-26.
    const RECORDED_S: &str = "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 \
        early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 ";
    const RECORDED_S_EXPECT: &str = "cpu=0   \texpect_new=0 expect_create=0 expect_delete=0 ";

    #[test]
    fn lines_are_conntrack_tools_format() {
        let s = CtStats::default();
        assert_eq!(s.conntrack_line(0).to_string(), RECORDED_S);
        assert_eq!(s.expect_line(0).to_string(), RECORDED_S_EXPECT);
        let s = CtStats {
            invalid: 4,
            error: 2,
            expect_delete: 7,
            ..CtStats::default()
        };
        let line = s.conntrack_line(12345).to_string();
        assert!(line.starts_with("cpu=12345\tfound=0 invalid=4 "), "{line}");
        assert!(line.contains(" error=2 "), "{line}");
        assert!(s.expect_line(1).to_string().ends_with("expect_delete=7 "));
    }
}
