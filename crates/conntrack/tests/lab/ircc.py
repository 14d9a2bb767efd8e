import socket,time
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("10.0.0.2",5000)); l.listen(1)
c=socket.create_connection(("198.51.100.1",6667),source_address=("10.0.0.2",40000))
c.send(b"PRIVMSG bob :\x01DCC SEND file 167772162 5000 100\x01\r\n")
time.sleep(4)
