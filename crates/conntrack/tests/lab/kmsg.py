import os,sys,time,errno
fd=os.open("/dev/kmsg",os.O_RDONLY|os.O_NONBLOCK)
os.lseek(fd,0,2)
open("/tmp/ctlab/kmsg.ready","w").close()
end=time.time()+float(sys.argv[1])
with open("/tmp/ctlab/kmsg.out","w") as f:
    while time.time()<end:
        try:
            r=os.read(fd,8192).decode(errors="replace")
            if "IN=r0" in r or "IN=r1" in r or "OUT=r0" in r or "OUT=r1" in r:
                f.write(r.split(";",1)[1].rstrip("\n")+"\n"); f.flush()
        except OSError as e:
            if e.errno==errno.EAGAIN: time.sleep(0.005)
            elif e.errno==errno.EPIPE: continue
            else: raise
