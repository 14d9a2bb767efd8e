#!/usr/bin/env python3
"""Error messages and exit codes of iptables-legacy and iptables-legacy-restore for a fixed list of
bad (and a few good) inputs, plus -C results and the order tables appear in
/proc/net/ip_tables_names and iptables-save. Writes ../errors/. See ../README.md."""
import os
import shlex
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsutil import REC_ROOT, ns_new, ns_del, run, tsv_row  # noqa: E402

I = "iptables-legacy"
R = "iptables-legacy-restore"

LONG_COMMENT = "x" * 300
LONG_PREFIX = "p" * 40
LONG_LINE = "-A INPUT" + " -m comment --comment " + ("c" * 200) * 1 + "".join(
    " -m comment --comment %s" % ("c" * 200) for _ in range(60)) + " -j ACCEPT"
MANY_ARGS = "-A INPUT" + " -m comment --comment y" * 120 + " -j ACCEPT"

# (id, setup commands, command, stdin or None)
CMD = [
    ("unknown-long-option", [], "-A INPUT --nosuch", None),
    ("unknown-short-option", [], "-A INPUT -Q", None),
    ("unknown-match", [], "-A INPUT -m nosuch", None),
    ("unknown-target", [], "-A INPUT -j NOSUCH", None),
    ("match-tcp-without-p", [], "-A INPUT -m tcp --dport 22 -j ACCEPT", None),
    ("dport-without-p", [], "-A INPUT --dport 22 -j ACCEPT", None),
    ("dport-with-p-udp-no-m", [], "-A INPUT -p udp --dport 53 -j ACCEPT", None),
    ("dport-with-p-icmp", [], "-A INPUT -p icmp --dport 53 -j ACCEPT", None),
    ("port-too-big", [], "-A INPUT -p tcp --dport 70000", None),
    ("port-not-a-name", [], "-A INPUT -p tcp --dport nosuchservice", None),
    ("port-range-reversed-tcp", [], "-A INPUT -p tcp --dport 80:22", None),
    ("port-service-name", [], "-A INPUT -p tcp --dport ssh -j ACCEPT", None),
    ("multiport-too-many", [], "-A INPUT -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", None),
    ("addr-bad-octet", [], "-A INPUT -s 1.2.3.256", None),
    ("addr-garbage", [], "-A INPUT -s not_an_address_x", None),
    ("mask-too-long", [], "-A INPUT -s 1.2.3.4/33", None),
    ("mask-garbage", [], "-A INPUT -d 1.2.3.4/abc", None),
    ("mask-dotted-noncontiguous", [], "-A INPUT -s 1.2.3.4/255.0.255.0 -j ACCEPT", None),
    ("mask-dotted-contiguous", [], "-A INPUT -s 1.2.3.4/255.255.0.0 -j ACCEPT", None),
    ("addr-list", [], "-A INPUT -s 1.2.3.4,5.6.7.8 -d 9.9.9.9,8.8.8.8 -j ACCEPT", None),
    ("proto-unknown", [], "-A INPUT -p nosuchproto", None),
    ("proto-number", [], "-A INPUT -p 47 -j ACCEPT", None),
    ("proto-zero", [], "-A INPUT -p 0 -j ACCEPT", None),
    ("proto-twice", [], "-A INPUT -p tcp -p udp", None),
    ("target-twice", [], "-A INPUT -j ACCEPT -j DROP", None),
    ("source-twice", [], "-A INPUT -s 1.1.1.1 -s 2.2.2.2", None),
    ("double-negation", [], "-A INPUT ! ! -s 1.2.3.4", None),
    ("trailing-negation", [], "-A INPUT -s 1.2.3.4 !", None),
    ("stray-argument", [], "-A INPUT extra", None),
    ("no-command", [], "-s 1.2.3.4", None),
    ("no-args", [], "", None),
    ("append-no-chain", [], "-A", None),
    ("two-commands", [], "-A INPUT -F", None),
    ("chain-not-found-append", [], "-A NOSUCH -j ACCEPT", None),
    ("chain-not-found-list", [], "-L NOSUCH", None),
    ("chain-not-found-flush", [], "-F NOSUCH", None),
    ("chain-not-found-zero", [], "-Z NOSUCH", None),
    ("chain-not-found-S", [], "-S NOSUCH", None),
    ("S-rule-number-missing", ["-A INPUT -j ACCEPT"], "-S INPUT 2", None),
    ("S-rule-number-present", ["-A INPUT -j ACCEPT"], "-S INPUT 1", None),
    ("delete-missing-rule", [], "-D INPUT -s 1.2.3.4 -j DROP", None),
    ("delete-missing-number", [], "-D INPUT 5", None),
    ("delete-number-zero", ["-A INPUT -j ACCEPT"], "-D INPUT 0", None),
    ("delete-no-rulespec", [], "-D INPUT", None),
    ("insert-index-too-big", [], "-I INPUT 5 -j ACCEPT", None),
    ("insert-index-next", ["-A INPUT -j ACCEPT"], "-I INPUT 2 -j DROP", None),
    ("replace-in-empty", [], "-R INPUT 1 -j ACCEPT", None),
    ("delete-chain-not-empty", ["-N foo", "-A foo -j ACCEPT"], "-X foo", None),
    ("delete-chain-referenced", ["-N foo", "-A INPUT -j foo"], "-X foo", None),
    ("delete-chain-builtin", [], "-X INPUT", None),
    ("delete-chain-missing", [], "-X nosuch", None),
    ("delete-all-chains-referenced", ["-N foo", "-N bar", "-A foo -j bar"], "-X", None),
    ("new-chain-exists", ["-N foo"], "-N foo", None),
    ("new-chain-builtin-name", [], "-N INPUT", None),
    ("new-chain-target-name", [], "-N ACCEPT", None),
    ("new-chain-bang", [], "-N !foo", None),
    ("new-chain-dash", [], "-N -foo", None),
    ("new-chain-29-chars", [], "-N " + "a" * 29, None),
    ("new-chain-28-chars", [], "-N " + "a" * 28, None),
    ("policy-user-chain", ["-N foo"], "-P foo ACCEPT", None),
    ("policy-return", [], "-P INPUT RETURN", None),
    ("policy-garbage", [], "-P INPUT foo", None),
    ("policy-lowercase", [], "-P INPUT drop", None),
    ("rename-to-existing", ["-N foo", "-N bar"], "-E foo bar", None),
    ("rename-missing", [], "-E nosuch bar", None),
    ("rename-builtin", [], "-E INPUT foo", None),
    ("out-iface-in-INPUT", [], "-A INPUT -o eth0 -j ACCEPT", None),
    ("in-iface-in-OUTPUT", [], "-A OUTPUT -i eth0 -j ACCEPT", None),
    ("out-iface-in-PREROUTING", [], "-t mangle -A PREROUTING -o eth0", None),
    ("in-iface-in-user-chain-called-from-OUTPUT", ["-N foo", "-A OUTPUT -j foo"], "-A foo -i eth0", None),
    ("iface-too-long", [], "-A INPUT -i thisinterfaceistoolong0", None),
    ("dnat-in-filter", [], "-A INPUT -j DNAT --to-destination 1.2.3.4", None),
    ("dnat-in-nat-INPUT", [], "-t nat -A INPUT -j DNAT --to-destination 1.2.3.4", None),
    ("dnat-without-to", [], "-t nat -A PREROUTING -j DNAT", None),
    ("dnat-port-without-proto", [], "-t nat -A PREROUTING -j DNAT --to-destination 1.2.3.4:80", None),
    ("masquerade-in-PREROUTING", [], "-t nat -A PREROUTING -j MASQUERADE", None),
    ("masquerade-in-filter", [], "-A OUTPUT -j MASQUERADE", None),
    ("snat-in-PREROUTING", [], "-t nat -A PREROUTING -j SNAT --to-source 1.2.3.4", None),
    ("reject-in-nat", [], "-t nat -A PREROUTING -j REJECT", None),
    ("reject-tcp-reset-without-tcp", [], "-A INPUT -j REJECT --reject-with tcp-reset", None),
    ("reject-bad-type", [], "-A INPUT -j REJECT --reject-with nosuch", None),
    ("raw-has-no-INPUT", [], "-t raw -A INPUT -j ACCEPT", None),
    ("table-unknown", [], "-t nosuch -L", None),
    ("chain-loop", ["-N a", "-N b", "-A a -j b"], "-A b -j a", None),
    ("chain-self-jump", ["-N a"], "-A a -j a", None),
    ("chain-loop-reachable", ["-N a", "-N b", "-A INPUT -j a", "-A a -j b"], "-A b -j a", None),
    ("chain-self-jump-reachable", ["-N a", "-A INPUT -j a"], "-A a -j a", None),
    ("chain-loop-made-reachable", ["-N a", "-N b", "-A a -j b", "-A b -j a"], "-A INPUT -j a", None),
    ("return-in-builtin", [], "-A INPUT -j RETURN", None),
    ("jump-nat-chain-from-filter", ["-t nat -N natonly"], "-A INPUT -j natonly", None),
    ("jump-to-builtin", [], "-A INPUT -j OUTPUT", None),
    ("goto-missing", [], "-A INPUT -g nosuch", None),
    ("syn-with-udp", [], "-A INPUT -p udp --syn", None),
    ("state-bad", [], "-A INPUT -m state --state FOO", None),
    ("conntrack-bad-state", [], "-A INPUT -m conntrack --ctstate NEW,FOO", None),
    ("icmp-type-bad", [], "-A INPUT -p icmp --icmp-type nosuch", None),
    ("limit-bad", [], "-A INPUT -m limit --limit abc", None),
    ("limit-too-fast", [], "-A INPUT -m limit --limit 100000/sec", None),
    ("comment-too-long", [], "-A INPUT -m comment --comment " + LONG_COMMENT, None),
    ("log-prefix-too-long", [], "-A INPUT -j LOG --log-prefix " + LONG_PREFIX, None),
    ("log-level-bad", [], "-A INPUT -j LOG --log-level nosuch", None),
    ("mark-bad-value", [], "-A INPUT -m mark --mark xyz", None),
    ("counters-bad", [], "-A INPUT -c 1 -j ACCEPT", None),
    ("counters-ok", [], "-A INPUT -c 10 20 -j ACCEPT", None),
    ("attached-short-option", [], "-A INPUT -ptcp -jACCEPT", None),
    ("long-option-equals", [], "-A INPUT --protocol=tcp -j ACCEPT", None),
    ("option-abbreviated", [], "-A INPUT --proto tcp --dest 1.2.3.4 -j ACCEPT", None),
    ("check-existing", ["-A INPUT -s 1.2.3.4/32 -p tcp --dport 22 -j ACCEPT"],
     "-C INPUT -s 1.2.3.4 -p tcp --dport 22 -j ACCEPT", None),
    ("check-missing", ["-A INPUT -s 1.2.3.4/32 -p tcp --dport 22 -j ACCEPT"],
     "-C INPUT -s 1.2.3.4 -p tcp --dport 23 -j ACCEPT", None),
    ("check-missing-chain", [], "-C NOSUCH -j ACCEPT", None),
    ("check-no-rulespec", [], "-C INPUT", None),
    ("version", [], "--version", None),
    ("verbose-append", [], "-v -A INPUT -s 1.2.3.4 -p tcp --dport 22 -i eth0 -j ACCEPT", None),
    ("verbose-append-negations", [], "-v -A FORWARD ! -s 1.2.3.0/24 ! -o eth1 ! -p udp -j DROP", None),
    ("verbose-append-addr-list", [], "-v -A INPUT -s 1.1.1.1,2.2.2.2 -j DROP", None),
    ("verbose-insert", [], "-v -I INPUT -j ACCEPT", None),
    ("verbose-delete", ["-A INPUT -j ACCEPT"], "-v -D INPUT -j ACCEPT", None),
    ("verbose-flush-all", ["-N foo"], "-v -F", None),
    ("verbose-zero-all", ["-N foo"], "-v -Z", None),
    ("verbose-delete-chains", ["-N foo", "-N bar"], "-v -X", None),
    ("verbose-new-chain", [], "-v -N foo", None),
    ("verbose-policy", [], "-v -P INPUT DROP", None),
    ("verbose-nat", [], "-v -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080", None),
    ("list-one-rule", ["-A INPUT -s 1.2.3.4 -j ACCEPT", "-A INPUT -j DROP"], "-L INPUT 2 -n", None),
    ("list-one-rule-v", ["-A INPUT -s 1.2.3.4 -j ACCEPT", "-A INPUT -j DROP"], "-L INPUT 1 -n -v", None),
    ("list-S-and-L", [], "-S -L", None),
    ("list-user-chain-refs", ["-N foo", "-A INPUT -j foo", "-A OUTPUT -j foo"], "-L -n", None),
    ("list-x-without-v", ["-A INPUT -c 123456 7654321 -j ACCEPT"], "-L INPUT -n -x", None),
    ("list-exact-line-numbers", ["-A INPUT -j ACCEPT"], "-L INPUT -n --line-numbers", None),
    ("help", [], "-h", None),
]

