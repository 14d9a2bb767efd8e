"""A DCC sender behind the NAT (python3 stdlib only).

Listens on SOURCE:PORT, offers `DCC SEND FILE <SOURCE as a number> PORT SIZE` to PEER through
the relay. Mode `hold`: keeps the offer open until killed, serving from byte 0 whoever
connects (in the test nobody should). Mode `resume`: waits for `DCC RESUME FILE PORT POS`,
answers `DCC ACCEPT FILE PORT POS` only when PORT is the port it offered (as IRC clients match
a RESUME to their transfer by port), then serves bytes POS.. to the one connection that comes.
Writes what it saw to RESULT (JSON) and prints `offered` once the offer is out.

Usage: dcc_send.py SOURCE SERVER NICK PEER FILE SIZE PORT hold|resume RESULT
"""

import socket
import sys

from dcc import Irc, TIMEOUT, content, dump, ip_number


def main():
    source, server, nick, peer, name, size, port, mode, result = sys.argv[1:10]
    size, port = int(size), int(port)
    data = content(nick, size)
    res = {"nick": nick, "offered_port": port, "connections": []}
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((source, port))
    lst.listen(2)
    irc = Irc(source, server, 6667, nick)
    irc.privmsg(peer, "\x01DCC SEND %s %d %d %d\x01" % (name, ip_number(source), port, size))
    dump(result, res)
    print("offered", flush=True)
    pos = 0
    if mode == "resume":
        _, words = irc.wait_dcc("RESUME", peer)
        res["resume_words"] = words
        dump(result, res)
        r_name, r_port, r_pos = words[0], int(words[1]), int(words[2])
        if r_port != port or r_name != name:
            res["error"] = "RESUME for a transfer this client did not offer"
            dump(result, res)
            sys.exit(1)
        pos = r_pos
        irc.privmsg(peer, "\x01DCC ACCEPT %s %d %d\x01" % (name, port, pos))
        lst.settimeout(TIMEOUT)
    while True:
        conn, addr = lst.accept()
        conn.settimeout(TIMEOUT)
        conn.sendall(data[pos:])
        conn.shutdown(socket.SHUT_WR)
        # DCC acknowledgements (4-byte totals) until the receiver closes.
        while conn.recv(4096):
            pass
        conn.close()
        res["connections"].append({"from": addr[0], "sent_from": pos, "bytes": size - pos})
        dump(result, res)
        if mode == "resume":
            res["done"] = True
            dump(result, res)
            # Say so on the IRC connection too: a message after the rewrites must still arrive
            # (sequence adjustment).
            irc.privmsg(peer, "sent %d bytes from %d" % (size - pos, pos))
            irc.wait_dcc("BYE", peer)
            return


if __name__ == "__main__":
    main()
