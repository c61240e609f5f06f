#!/usr/bin/env python3
# browser_console.py - the desktop in a browser tab, as a user meets it:
# headless chromium signs in to vm-connect's page, clicks "Open in browser",
# and noVNC (through the web server and vm-console) shows the desktop.
#
# Usage: browser_console.py PROFILE_DIR URL USER PASSWORD SHOTS_DIR [-- SCREENSHOT_COMMAND...]
# SCREENSHOT_COMMAND writes a PNG or PPM of the same desktop to the path given
# as its last argument (virsh screenshot --file): the canvas must show what it shows.
# Prints: "first-frame-ms N" (the click to the first non-black frame),
# "measured WxH: ..." for the console page at a desktop's and a phone's size,
# "compare WxH same=F" (the share of pixels alike), then "closed" once the tab
# has left the console.  Exit 0, or 1 with one line saying what failed.
import base64, os, socket, struct, subprocess, sys, time, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

CANVAS = """(() => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width) return '';
  const x = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const b = new Uint8Array(c.width * c.height * 3);
  for (let i = 0, j = 0; i < x.length; i += 4) { b[j++] = x[i]; b[j++] = x[i + 1]; b[j++] = x[i + 2]; }
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
  return c.width + 'x' + c.height + ':' + btoa(s);
})()"""


FIRST_FRAME = """(() => {
  const t = setInterval(() => {
    const c = document.querySelector('#screen canvas');
    if (!c || !c.width) return;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 97)
      if (d[i] | d[i + 1] | d[i + 2]) { window.vdiFirstFrame = Date.now(); clearInterval(t); return; }
  }, 10);
})()"""


def canvas(page):
    v = page.call("Runtime.evaluate", expression=CANVAS)["result"].get("value", "")
    if not v:
        return None
    dims, data = v.split(":", 1)
    w, h = map(int, dims.split("x"))
    return w, h, base64.b64decode(data)


def png(data):
    """An 8-bit RGB or RGBA PNG (what QEMU's screendump writes) as width, height, RGB bytes."""
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, out, prev, stride = zlib.decompress(idat), bytearray(), bytearray(w * bpp), w * bpp
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3)
        prev = line
    return w, h, bytes(out)


def image(path):
    """A screenshot as width, height, RGB bytes: PNG or PPM (P6), as the host's QEMU writes it."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return png(data)
    parts, pos = [], 0
    while len(parts) < 4:  # P6 WIDTH HEIGHT MAXVAL, with whitespace and comments
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    assert parts[0] == b"P6" and parts[3] == b"255", parts
    return int(parts[1]), int(parts[2]), data[pos + 1:]


def alike(a, b):
    n = len(a) // 3
    same = sum(1 for i in range(0, len(a), 3)
               if abs(a[i] - b[i]) < 16 and abs(a[i + 1] - b[i + 1]) < 16 and abs(a[i + 2] - b[i + 2]) < 16)
    return same / n


def main():
    prof, url, user, password, shots = sys.argv[1:6]
    shot_cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else None
    chrome = browser.start_chromium(prof)
    try:
        page, _ = browser.open_page(prof, url, user, password)
        # Timed in the page itself: the click's time rides in window.name (it survives the navigation),
        # and the console page notes when its canvas first shows something, looked at every 10 ms.
        page.call("Page.addScriptToEvaluateOnNewDocument", source=FIRST_FRAME)
        # Signed in: the credentials are cached for the site, so requests need no hand from here on
        # (each one paused for us would be counted in the time).
        page.call("Fetch.disable")
        page.s.settimeout(0.2)
        page.send("Runtime.evaluate",
                  expression="window.name = String(Date.now()); document.querySelector('#browser button').click()")
        first = None
        while time.time() < browser.DEADLINE:
            browser.pump(page, user, password)
            try:
                v = page.call("Runtime.evaluate", expression="window.vdiFirstFrame ? "
                              "window.vdiFirstFrame - Number(window.name) : 0")["result"].get("value")

            except (RuntimeError, socket.timeout):
                v = 0  # the page is changing to the console page
            if v:
                first = v / 1000
                break
            time.sleep(0.1)
        if first is None:
            state = page.call("Runtime.evaluate", expression="document.body.innerText")["result"].get("value")
            raise RuntimeError(f"no frame in the console; the page says: {state!r}")
        print(f"first-frame-ms {int(first * 1000)}")
        state = page.call("Runtime.evaluate", expression="window.vdiConsole.state")["result"]["value"]
        print(f"state {state}")
        browser.measure(page, shots, "console")
        best = 0.0
        for _ in range(10 if shot_cmd else 0):
            w, h, px = canvas(page)
            out = os.path.join(shots, "virsh.img")
            subprocess.run(shot_cmd + [out], check=True, stdout=subprocess.DEVNULL)
            vw, vh, vpx = image(out)
            if (w, h) != (vw, vh):
                raise RuntimeError(f"canvas {w}x{h}, screen {vw}x{vh}")
            best = max(best, alike(px, vpx))
            if best >= 0.97:
                break
            time.sleep(0.5)
        if shot_cmd:
            print(f"compare {w}x{h} same={best:.3f}")
        png = page.call("Page.captureScreenshot", format="png")["data"]
        open(os.path.join(shots, "console-tab.png"), "wb").write(base64.b64decode(png))
        page.call("Page.navigate", url="about:blank")
        print("closed")
        return 0
    except Exception as e:  # one line for the test's log
        print(f"browser_console.py: {e}", file=sys.stderr)
        return 1
    finally:
        browser.stop_chromium(chrome)


if __name__ == "__main__":
    sys.exit(main())
