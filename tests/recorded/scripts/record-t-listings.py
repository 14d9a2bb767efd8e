#!/usr/bin/env python3
"""For every test line of the IPv4 .t files (iptables.t, libipt_*.t, libxt_*.t) of the corpus:
append the rule with iptables-legacy in its table and first chain, record how -S and -L print it,
delete it again, and write t-listings/<module>.tsv (lines the legacy backend must accept) and
t-errors/<module>.tsv (lines it must refuse). See ../README.md for the columns."""
import glob
import os
import re
import shlex
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsutil import CORPUS, REC_ROOT, ns_new, ns_del, run, tsv_row  # noqa: E402

IPT = "iptables-legacy"
LIST_HDR = ["table", "chain", "args", "rc", "S_line", "L_n_line", "L_nvx_line", "L_line",
            "expected", "expected_save", "del_rc", "stderr", "t_line"]
ERR_HDR = ["table", "chain", "args", "rc", "stderr", "S_line", "t_line"]


def legacy_result(fields):
    """Expected result of a test line for the legacy backend (README of the corpus)."""
    res = fields[2] if len(fields) > 2 else ""
    if len(fields) > 3 and fields[3] in ("NFT", "LEGACY"):
        if fields[3] == "LEGACY":
            return res
        if len(fields) > 4 and fields[4]:
            return res if fields[4] == "=" else fields[4]
        return {"OK": "FAIL", "FAIL": "OK", "NOMATCH": "OK"}.get(res, res)
    return res


def rule_lines(ns, table, chain, argv_tail):
    rc, out, _ = run(ns, [IPT, "-t", table] + argv_tail, timeout=10)
    return rc, out


def s_rules(ns, table, chain):
    _, out, _ = run(ns, [IPT, "-t", table, "-S", chain])
    return [ln for ln in out.splitlines() if ln.startswith("-A ")]


def l_rules(ns, table, chain, extra):
    rc, out, err = run(ns, [IPT, "-t", table, "-L", chain] + extra, timeout=10)
    lines = out.splitlines()[2:]
    if rc != 0:
        lines.append("<rc %d: %s>" % (rc, err.strip()))
    return lines


def strip_counters(argv):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-c", "--set-counters"):
            skip = True
            continue
        out.append(a)
    return out


def do_module(path, notes):
    module = os.path.basename(path)[:-2]
    ns = ns_new()
    table, chains = "filter", None
    okrows, errrows = [], []
    accepted = []  # (table, chains, args) of lines -A accepted, for the one-restore pass
    has_prereq = False
    for lineno, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if line.startswith(":"):
            chains = line[1:].strip().split(",")
            continue
        if line.startswith("%") or line.startswith("@"):
            has_prereq = True
        if line.startswith("%"):
            cmd = shlex.split(line[1:])
            if cmd and cmd[0] == "iptables":
                rc, _, err = run(ns, [IPT] + cmd[1:])
                notes.append("%s:%d ran %s -> rc %d %s" % (module, lineno, line, rc, err.strip()))
            else:
                notes.append("%s:%d skipped prerequisite %s" % (module, lineno, line))
            continue
        if line.startswith("@"):
            notes.append("%s:%d skipped prerequisite (tool not installed / not trivially possible): %s"
                         % (module, lineno, line))
            continue
        fields = line.split(";")
        if chains is None:
            notes.append("%s:%d skipped: test line before any chain list" % (module, lineno))
            continue
        args = fields[0]
        chain = chains[0]
        expected = legacy_result(fields)
        save = fields[1] if len(fields) > 1 else ""
        if save == "=":
            save = args
        argv = shlex.split(args)
        base = len(s_rules(ns, table, chain))
        rc, _, err = run(ns, [IPT, "-t", table, "-A", chain] + argv)
        added_s = s_rules(ns, table, chain)[base:]
        if expected == "FAIL":
            errrows.append([table, chain, args, rc, err.rstrip("\n"), "\n".join(added_s), lineno])
        else:
            ln = l_rules(ns, table, chain, ["-n"])[base:]
            lv = l_rules(ns, table, chain, ["-n", "-v", "-x"])[base:]
            lw = l_rules(ns, table, chain, [])[base:]
            del_rc = ""
            if rc == 0:
                accepted.append((table, chains, args))
                del_rc, _, _ = run(ns, [IPT, "-t", table, "-D", chain] + strip_counters(argv))
            okrows.append([table, chain, args, rc, "\n".join(added_s), "\n".join(ln), "\n".join(lv),
                           "\n".join(lw), expected, save, del_rc, err.rstrip("\n"), lineno])
        # Whatever is still there beyond the baseline goes away by number.
        while len(s_rules(ns, table, chain)) > base:
            r, _, _ = run(ns, [IPT, "-t", table, "-D", chain, str(base + 1)])
            if r != 0:
                run(ns, [IPT, "-t", table, "-F", chain])
                break
    ns_del(ns)
    if accepted and not has_prereq:
        restore_all(module, accepted)
    for sub, hdr, rows in (("t-listings", LIST_HDR, okrows), ("t-errors", ERR_HDR, errrows)):
        if rows:
            with open(os.path.join(REC_ROOT, sub, module + ".tsv"), "w") as f:
                f.write(tsv_row(hdr))
                for r in rows:
                    f.write(tsv_row(r))
    return len(okrows), len(errrows)


