#!/usr/bin/env python3
# console.py - a websocket client of vm-console for the tests and benches
# (stdlib only): it speaks to vm-console's Unix socket as the web server
# would, or to a web server's URL as a browser would, then RFB through it.
#
# Usage: console.py open SOCKET|URL SESSION TICKET [USER] [ORIGIN] [EXTRA-HEADER...]
#   prints "status N" (the HTTP status); on 101 does the RFB handshake and
#   prints "server-init WIDTHxHEIGHT NAME", then holds the console open while
#   the file $HOLD is there (or until stdin closes) and prints how it ended.
# Usage: console.py junk SOCKET N          N connections at once, each junk
# Usage: console.py raw SOCKET REQUEST      send REQUEST (\r\n escaped), print the status
import base64, os, select, socket, struct, sys, time


def connect(where):
    if where.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(where)
        return s, "vdi.example", "/vdi-console"
    rest = where.split("://", 1)[1]
    hostport, path = (rest.split("/", 1) + [""])[:2]
    host, port = hostport.split(":")
    return socket.create_connection((host, int(port)), timeout=30), hostport, "/" + path


def upgrade(where, session, ticket, user=None, origin=None, extra=(), auth=None, path=None):
    s, host, defpath = connect(where)
    s.settimeout(30)
    key = base64.b64encode(os.urandom(16)).decode()
    q = f"{path or defpath}?session={session}&ticket={ticket}"
    h = [f"GET {q} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
         f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin is None:
        origin = f"http://{host}"
    if origin:
        h.append(f"Origin: {origin}")
    if user:
        h.append(f'Forwarded: for=192.0.2.7;remote_user="{user}"')
    if auth:
        h.append("Authorization: Basic " + base64.b64encode(auth.encode()).decode())
    h += list(extra)
    s.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        c = s.recv(1)
        if not c:
            break
        resp += c
    line = resp.split(b"\r\n", 1)[0].decode(errors="replace")
    status = int(line.split()[1]) if len(line.split()) > 1 else 0
    return s, status


class WS:
    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.fin = True

    def send(self, data, opcode=2):
        n = len(data)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("closed")
            b += c
        return b

    def frame(self):
        h = self._exact(2)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._exact(8))[0]
        data = self._exact(n)
        self.fin = bool(h[0] & 0x80)  # the last frame of its message
        if h[0] & 0x0F == 8:
            code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 0
            raise EOFError(f"closed {code}")
        return data

    def read(self, n):
        while len(self.buf) < n:
            self.buf += self.frame()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def rfb(ws):
    v = ws.read(12)
    assert v == b"RFB 003.008\n", v
    ws.send(v)
    n = ws.read(1)[0]
    types = ws.read(n)
    assert types == b"\x01", types
    ws.send(b"\x01")
    assert ws.read(4) == b"\0\0\0\0"
    ws.send(b"\x01")  # ClientInit, shared
    w, h = struct.unpack(">HH", ws.read(4))
    ws.read(16)
    name = ws.read(struct.unpack(">I", ws.read(4))[0]).decode(errors="replace")
    return w, h, name


def main():
    mode, where = sys.argv[1], sys.argv[2]
    if mode == "open":
        session, ticket = sys.argv[3], sys.argv[4]
        user = sys.argv[5] if len(sys.argv) > 5 else None
        origin = sys.argv[6] if len(sys.argv) > 6 else None
        s, status = upgrade(where, session, ticket, user or None, origin, sys.argv[7:])
        print(f"status {status}", flush=True)
        if status != 101:
            return 0
        ws = WS(s)
        try:
            w, h, name = rfb(ws)
            print(f"server-init {w}x{h} {name}", flush=True)
            hold = os.environ.get("HOLD")
            # Held open while the file HOLD is there (or until stdin closes), watching for the far end's close.
            while os.path.exists(hold) if hold else not select.select([sys.stdin], [], [], 0)[0]:
                if select.select([s], [], [], 0.1)[0] and not s.recv(65536):
                    raise EOFError("closed")
            print("closed by us", flush=True)
        except (EOFError, OSError) as e:
            print(f"ended: {e}", flush=True)
        return 0
    if mode == "junk":
        n = int(sys.argv[3])
        socks = []
        for i in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.connect(where)
            socks.append(s)
        for i, s in enumerate(socks):
            try:
                s.sendall([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                           b"GET /vdi-console HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" + b"X" * 9000 + b"\r\n\r\n",
                           os.urandom(64), b"GET / HTTP/9.9\r\n\r\n"][i % 4])
            except OSError:
                pass
        done, left = 0, {}
        deadline = time.time() + 60
        for i, s in enumerate(socks):
            s.settimeout(max(0.1, deadline - time.time()))
            try:
                while s.recv(4096):
                    pass
                done += 1
            except ConnectionResetError:
                done += 1
            except OSError:
                left[i % 4] = left.get(i % 4, 0) + 1
            s.close()
        print(f"junk {n} closed {done}" + (f" open {left}" if left else ""))
        return 0
    if mode == "raw":
        s, _, _ = connect(where)
        s.settimeout(30)
        s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
        resp = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        print(f"status {resp.split()[1] if len(resp.split()) > 1 else 0}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
