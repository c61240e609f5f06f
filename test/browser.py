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
# As a module: start_chromium() and open_page() for other browser tests.
import base64, json, os, socket, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console as frames  # noqa: E402

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
        self.f = frames.WS(self.s)  # the framing: test/console.py's client

    def send(self, method, **params):
        self.id += 1
        self.f.send(json.dumps({"id": self.id, "method": method, "params": params}).encode(), opcode=1)
        return self.id

    def recv(self):
        msg = b""
        while True:
            msg += self.f.frame()
            if self.f.fin:
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


def start_chromium(prof):
    """Chromium, headless, its pid in PROF/chromium.pid and its output in PROF/chromium.log."""
    log = open(os.path.join(prof, "chromium.log"), "w")
    chrome = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--no-first-run", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                               f"--user-data-dir={prof}", "about:blank"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    open(os.path.join(prof, "chromium.pid"), "w").write(str(chrome.pid))
    return chrome


def stop_chromium(chrome):
    chrome.terminate()
    try:
        chrome.wait(10)
    except subprocess.TimeoutExpired:
        chrome.kill()
        chrome.wait()


def pump(page, user, password):
    """One DevTools event, answering basic auth and letting paused requests go on; {} on a timeout."""
    try:
        m = page.events.pop(0) if page.events else page.recv()
    except socket.timeout:
        return {}
    meth = m.get("method")
    if meth == "Fetch.authRequired":
        page.send("Fetch.continueWithAuth", requestId=m["params"]["requestId"],
                  authChallengeResponse={"response": "ProvideCredentials", "username": user,
                                         "password": password})
    elif meth == "Fetch.requestPaused":
        page.send("Fetch.continueRequest", requestId=m["params"]["requestId"])
    return m


def open_page(prof, url, user, password):
    """The page and browser DevTools connections, with url loaded as user (basic auth answered)."""
    port_file = os.path.join(prof, "DevToolsActivePort")
    while not os.path.exists(port_file) and time.time() < DEADLINE:
        time.sleep(0.1)
    port = open(port_file).read().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = WS([t for t in targets if t["type"] == "page"][0]["webSocketDebuggerUrl"])
    browser = WS(json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version"))["webSocketDebuggerUrl"])
    page.call("Page.enable")
    page.call("Fetch.enable", handleAuthRequests=True)
    page.send("Page.navigate", url=url)
    while time.time() < DEADLINE:
        if pump(page, user, password).get("method") == "Page.loadEventFired":
            return page, browser
    raise RuntimeError("the page did not load")


# The page as a person meets it: the smallest touch target, unlabelled fields,
# elements that keyboard focus cannot reach, and text wider than the screen.
MEASURE = """(() => {
  const t = [...document.querySelectorAll('button, select, input:not([type=hidden]), textarea, summary, a.button')];
  const h = Math.min(...t.map(e => e.getBoundingClientRect().height));
  const unl = [...document.querySelectorAll('select, input:not([type=hidden]), textarea')]
    .filter(e => e.labels.length == 0).length;
  const nofocus = t.filter(e => e.tabIndex < 0).length;
  const wide = document.documentElement.scrollWidth > window.innerWidth;
  return `targets=${t.length} min_height=${Math.floor(h)} unlabelled=${unl} unfocusable=${nofocus} overflow=${wide}`;
})()"""


def measure(page, shots, name):
    """MEASURE at a desktop's and a phone's size, printed, with a screenshot of each into SHOTS."""
    for w, h, mobile in ((1280, 900, False), (390, 844, True)):
        page.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=mobile)
        m = page.call("Runtime.evaluate", expression=MEASURE)["result"]["value"]
        print(f"measured {w}x{h}: {m}")
        png = page.call("Page.captureScreenshot", format="png")["data"]
        open(os.path.join(shots, f"{name}-{w}x{h}.png"), "wb").write(base64.b64decode(png))
    page.call("Emulation.clearDeviceMetricsOverride")


def main():
    prof, dl, url, user, password = sys.argv[1:6]
    chrome = start_chromium(prof)
    try:
        page, browser = open_page(prof, url, user, password)
        browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=dl, eventsEnabled=True)
        text = page.call("Runtime.evaluate", expression="document.body.innerText")["result"]["value"]
        print(text)
        shots = os.environ.get("BROWSER_SHOTS")
        if shots:
            measure(page, shots, "page")
        page.s.settimeout(0.5)
        # Connect, then Connect again from the same page: each gives a .vv.
        for k in (1, 2):
            page.send("Runtime.evaluate", expression="document.querySelector('#connect button').click()")
            got = None
            while got is None and time.time() < DEADLINE:
                pump(page, user, password)
                done = [f for f in os.listdir(dl) if not f.endswith(".crdownload") and not f.startswith("seen-")]
                if done:
                    got = done[0]
            if got is None:
                raise RuntimeError(f"no download for Connect {k}")
            print(f"downloaded {got}")
            os.rename(os.path.join(dl, got), os.path.join(dl, f"seen-{k}-{got}"))
        return 0
    except Exception as e:  # one line for the test's log
        print(f"browser.py: {e}", file=sys.stderr)
        return 1
    finally:
        stop_chromium(chrome)


if __name__ == "__main__":
    sys.exit(main())