CHAIN_ORDER = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]


def restore_all(module, accepted):
    """Like the upstream runner's fast mode: every accepted line, on every chain of its chain
    list, in one iptables-legacy-restore (tables in first-use order, chains in hook order)."""
    d = os.path.join(REC_ROOT, "t-restore", module)
    os.makedirs(d)
    tables = []
    for t, _, _ in accepted:
        if t not in tables:
            tables.append(t)
    text = ""
    for t in tables:
        text += "*%s\n" % t
        for c in CHAIN_ORDER:
            for t2, chains, args in accepted:
                if t2 == t and c in chains:
                    text += "-A %s %s\n" % (c, args)
        text += "COMMIT\n"
    with open(os.path.join(d, "input.rules"), "w") as f:
        f.write(text)
    ns = ns_new()
    rc, _, err = run(ns, ["iptables-legacy-restore"], stdin=text, timeout=30)
    with open(os.path.join(d, "restore.rc"), "w") as f:
        f.write("%d\n" % rc)
    if err:
        with open(os.path.join(d, "restore.err"), "w") as f:
            f.write(err)
    if rc == 0:
        _, out, _ = run(ns, ["iptables-legacy-save"])
        with open(os.path.join(d, "save.txt"), "w") as f:
            f.write("".join(ln + "\n" for ln in out.splitlines()
                            if not ln.startswith("# Generated by") and not ln.startswith("# Completed on")))
    ns_del(ns)


def main():
    tdir = os.path.join(CORPUS, "iptables-t")
    files = [os.path.join(tdir, "iptables.t")]
    files += sorted(glob.glob(os.path.join(tdir, "libipt_*.t")))
    files += sorted(glob.glob(os.path.join(tdir, "libxt_*.t")))
    for sub in ("t-listings", "t-errors", "t-restore"):
        shutil.rmtree(os.path.join(REC_ROOT, sub), ignore_errors=True)
        os.makedirs(os.path.join(REC_ROOT, sub))
    notes = []
    tot_ok = tot_err = 0
    for p in files:
        ok, bad = do_module(p, notes)
        tot_ok += ok
        tot_err += bad
        print("%-24s ok-lines %3d  fail-lines %3d" % (os.path.basename(p), ok, bad), flush=True)
    with open(os.path.join(REC_ROOT, "t-listings", "NOTES.txt"), "w") as f:
        f.write("Prerequisite lines of the .t files and what the recorder did with them:\n")
        for n in notes:
            f.write(n + "\n")
    print("total ok-lines %d fail-lines %d" % (tot_ok, tot_err))


if __name__ == "__main__":
    main()
