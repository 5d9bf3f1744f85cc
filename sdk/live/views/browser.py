"""A local browser view of a live session: the input and the avatar side by side, with live stats.

One small HTTP server (stdlib, one thread per connection) serves:

    /             the page
    /live.mjpg    input | avatar as an MJPEG stream (multipart/x-mixed-replace, one JPEG per
                  frame); the avatar alone on a receiver half, which has no input
    /live.jpg     the newest of those frames, once
    /stats.json   the session's newest stats (`LiveStats.to_dict()`), which the page polls

One held connection per page (the stream), so a browser's six connections per host leave room
for several tabs. The session only hands over its newest frame (`show`, a reference): the client
threads compose and encode it (once per frame, shared by all clients) and write at their own
speed, so a slow client skips to the newest frame without holding the session up, and a client
that goes away ends only its own thread.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from ..errors import LiveError
from ..outputs import LiveFrame, compose
from ..queues import POLL_S
from ..stats import LiveStats

log = logging.getLogger(__name__)

# The page shows the user's camera and face with no authentication: reachable from this machine
# only unless the user names another address on purpose.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
JPEG_QUALITY = 85
CLIENT_TIMEOUT_S = 10.0  # a client that takes no data for this long is dropped
BOUNDARY = "frame"
STATS_POLL_MS = 500

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sdk live</title>
<style>
 body { background: #111; color: #ddd; font: 14px system-ui, sans-serif; margin: 16px; }
 figure { margin: 0; } figcaption { margin-bottom: 4px; color: #999; }
 img { height: 384px; min-width: 384px; background: #000; display: block; }
 table { border-collapse: collapse; margin-top: 12px; } td { padding: 2px 12px 2px 0; }
 td:first-child { color: #999; } #state { margin-top: 8px; color: #c96; }
</style></head><body>
<figure><figcaption>__CAPTION__</figcaption><img id="live" src="/live.mjpg" alt="live"></figure>
<table id="stats"></table><div id="state">waiting for stats</div>
<script>
const rows = [
 ["fps", s => s.fps.toFixed(1)], ["code stream", s => s.kbps.toFixed(2) + " kbit/s"],
 ["latency p50 / p95", s => s.latency_ms_p50 === null ? "-" :
   s.latency_ms_p50.toFixed(0) + " / " + s.latency_ms_p95.toFixed(0) + " ms"],
 ["frames captured / rendered", s => s.frames_captured + " / " + s.frames_rendered],
 ["dropped", s => s.frames_dropped_total + (s.frames_dropped_total ? " (" + Object.entries(s.frames_dropped)
   .filter(([, n]) => n > 0).map(([k, n]) => k + " " + n).join(", ") + ")" : "")],
 ["frames without a face", s => s.no_face_frames], ["backend / model", s => s.backend + " / " + s.model],
 ["avatar", s => s.avatar], ["seconds", s => s.seconds.toFixed(1)],
];
const table = document.getElementById("stats"), state = document.getElementById("state");
async function poll() {
 try {
  const answer = await fetch("/stats.json", {cache: "no-store"});
  if (answer.status === 200) {
   const s = await answer.json();
   table.innerHTML = rows.map(([name, f]) => "<tr><td>" + name + "</td><td>" + f(s) + "</td></tr>").join("");
   state.textContent = "";
  }
  setTimeout(poll, __POLL_MS__);
 } catch (e) { state.textContent = "session ended"; }
}
poll();
</script></body></html>
"""
CAPTION_WITH_INPUT = "input | avatar"
CAPTION_AVATAR_ONLY = "avatar (the input is in the sender's process)"


