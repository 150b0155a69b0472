"""A DNS server on loopback for the tests, with dnslib: answers from a
JSON list of [name, type, value] records (TXT, A, AAAA, MX), NXDOMAIN
for names it does not know, SERVFAIL for a record of type SERVFAIL.
Prints its port, then logs each query ("name TYPE") to the log file."""
import json
import sys
import time

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

zone_file, log_file = sys.argv[1], sys.argv[2]


class Zone(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        with open(log_file, "a") as log:
            log.write(f"{name} {qtype}\n")
        records = [r for r in json.load(open(zone_file)) if r[0].lower() == name]
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for _, rtype, value in records:
            if rtype == "SERVFAIL":
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if rtype != qtype:
                continue
            if rtype == "TXT":
                data = value.encode()
                rdata = TXT([data[i : i + 255] for i in range(0, len(data), 255)])
            elif rtype == "A":
                rdata = A(value)
            elif rtype == "AAAA":
                rdata = AAAA(value)
            elif rtype == "MX":
                rdata = MX(value)
            else:
                continue
            reply.add_answer(RR(q.qname, q.qtype, rdata=rdata, ttl=300))
        return reply


quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)

def bind_both():
    """UDP and TCP on one port. The UDP port is free when the kernel gives
    it, but the same TCP port may belong to another test's listener or
    connection (tests run in parallel): then try another port."""
    for _ in range(100):
        udp = DNSServer(Zone(), port=0, address="127.0.0.1", logger=quiet)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(Zone(), port=port, address="127.0.0.1", tcp=True, logger=quiet)
        except OSError:
            udp.server.server_close()
            continue
        return udp, tcp, port
    sys.exit("no port free for both UDP and TCP on 127.0.0.1")


udp, tcp, port = bind_both()
udp.start_thread()
tcp.start_thread()
print(port, flush=True)
while True:
    time.sleep(3600)
