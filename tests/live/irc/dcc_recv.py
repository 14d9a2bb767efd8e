"""A DCC receiver outside the NAT (python3 stdlib only).

Waits for `DCC SEND FILE ADDR PORT SIZE` from SENDER, asks to resume it at POS
(`DCC RESUME FILE PORT POS`, the port it was told), waits for `DCC ACCEPT`, connects to the
address and port it was told and reads the rest, acknowledging as DCC does (4-byte totals).
Writes RESULT (JSON): the offer as received, the ACCEPT, how many bytes came and whether they
are exactly the sender's bytes POS..SIZE.

Usage: dcc_recv.py SOURCE SERVER NICK SENDER POS RESULT
"""

import socket
import struct
import sys

from dcc import Irc, TIMEOUT, content, dump, ip_text


def main():
    source, server, nick, sender, pos, result = sys.argv[1:7]
    pos = int(pos)
    irc = Irc(source, server, 6667, nick)
    print("ready", flush=True)
    _, words = irc.wait_dcc("SEND", sender)
    name, addr, port, size = words[0], ip_text(int(words[1])), int(words[2]), int(words[3])
    res = {"send_words": words, "told_addr": addr, "told_port": port, "size": size}
    dump(result, res)
    irc.privmsg(sender, "\x01DCC RESUME %s %d %d\x01" % (name, port, pos))
    _, words = irc.wait_dcc("ACCEPT", sender)
    res["accept_words"] = words
    dump(result, res)
    conn = socket.create_connection((addr, int(words[1])), timeout=TIMEOUT,
                                    source_address=(source, 0))
    got = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
        conn.sendall(struct.pack("!I", (pos + len(got)) & 0xFFFFFFFF))
    conn.close()
    res["received"] = len(got)
    res["exact"] = bytes(got) == content(sender, size)[pos:]
    dump(result, res)
    # The sender's closing message (sent after the rewritten messages) must arrive intact.
    while True:
        line = irc.read_line()
        if " PRIVMSG %s :sent " % nick in line:
            res["closing"] = line.split(" :", 1)[1]
            break
    irc.privmsg(sender, "\x01DCC BYE\x01")
    dump(result, res)


if __name__ == "__main__":
    main()
