import socket,threading,time
t=socket.socket(); t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); t.bind(("0.0.0.0",80)); t.listen(5)
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("0.0.0.0",53))
def tcp():
    while True:
        c,_=t.accept(); d=c.recv(100); c.send(b"ok"); 
        if d==b"close": c.close()
        else: time.sleep(30)
def udp():
    while True:
        d,a=u.recvfrom(100); u.sendto(d,a)
threading.Thread(target=tcp,daemon=True).start(); threading.Thread(target=udp,daemon=True).start()
time.sleep(60)
