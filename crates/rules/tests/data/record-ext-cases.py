#!/usr/bin/env python3
"""Runs every line of ext-cases.txt with the real iptables-legacy in a throwaway network
namespace (deleted on exit) and writes ext-cases.tsv next to it.

Columns: table chain args rc stderr S_line L_n_tail L_tail
  rc, stderr  - of `iptables-legacy -t T -A C ARGS`
  S_line      - the `-A` line(s) `-S C` shows afterwards (joined by \\n)
  L_n_tail    - the rule's `-L C -n` line from column 61 on (the match/target part)
  L_tail      - the same for `-L C` (names resolved)
Cells escape \\ TAB newline as \\\\ \\t \\n. Run as root from anywhere.
"""
import os, shlex, subprocess, sys

HERE = os.environ.get("EXT_CASES_DIR") or os.path.dirname(os.path.abspath(__file__))
NS = f"nfrs-ext-rec-{os.getpid()}"


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def ipt(*args):
    p = subprocess.run(["ip", "netns", "exec", NS, "iptables-legacy", *args],
                       capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        rows = ["table\tchain\targs\trc\tstderr\tS_line\tL_n_tail\tL_tail"]
        for line in open(os.path.join(HERE, "ext-cases.txt")):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            table, chain, args = line.split(" ", 2)
            argv = shlex.split(args)
            ipt("-t", table, "-F", chain)
            rc, _, err = ipt("-t", table, "-A", chain, *argv)
            s = ln = l = ""
            if rc == 0:
                s = "\n".join(x for x in ipt("-t", table, "-S", chain)[1].splitlines()
                              if x.startswith("-A "))
                ln = "\n".join(x[61:] for x in ipt("-t", table, "-L", chain, "-n")[1].splitlines()[2:])
                l = "\n".join(x[61:] for x in ipt("-t", table, "-L", chain)[1].splitlines()[2:])
                ipt("-t", table, "-F", chain)
            rows.append("\t".join(esc(c) for c in [table, chain, args, str(rc), err, s, ln, l]))
        with open(os.path.join(HERE, "ext-cases.tsv"), "w") as f:
            f.write("\n".join(rows) + "\n")
        print(f"{len(rows) - 1} cases recorded")
    finally:
        subprocess.run(["ip", "netns", "del", NS])


if __name__ == "__main__":
    sys.exit(main())
