import socket,time
t=socket.socket(); t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); t.bind(("0.0.0.0",6667)); t.listen(5)
c,a=t.accept(); d=c.recv(1000); print("server got",d)
time.sleep(1.5)
# peer connects to the DCC address announced
try:
    p=socket.create_connection(("198.51.100.254",5000),timeout=2); print("dcc connected"); p.close()
except Exception as e: print("dcc",e)
time.sleep(3)
