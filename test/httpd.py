#!/usr/bin/env python3
"""httpd.py - a real HTTP(S) server on 127.0.0.1 for the tests' image downloads.

Usage: httpd.py DIR PORTFILE [--tls CERT KEY]
Serves DIR; writes the port it got to PORTFILE.  Besides plain files:
  /truncated/NAME    promises all of NAME's bytes, sends half, closes
  /slow/NAME         sends NAME 64 KiB every 0.2 s (to be killed mid-way)
  /redirect/NAME     302 to /NAME
  /loop              302 to itself, forever
  /to-ftp            302 to an ftp:// URL
Stops by itself after 10 minutes, so a test that forgets it leaves nothing.
"""
import http.server
import os
import socketserver
import ssl
import sys
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_file_bytes(self, name, limit=None, slow=False):
        path = os.path.join(self.server.root, os.path.basename(name))
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        body = data if limit is None else data[:limit]
        if slow:
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i:i + 65536])
                self.wfile.flush()
                time.sleep(0.2)
        else:
            self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        p = self.path
        if p.startswith("/truncated/"):
            name = p[len("/truncated/"):]
            size = os.path.getsize(os.path.join(self.server.root, os.path.basename(name)))
            self.send_file_bytes(name, limit=size // 2)
        elif p.startswith("/slow/"):
            self.send_file_bytes(p[len("/slow/"):], slow=True)
        elif p.startswith("/redirect/"):
            self.redirect("/" + p[len("/redirect/"):])
        elif p == "/loop":
            self.redirect("/loop")
        elif p == "/to-ftp":
            self.redirect("ftp://127.0.0.1/image.qcow2")
        else:
            self.send_file_bytes(p.lstrip("/"))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    root, portfile = sys.argv[1], sys.argv[2]
    srv = Server(("127.0.0.1", 0), Handler)
    srv.root = root
    if len(sys.argv) == 6 and sys.argv[3] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    threading.Timer(600, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