class _Latest:
    """The newest frame and stats, with versions the client threads wait on."""

    def __init__(self, has_input: bool) -> None:
        self.has_input = has_input
        self.changed = threading.Condition()
        self.version = 0  # of the frame; 0: none yet
        self.closed = False
        self.avatar: np.ndarray | None = None
        self.driver: np.ndarray | None = None
        self.stats_json = b""
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._encode_lock = threading.Lock()

    def jpeg(self) -> tuple[int, bytes] | None:
        """The newest frame (input | avatar) as JPEG and its version; encoded once for all clients."""
        with self._encode_lock:
            with self.changed:
                version, avatar, driver = self.version, self.avatar, self.driver
            if avatar is None:
                return None
            if self._jpeg[0] != version:
                image = compose(avatar, driver, self.has_input)
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise LiveError("cannot encode a frame as JPEG for the browser view")
                self._jpeg = (version, data.tobytes())
            return self._jpeg

    def wait_newer(self, seen: int) -> bool:
        """Block until a frame newer than version `seen` is there (True) or the view closed (False)."""
        with self.changed:
            while self.version <= seen and not self.closed:
                self.changed.wait(POLL_S)  # and looks whether the view closed
            return not self.closed


class _Handler(BaseHTTPRequestHandler):
    latest: _Latest  # set on the per-view subclass
    page: bytes
    protocol_version = "HTTP/1.1"  # keep-alive: the page's stats polls reuse one connection
    timeout = CLIENT_TIMEOUT_S

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                self._send_body(self.page, "text/html; charset=utf-8")
            elif path == "/live.mjpg":
                self._stream_frames()
            elif path == "/live.jpg":
                frame = self.latest.jpeg()
                if frame is None:
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
                else:
                    self._send_body(frame[1], "image/jpeg")
            elif path == "/stats.json":
                stats = self.latest.stats_json
                if not stats:
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no stats yet")
                else:
                    self._send_body(stats, "application/json")
            else:
                self.send_error(HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("browser client %s went away", self.client_address[0])
            self.close_connection = True

    def _send_body(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream_frames(self) -> None:
        self.close_connection = True  # the response lasts until the session ends or the client leaves
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seen = 0
        while self.latest.wait_newer(seen):
            frame = self.latest.jpeg()
            if frame is None:
                continue
            seen, data = frame
            self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                             .encode() + data + b"\r\n")
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        log.debug("browser view: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # client threads end with the view (they look at `closed`), never block exit


class _Server6(_Server):
    address_family = socket.AF_INET6


def _bind(host: str, port: int, handler: type[_Handler]) -> _Server:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise LiveError(f"cannot serve the browser view on {host}:{port}: no such address ({exc.strerror})") from None
    try:
        return (_Server6 if family == socket.AF_INET6 else _Server)((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is taken (by another program or session): pick another port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "this machine has no such address (use 127.0.0.1)"
        elif exc.errno == errno.EACCES:
            reason = "not permitted (ports below 1024 need privileges)"
        else:
            reason = exc.strerror or str(exc)
        raise LiveError(f"cannot serve the browser view on {host}:{port}: {reason}") from None


class BrowserView:
    """Serves the page on `address` from construction until `close()`; `show` and `update_stats`
    hand it the session's newest frame and stats. Raises LiveError when the address cannot be bound.

    has_input: this process captures the input (not a receiver half), so the page shows it.
    """

    def __init__(self, address: tuple[str, int], has_input: bool):
        host, port = address
        self._latest = _Latest(has_input)
        page = (PAGE.replace("__CAPTION__", CAPTION_WITH_INPUT if has_input else CAPTION_AVATAR_ONLY)
                .replace("__POLL_MS__", str(STATS_POLL_MS)).encode())
        handler = type("BrowserViewHandler", (_Handler,), {"latest": self._latest, "page": page})
        self._server = _bind(host, port, handler)
        self.address: tuple[str, int] = self._server.server_address[:2]
        if not ipaddress.ip_address(self.address[0]).is_loopback:
            log.warning("the browser view shows your camera to anyone who can reach %s:%d (no password)",
                        *self.address)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_S},
                                        name="live-browser-view", daemon=True)
        self._thread.start()
        log.info("browser view: %s", self.url)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def show(self, frame: LiveFrame) -> None:
        with self._latest.changed:
            self._latest.avatar, self._latest.driver = frame.avatar, frame.driver
            self._latest.version += 1
            self._latest.changed.notify_all()

    def update_stats(self, stats: LiveStats) -> None:
        self._latest.stats_json = json.dumps(stats.to_dict()).encode()  # one reference swap: no lock

    def close(self) -> None:
        with self._latest.changed:
            self._latest.closed = True  # streaming threads finish their current write and end
            self._latest.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
