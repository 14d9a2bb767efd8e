import socket
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.8",1111)); u.sendto(b"q",("198.51.100.1",7)); u.sendto(b"q",("198.51.100.1",8))
t=socket.socket(); t.bind(("10.0.0.9",2222)); t.setblocking(False)
try: t.connect(("198.51.100.50",80))
except BlockingIOError: pass
import time; time.sleep(0.5)
