#!/usr/bin/env python3
# browser.py - drive a real headless chromium through the DevTools protocol
# (stdlib only: a minimal WebSocket client) for the web page test.
#
# Usage: browser.py CHROMIUM_PROFILE_DIR DOWNLOAD_DIR URL USER PASSWORD
# It starts chromium (its pid in PROFILE_DIR/chromium.pid, its output in
# PROFILE_DIR/chromium.log), opens URL, answers the HTTP basic auth
# challenge with USER and PASSWORD (as a person typing them would), prints
# the page's text, clicks the Connect button and waits for the download.
# It prints "downloaded NAME" and exits 0, or says what failed and exits 1.
# Chromium is stopped by its pid in every case.
import base64, json, os, socket, struct, subprocess, sys, time, urllib.request

prof, dl, url, user, password = sys.argv[1:6]
DEADLINE = time.time() + 60


class WS:
    def __init__(self, wsurl):
        rest = wsurl[len("ws://"):]
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            resp += self.s.recv(1)
        if b" 101 " not in resp.split(b"\r\n")[0]:
            raise RuntimeError("websocket handshake failed: %r" % resp[:80])
        self.id = 0
        self.events = []

    def send(self, method, **params):
        self.id += 1
        data = json.dumps({"id": self.id, "method": method, "params": params}).encode()
        hdr = bytes([0x81])
        n = len(data)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        return self.id

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise RuntimeError("browser closed the connection")
            b += c
        return b

    def recv(self):
        msg = b""
        while True:
            h = self._exact(2)
            n = h[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            msg += self._exact(n)
            if h[0] & 0x80:
                return json.loads(msg)

    def call(self, method, **params):
        i = self.send(method, **params)
        while time.time() < DEADLINE:
            m = self.recv()
            if m.get("id") == i:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)
        raise RuntimeError(f"{method}: no answer")


log = open(os.path.join(prof, "chromium.log"), "w")
chrome = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                           f"--user-data-dir={prof}", "about:blank"],
                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
open(os.path.join(prof, "chromium.pid"), "w").write(str(chrome.pid))
try:
    port_file = os.path.join(prof, "DevToolsActivePort")
    while not os.path.exists(port_file) and time.time() < DEADLINE:
        time.sleep(0.1)
    port = open(port_file).read().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = WS([t for t in targets if t["type"] == "page"][0]["webSocketDebuggerUrl"])
    browser = WS(json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version"))["webSocketDebuggerUrl"])
    browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=dl, eventsEnabled=True)
    page.call("Page.enable")
    page.call("Fetch.enable", handleAuthRequests=True)
    page.send("Page.navigate", url=url)
    loaded = False
    while not loaded and time.time() < DEADLINE:
        m = page.events.pop(0) if page.events else page.recv()
        meth = m.get("method")
        if meth == "Fetch.authRequired":
            page.send("Fetch.continueWithAuth", requestId=m["params"]["requestId"],
                      authChallengeResponse={"response": "ProvideCredentials", "username": user,
                                             "password": password})
        elif meth == "Fetch.requestPaused":
            page.send("Fetch.continueRequest", requestId=m["params"]["requestId"])
        elif meth == "Page.loadEventFired":
            loaded = True
    if not loaded:
        raise RuntimeError("the page did not load")
    text = page.call("Runtime.evaluate", expression="document.body.innerText")["result"]["value"]
    print(text)
    shots = os.environ.get("BROWSER_SHOTS")
    if shots:
        # The page at a desktop's and a phone's size: a screenshot of each, and what a
        # person touches and reads measured: the smallest touch target, unlabelled fields,
        # elements that keyboard focus cannot reach, and text wider than the screen.
        measure = """(() => {
          const t = [...document.querySelectorAll('button, select, input:not([type=hidden]), summary')];
          const h = Math.min(...t.map(e => e.getBoundingClientRect().height));
          const unl = [...document.querySelectorAll('select, input:not([type=hidden])')]
            .filter(e => e.labels.length == 0).length;
          const nofocus = t.filter(e => e.tabIndex < 0).length;
          const wide = document.documentElement.scrollWidth > window.innerWidth;
          return `targets=${t.length} min_height=${Math.floor(h)} unlabelled=${unl} unfocusable=${nofocus} overflow=${wide}`;
        })()"""
        for w, h, mobile in ((1280, 900, False), (390, 844, True)):
            page.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=mobile)
            m = page.call("Runtime.evaluate", expression=measure)["result"]["value"]
            print(f"measured {w}x{h}: {m}")
            png = page.call("Page.captureScreenshot", format="png")["data"]
            open(os.path.join(shots, f"page-{w}x{h}.png"), "wb").write(base64.b64decode(png))
        page.call("Emulation.clearDeviceMetricsOverride")
    page.s.settimeout(0.5)
    # Connect, then Connect again from the same page: each gives a .vv.
    for k in (1, 2):
        page.send("Runtime.evaluate", expression="document.querySelector('#connect button').click()")
        got = None
        while got is None and time.time() < DEADLINE:
            try:
                m = page.events.pop(0) if page.events else page.recv()
            except socket.timeout:
                m = {}
            if m.get("method") == "Fetch.requestPaused":
                page.send("Fetch.continueRequest", requestId=m["params"]["requestId"])
            elif m.get("method") == "Fetch.authRequired":
                page.send("Fetch.continueWithAuth", requestId=m["params"]["requestId"],
                          authChallengeResponse={"response": "ProvideCredentials", "username": user,
                                                 "password": password})
            done = [f for f in os.listdir(dl) if not f.endswith(".crdownload") and not f.startswith("seen-")]
            if done:
                got = done[0]
        if got is None:
            raise RuntimeError(f"no download for Connect {k}")
        print(f"downloaded {got}")
        os.rename(os.path.join(dl, got), os.path.join(dl, f"seen-{k}-{got}"))
    sys.exit(0)
except Exception as e:  # one line for the test's log
    print(f"browser.py: {e}", file=sys.stderr)
    sys.exit(1)
finally:
    chrome.terminate()
    try:
        chrome.wait(10)
    except subprocess.TimeoutExpired:
        chrome.kill()
        chrome.wait()