# Other tools, full argv (no iptables-legacy prefix).
OTHER = [
    ("save-table-nat-untouched", [], "iptables-legacy-save -t nat"),
    ("save-table-unknown", [], "iptables-legacy-save -t nosuch"),
    ("save-bad-flag", [], "iptables-legacy-save --nosuch"),
    ("save-help", [], "iptables-legacy-save -h"),
    ("restore-help", [], "iptables-legacy-restore -h"),
    ("save-version", [], "iptables-legacy-save --version"),
    ("restore-version", [], "iptables-legacy-restore --version"),
]

RESTORE = [
    ("restore-ok-minimal", "", "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-empty-input", "", ""),
    ("restore-comments-and-blank", "", "# c\n\n*filter\n# inside\n\n-A INPUT -j ACCEPT\nCOMMIT\n# end\n"),
    ("restore-missing-commit", "", "*filter\n-A INPUT -j ACCEPT\n"),
    ("restore-rule-before-table", "", "-A INPUT -j ACCEPT\n*filter\nCOMMIT\n"),
    ("restore-commit-without-table", "", "COMMIT\n"),
    ("restore-table-twice-no-commit", "", "*filter\n*nat\nCOMMIT\n"),
    ("restore-unknown-table", "", "*nosuch\nCOMMIT\n"),
    ("restore-unknown-command", "", "*filter\n-Q INPUT\nCOMMIT\n"),
    ("restore-bad-rule", "", "*filter\n-A INPUT -j ACCEPT\n-A INPUT -m nosuch\nCOMMIT\n"),
    ("restore-kernel-refuses", "", "*filter\n-A INPUT -j DNAT --to-destination 1.2.3.4\nCOMMIT\n"),
    ("restore-bad-second-table", "", "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n*nat\n-A NOSUCH -j ACCEPT\nCOMMIT\n"),
    ("restore-rule-counters-with-c", "-c", "*filter\n[5:300] -A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-rule-counters-without-c", "", "*filter\n[5:300] -A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-rule-counters-bad", "-c", "*filter\n[a:b] -A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-rule-counters-unclosed", "-c", "*filter\n[5:300 -A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-policy-counters-with-c", "-c", "*filter\n:INPUT DROP [7:700]\nCOMMIT\n"),
    ("restore-policy-counters-without-c", "", "*filter\n:INPUT DROP [7:700]\nCOMMIT\n"),
    ("restore-policy-counters-bad", "-c", "*filter\n:INPUT ACCEPT [x:y]\nCOMMIT\n"),
    ("restore-policy-counters-bad-no-c", "", "*filter\n:INPUT ACCEPT [x:y]\nCOMMIT\n"),
    ("restore-policy-bad", "", "*filter\n:INPUT FOO [0:0]\nCOMMIT\n"),
    ("restore-policy-return", "", "*filter\n:INPUT RETURN [0:0]\nCOMMIT\n"),
    ("restore-policy-on-user-chain", "", "*filter\n:foo ACCEPT [0:0]\nCOMMIT\n"),
    ("restore-chain-line-name-only", "", "*filter\n:foo\nCOMMIT\n"),
    ("restore-chain-line-builtin-name-only", "", "*filter\n:INPUT\nCOMMIT\n"),
    ("restore-chain-line-empty-name", "", "*filter\n: - [0:0]\nCOMMIT\n"),
    ("restore-chain-line-no-counters", "", "*filter\n:foo -\nCOMMIT\n"),
    ("restore-chain-declared-twice", "", "*filter\n:foo - [0:0]\n:foo - [0:0]\nCOMMIT\n"),
    ("restore-chain-name-too-long", "", "*filter\n:" + "a" * 29 + " - [0:0]\nCOMMIT\n"),
    ("restore-builtin-missing-from-table", "", "*filter\n:INPUT ACCEPT [0:0]\n:NOSUCHBUILTIN ACCEPT [0:0]\nCOMMIT\n"),
    ("restore-undeclared-chain", "", "*filter\n-A foo -j ACCEPT\nCOMMIT\n"),
    ("restore-N-command", "", "*filter\n-N foo\n-A foo -j ACCEPT\nCOMMIT\n"),
    ("restore-X-command", "", "*filter\n:foo - [0:0]\n-X foo\nCOMMIT\n"),
    ("restore-jump-undeclared", "", "*filter\n-A INPUT -j foo\nCOMMIT\n"),
    ("restore-chain-loop", "", "*filter\n:a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\nCOMMIT\n"),
    ("restore-chain-loop-reachable", "", "*filter\n:a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A a -j b\n-A b -j a\nCOMMIT\n"),
    ("restore-quote-double", "", '*filter\n-A INPUT -m comment --comment "a b" -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-escaped", "", '*filter\n-A INPUT -m comment --comment "a \\"b\\" c" -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-escaped-outside", "", '*filter\n-A INPUT -m comment --comment a\\"b -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-backslash", "", '*filter\n-A INPUT -m comment --comment "a\\\\b" -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-single", "", "*filter\n-A INPUT -m comment --comment 'a b' -j ACCEPT\nCOMMIT\n"),
    ("restore-quote-unterminated", "", '*filter\n-A INPUT -m comment --comment "a b -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-empty", "", '*filter\n-A INPUT -m comment --comment "" -j ACCEPT\nCOMMIT\n'),
    ("restore-quote-mid-word", "", '*filter\n-A INPUT -m comment --comment ab"c d"e -j ACCEPT\nCOMMIT\n'),
    ("restore-tabs-as-space", "", "*filter\n-A\tINPUT\t-j\tACCEPT\nCOMMIT\n"),
    ("restore-trailing-space", "", "*filter \n-A INPUT -j ACCEPT  \nCOMMIT \n"),
    ("restore-crlf", "", "*filter\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n"),
    ("restore-no-final-newline", "", "*filter\n-A INPUT -j ACCEPT\nCOMMIT"),
    ("restore-line-very-long", "", "*filter\n" + LONG_LINE + "\nCOMMIT\n"),
    ("restore-many-args", "", "*filter\n" + MANY_ARGS + "\nCOMMIT\n"),
    ("restore-t-option-in-rule", "", "*filter\n-t nat -A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-test-ok", "--test", "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-test-bad", "--test", "*filter\n-A INPUT -m nosuch\nCOMMIT\n"),
    ("restore-test-kernel-would-refuse", "--test", "*filter\n-A INPUT -j DNAT --to-destination 1.2.3.4\nCOMMIT\n"),
    ("restore-noflush", "--noflush", "*filter\n-A INPUT -j DROP\nCOMMIT\n"),
    ("restore-flush", "", "*filter\n-A INPUT -j DROP\nCOMMIT\n"),
    ("restore-noflush-declare-existing-chain", "--noflush", "*filter\n:foo - [0:0]\n-A foo -j DROP\nCOMMIT\n"),
    ("restore-T-nat", "-T nat", "*filter\n-A INPUT -j DROP\nCOMMIT\n*nat\n-A OUTPUT -j ACCEPT\nCOMMIT\n"),
    ("restore-T-missing-table", "-T mangle", "*filter\n-A INPUT -j DROP\nCOMMIT\n"),
    ("restore-verbose", "-v", "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n*nat\nCOMMIT\n"),
    ("restore-bad-flag", "--nosuch", "*filter\nCOMMIT\n"),
]
# State every restore case starts from (so --noflush / flush show a difference).
RESTORE_SETUP = ["-A INPUT -j ACCEPT", "-N foo", "-A foo -j RETURN"]


def save(ns):
    _, out, _ = run(ns, ["iptables-legacy-save"])
    return "".join(ln + "\n" for ln in out.splitlines()
                   if not ln.startswith("# Generated by") and not ln.startswith("# Completed on"))


def main():
    out_dir = os.path.join(REC_ROOT, "errors")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    rows = []
    for cid, setup, cmd, _ in CMD:
        ns = ns_new()
        setup_log = []
        for s in setup:
            rc, _, err = run(ns, [I] + shlex.split(s))
            setup_log.append("%s %s" % (I, s) + ("" if rc == 0 else "  # rc %d %s" % (rc, err.strip())))
        rc, out, err = run(ns, [I] + shlex.split(cmd))
        rows.append([cid, "cmd", "\n".join(setup_log), shlex.join([I] + shlex.split(cmd)), "",
                     rc, out, err, save(ns)])
        ns_del(ns)
    for cid, setup, cmd in OTHER:
        ns = ns_new()
        rc, out, err = run(ns, shlex.split(cmd))
        if cmd.startswith("iptables-legacy-save"):
            # Same stamp stripping as everywhere (the two lines carry the time).
            out = "".join(ln + "\n" for ln in out.splitlines()
                          if not ln.startswith("# Generated by") and not ln.startswith("# Completed on"))
        rows.append([cid, "other", "", cmd, "", rc, out, err, save(ns)])
        ns_del(ns)
    for cid, flags, text in RESTORE:
        ns = ns_new()
        setup_log = []
        for s in RESTORE_SETUP:
            rc, _, err = run(ns, [I] + shlex.split(s))
            setup_log.append("%s %s" % (I, s) + ("" if rc == 0 else "  # rc %d %s" % (rc, err.strip())))
        argv = [R] + shlex.split(flags)
        rc, out, err = run(ns, argv, stdin=text)
        rows.append([cid, "restore", "\n".join(setup_log), shlex.join(argv), text, rc, out, err, save(ns)])
        ns_del(ns)
    with open(os.path.join(out_dir, "cases.tsv"), "w") as f:
        f.write(tsv_row(["id", "kind", "setup", "argv", "stdin", "rc", "stdout", "stderr", "after_save"]))
        for r in rows:
            f.write(tsv_row(r))

    # Table order: which order do tables appear in /proc/net/ip_tables_names and in save output?
    orders = [["filter"], ["nat", "filter"], ["nat", "mangle", "filter"], ["raw", "security", "nat", "filter", "mangle"],
              ["mangle", "raw", "filter", "nat", "security"], ["security", "filter"]]
    with open(os.path.join(out_dir, "table-order.tsv"), "w") as f:
        f.write(tsv_row(["touch_order", "ip_tables_names", "save_tables", "save"]))
        for order in orders:
            ns = ns_new()
            for t in order:
                run(ns, [I, "-t", t, "-S"])
            _, names, _ = run(ns, ["cat", "/proc/net/ip_tables_names"])
            s = save(ns)
            tables = ",".join(ln[1:] for ln in s.splitlines() if ln.startswith("*"))
            f.write(tsv_row([",".join(order), ",".join(names.split()), tables, s]))
            ns_del(ns)
        # A restore touching tables in a given order.
        ns = ns_new()
        text = "*nat\nCOMMIT\n*raw\nCOMMIT\n*filter\nCOMMIT\n"
        run(ns, [R], stdin=text)
        _, names, _ = run(ns, ["cat", "/proc/net/ip_tables_names"])
        s = save(ns)
        tables = ",".join(ln[1:] for ln in s.splitlines() if ln.startswith("*"))
        f.write(tsv_row(["restore:nat,raw,filter", ",".join(names.split()), tables, s]))
        ns_del(ns)
    print("recorded %d cases" % len(rows))


if __name__ == "__main__":
    main()
