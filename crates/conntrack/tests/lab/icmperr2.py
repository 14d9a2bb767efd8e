import socket,time
a=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); a.bind(("10.0.0.3",5000)); a.sendto(b"first",("198.51.100.1",9999))
time.sleep(0.2)
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.2",5000)); u.sendto(b"hello-nat",("198.51.100.1",9999))
time.sleep(0.5)
