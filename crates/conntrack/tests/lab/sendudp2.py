import socket,sys
for s in range(2,21):
    for d in range(1,10):
        k=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
        k.bind(("10.0.0.%d"%s, 40000+s))
        k.sendto(b"x",("203.0.113.%d"%d,5000))
        k.close()
