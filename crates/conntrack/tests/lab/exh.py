import socket,time
for i in range(2,7):
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.%d"%i,5000)); u.sendto(b"x",("198.51.100.1",53)); time.sleep(0.05)
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.7",1001)); u.sendto(b"x",("198.51.100.1",53))
time.sleep(0.3)
