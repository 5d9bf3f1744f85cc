"""The live session's views (virtual camera, browser page, progress bar) and a camera off its rate."""
import base64
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sdk.cli import main
from sdk.live import (CaptureConfig, LiveConfig, LiveControls, LiveError, LiveFrame, OutputConfig, TransportConfig,
                      live_camera)
from sdk.live import session as live_session
from sdk.live.capture import DEFAULT_DRIVING, Camera, CaptureStats, run_capture
from sdk.live.queues import DropOldestQueue
from sdk.live.stats import LiveStats
from sdk.live.views import BrowserView, open_views
from sdk.live.views.virtual_camera import VirtualCamera

from conftest import CLIP_FRAMES


def headless(camera, **overrides) -> LiveConfig:
    capture = overrides.pop("capture", CaptureConfig(camera=camera, paced=False))
    return LiveConfig(capture=capture, backend="torch", output=overrides.pop("output", OutputConfig(window=False)),
                      **overrides)


def assert_every_frame_accounted_for(stats) -> None:
    assert stats.frames_captured == (stats.frames_rendered + stats.frames_dropped_total
                                     + stats.frames_before_first_face), stats.to_dict()


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_in_thread(config, model, controls=None):
    """live_camera on a thread; returns (thread, result dict with "stats" or "error")."""
    result = {}

    def target():
        try:
            result["stats"] = live_camera(config, model=model, controls=controls)
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


class MjpegClient:
    """A raw client of /live.mjpg that reads one part at a time."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.sendall(b"GET /live.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        assert b"200" in status, status
        while self.file.readline() not in (b"\r\n", b""):
            pass  # headers

    def next_jpeg(self) -> bytes | None:
        """The next frame's JPEG, or None when the stream ended."""
        line = self.file.readline()
        if not line:
            return None
        assert line.strip() == b"--frame", line
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        data = self.file.read(length)
        self.file.readline()
        return data

    def vanish(self) -> None:
        """Go away without a goodbye: a reset (SO_LINGER 0), as a closed browser tab may."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.file.close()
        self.sock.close()


def synthetic_frame(image_value: int, with_driver: bool = True, index: int = 0) -> LiveFrame:
    avatar = np.full((64, 64, 3), image_value, np.uint8)
    driver = np.full((64, 64, 3), 255 - image_value, np.uint8) if with_driver else None
    return LiveFrame(image=avatar, avatar=avatar, driver=driver, avatar_name="a", index=index, sequence=index,
                     no_face=False, latency_ms=1.0)


# -- a camera faster or slower than it says ------------------------------------------------------

class FakeDevice:
    """A camera that says `says_fps` and delivers `real_fps` (sleeping between frames)."""

    kind = "device"
    name = "fake camera"

    def __init__(self, frames, says_fps: float, real_fps: float, count: int):
        self.frames, self.fps, self.real_period, self.count = frames, says_fps, 1.0 / real_fps, count
        self.frames_read = 0
        self._next = None

    def read(self):
        if self.frames_read >= self.count:
            return None
        now = time.monotonic()
        self._next = now if self._next is None else self._next + self.real_period
        if self._next > now:
            time.sleep(self._next - now)
        self.frames_read += 1
        return self.frames[self.frames_read % len(self.frames)]

    def close(self):
        pass


@pytest.mark.parametrize("real_fps", [100.0, 10.0])
def test_camera_off_its_rate_is_held_to_it_by_timestamps(real_fps):
    frame = np.zeros((8, 8, 3), np.uint8)
    camera = FakeDevice([frame], says_fps=25.0, real_fps=real_fps, count=40 if real_fps > 25 else 5)
    out, stats = DropOldestQueue(64, "capture"), CaptureStats()
    run_capture(camera, CaptureConfig(camera=0), out, threading.Event(), stats)
    kept = [out.get(0) for _ in range(len(out))]
    assert stats.frames == len(kept) and stats.frames + stats.skipped == camera.frames_read  # none lost uncounted
    intervals = np.diff([frame.captured_at for frame in kept])
    if real_fps > 25:  # surplus skipped: ~25 of every 100 kept, on the 40 ms grid
        assert 5 <= stats.frames <= 14 and stats.skipped >= 2 * stats.frames
        assert intervals.min() > 0.018 and 0.032 < intervals.mean() < 0.06
    else:  # slower than it says: every frame taken as it comes, at its own pace
        assert stats.skipped == 0 and stats.frames == 5 and intervals.mean() > 0.08


def test_session_with_a_too_fast_camera_counts_the_surplus(monkeypatch, driving_frames, tiny_model):
    camera = FakeDevice(driving_frames, says_fps=25.0, real_fps=75.0, count=30)
    monkeypatch.setattr(live_session, "Camera", lambda source: camera)
    stats = live_camera(headless(0, capture=CaptureConfig(camera=0), queue_capacity=16), model=tiny_model)
    assert stats.frames_captured == 30 and 5 <= stats.frames_dropped["capture"] <= 25
    assert stats.capture_fps < 35  # held to ~25, not the camera's 75
    assert_every_frame_accounted_for(stats)


# -- virtual camera ------------------------------------------------------------------------------

def _virtual_camera_present() -> bool:
    try:
        VirtualCamera("auto", 64, 64, 25.0).close()
    except LiveError:
        return False
    return True


def test_no_virtual_camera_is_one_error_line_before_the_model_loads(tmp_path, clip, capsys):
    pytest.importorskip("pyvirtualcam", reason="the virtualcam extra is not installed")
    if _virtual_camera_present():
        pytest.skip("this machine has a virtual camera device: the error path cannot be seen here")
    missing_model = str(tmp_path / "no-model")  # never reached: the device is looked for first
    assert main(["live", "--camera", str(clip), "--headless", "--model", missing_model, "--virtual-camera"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --virtual-camera: found no virtual camera device (") and "modprobe" in error, error
    assert main(["live", "--camera", str(clip), "--headless", "--model", missing_model,
                 "--virtual-camera", "/dev/video99"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --virtual-camera: virtual camera '/dev/video99' is not available ("), error
    assert main(["live", "--camera", str(clip), "--headless", "--virtual-camera-size", "63x48"]) == 2
    assert "even and >= 16" in capsys.readouterr().err


def test_virtual_camera_without_pyvirtualcam_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails
    with pytest.raises(LiveError, match=r"pip install 'talking-head-sdk\[virtualcam\]'"):
        VirtualCamera("auto", 64, 64, 25.0)


class RecordingBackend:
    """Stands in for the device only (pyvirtualcam's backend interface): pyvirtualcam's own front
    end (shape and dtype checks, flattening) and ours (fitting, format) run as they are."""

    opened: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc, self.name = width, height, fps, fourcc, device or "/dev/fake"
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingBackend.opened.append(self)

    def send(self, frame):
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True

    def device(self):
        return self.name

    def native_fourcc(self):
        return None


def test_virtual_camera_gets_every_avatar_fitted_at_the_stream_rate(monkeypatch, clip, tiny_model):
    pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="the virtualcam extra is not installed")
    from pyvirtualcam.util import encode_fourcc

    monkeypatch.setattr(RecordingBackend, "opened", [])
    # Only ours: a real device on this machine must not get test frames.
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {"recording": RecordingBackend})
    avatars = []
    output = OutputConfig(window=False, virtual_camera="auto", virtual_camera_size=(320, 240))
    config = headless(clip, capture=CaptureConfig(camera=clip, fps=50.0), output=output)
    stats = live_camera(config, model=tiny_model, on_frame=lambda frame: avatars.append(frame.avatar))
    (device,) = RecordingBackend.opened
    assert (device.width, device.height, device.fps) == (320, 240, 50.0) and device.closed
    assert device.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.RGB.value)
    assert len(device.frames) == stats.frames_rendered == len(avatars) > 0
    sent = device.frames[-1].reshape(240, 320, 3)
    assert not sent[:, :40].any() and not sent[:, -40:].any()  # the square avatar centred, black beside it
    expected = cv2.resize(avatars[-1], (240, 240), interpolation=cv2.INTER_LINEAR)
    assert np.abs(sent[:, 40:280].astype(int) - expected).mean() < 2


# -- browser view --------------------------------------------------------------------------------

def test_browser_view_serves_several_clients_and_survives_one_that_vanishes():
    view = BrowserView(("127.0.0.1", 0), has_input=True)
    base = view.url
    try:
        assert http_get(base + "live.jpg")[0] == 503 and http_get(base + "stats.json")[0] == 503  # nothing yet
        status, page = http_get(base)
        assert status == 200 and b"/live.mjpg" in page and b"input | avatar" in page
        assert http_get(base + "nope")[0] == 404
        clients = [MjpegClient(view.address) for _ in range(3)]
        view.show(synthetic_frame(10))
        first = [client.next_jpeg() for client in clients]
        image = cv2.imdecode(np.frombuffer(first[0], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (64, 128, 3)  # input | avatar
        assert abs(int(image[:, :64].mean()) - 245) < 4 and abs(int(image[:, 64:].mean()) - 10) < 4
        clients[0].vanish()
        for value in (60, 120, 180):
            view.show(synthetic_frame(value))
            time.sleep(0.05)
        for client in clients[1:]:
            data = client.next_jpeg()
            while data is not None and abs(cv2.imdecode(np.frombuffer(data, np.uint8), 0)[:, 64:].mean() - 180) > 4:
                data = client.next_jpeg()  # a client may skip frames, and gets the newest
            assert data is not None
        view.update_stats(LiveStats(fps=24.5, kbps=3.25, frames_rendered=4))
        status, body = http_get(base + "stats.json")
        assert status == 200 and json.loads(body)["fps"] == 24.5 and json.loads(body)["frames_dropped_total"] == 0
    finally:
        view.close()
    assert all(client.next_jpeg() is None for client in clients[1:])  # closing ends the streams
    assert http_get(base)[0] == 0  # and the server


def test_browser_view_of_a_receiver_half_shows_the_avatar_alone():
    view = BrowserView(("127.0.0.1", 0), has_input=False)
    try:
        assert b"the input is in the sender's process" in http_get(view.url)[1]
        view.show(synthetic_frame(50, with_driver=False))
        status, data = http_get(view.url + "live.jpg")
        assert status == 200 and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)
    finally:
        view.close()


def test_taken_or_unavailable_address_is_one_error_line(tmp_path, clip, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LiveError, match="the port is taken"):
            BrowserView(("127.0.0.1", port), has_input=True)
        missing_model = str(tmp_path / "no-model")  # never reached: the port is bound first
        assert main(["live", "--camera", str(clip), "--headless", "--model", missing_model,
                     "--serve", f"127.0.0.1:{port}"]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error == f"error: cannot serve the browser view on 127.0.0.1:{port}: the port is taken " \
                        "(by another program or session): pick another port"
    with pytest.raises(LiveError, match="this machine has no such address"):
        BrowserView(("192.0.2.1", free_tcp_port()), has_input=True)  # TEST-NET-1: never this machine's
    with pytest.raises(LiveError, match="no such address"):
        BrowserView(("no-such-host.invalid", 8000), has_input=True)
    with pytest.raises(SystemExit):
        main(["live", "--serve", "localhost:99999"])  # argparse's usage error
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_session_goes_on_when_a_page_client_vanishes(clip, tiny_model):
    port = free_tcp_port()
    output = OutputConfig(window=False, serve=("127.0.0.1", port))
    config = headless(clip, capture=CaptureConfig(camera=clip, fps=6.0), output=output)  # 10 frames: ~1.7 s
    thread, result = run_in_thread(config, tiny_model)
    base = f"http://127.0.0.1:{port}/"
    wait_for(lambda: http_get(base + "live.jpg")[0] == 200 or "error" in result, 60, "the first frame")
    assert "error" not in result, result
    leaving, staying = MjpegClient(("127.0.0.1", port)), MjpegClient(("127.0.0.1", port))
    assert leaving.next_jpeg() and staying.next_jpeg()
    leaving.vanish()
    assert staying.next_jpeg()  # the others and the session go on
    thread.join(60)
    assert not thread.is_alive() and "error" not in result, result
    stats = result["stats"]
    assert stats.stop_reason == "end of video" and stats.frames_captured == CLIP_FRAMES
    assert_every_frame_accounted_for(stats)
    while staying.next_jpeg() is not None:
        pass  # the stream ends with the session


class HeadlessChromium:
    """Debian's chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    NUL-terminated JSON on file descriptors 3 and 4), so no websocket client is needed."""

    def __init__(self, binary: str, profile):
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        to_chrome, from_chrome = (self._above_4(fd) for fd in (to_chrome, from_chrome))
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--hide-scrollbars",
                "--no-first-run", f"--user-data-dir={profile}", "--window-size=900,700", "about:blank"]
        # bash (dash takes one-digit descriptors only) puts our pipe ends on 3 and 4, where chromium looks
        script = f'exec "$0" "$@" 3<&{to_chrome} 4>&{from_chrome} {to_chrome}<&- {from_chrome}>&-'
        self.process = subprocess.Popen(["bash", "-c", script, binary, *args], pass_fds=(to_chrome, from_chrome),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._id = 0
        self.session = None

    @staticmethod
    def _above_4(fd: int) -> int:
        """The same pipe end on a number above 4, so that putting it on 3 and 4 clobbers nothing."""
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return high

    def call(self, method: str, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium went away")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def evaluate(self, expression: str):
        """The expression's value, or None while the new page has no execution context yet (it is
        still being created right after `open`; callers poll with `wait_for`)."""
        try:
            return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")
        except RuntimeError as exc:
            if "Cannot find default execution context" in str(exc):
                return None
            raise

    def screenshot(self) -> np.ndarray:
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_page_in_headless_chromium_shows_frames_that_change(tmp_path, tiny_model):
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    browser = HeadlessChromium(binary, tmp_path / "profile")
    # chromium answers before the session starts: on a loaded 2-core CI machine its start-up took
    # longer than a 12 s clip lasted, and the page then opened on a session that had ended
    browser.call("Browser.getVersion")
    port = free_tcp_port()
    controls = LiveControls()
    output = OutputConfig(window=False, serve=("127.0.0.1", port))
    # the bundled clip at 5 fps lasts 24 s: the test quits it once the screenshots are taken
    config = headless(DEFAULT_DRIVING, capture=CaptureConfig(camera=DEFAULT_DRIVING, fps=5.0), output=output)
    thread, result = run_in_thread(config, tiny_model, controls)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/live.jpg")[0] == 200 or "error" in result, 60,
                 "the first frame")
        assert "error" not in result, result
        browser.open(f"http://127.0.0.1:{port}/")

        def frame_and_stats_shown():
            assert thread.is_alive(), f"the session ended before the page showed a frame: {result}"
            return browser.evaluate(
                "(() => { const img = document.getElementById('live'), rows = document.querySelectorAll('#stats tr');"
                " if (!img.naturalWidth || !rows.length) return null; const r = img.getBoundingClientRect();"
                " return [r.left, r.top, r.width, r.height, img.naturalWidth, img.naturalHeight]; })()")

        box = wait_for(frame_and_stats_shown, 30, "a frame and the stats on the page")
        left, top, width, height, natural_width, natural_height = (round(value) for value in box)
        assert natural_width == 2 * natural_height  # input | avatar
        stats_text = browser.evaluate("document.getElementById('stats').innerText")
        assert "fps" in stats_text and "kbit/s" in stats_text and "latency" in stats_text
        shots = [browser.screenshot()[top:top + height, left:left + width].astype(int)]
        time.sleep(1.0)
        shots.append(browser.screenshot()[top:top + height, left:left + width].astype(int))
    finally:
        controls.quit()
        browser.close()
        thread.join(60)
    assert "error" not in result, result
    for shot in shots:
        avatar = shot[:, width // 2:]
        assert avatar.std() > 10 and shot[:, : width // 2].std() > 10  # pictures, not an empty panel
    change = np.abs(shots[1] - shots[0]).mean(axis=(0, 2))
    assert change[: width // 2].mean() > 2 and change[width // 2:].mean() > 0.5  # new frames arrived in that second
    assert result["stats"].frames_rendered > 5


# -- progress bar --------------------------------------------------------------------------------

def test_progress_bar_for_headless_runs_on_files(monkeypatch, clip, tiny_model, capsys):
    camera = Camera(clip)
    try:
        def views_of(**output):
            return open_views(headless(clip, output=OutputConfig(**output)), camera, LiveStats)

        assert views_of(window=False).progress is None  # stderr is not a terminal here
        monkeypatch.setattr("sys.stderr", SimpleNamespace(isatty=lambda: True, write=lambda text: None,
                                                         flush=lambda: None))
        assert views_of(window=False).progress is not None
        assert views_of(window=True).progress is None
        assert views_of(window=True, progress=True).progress.total == CLIP_FRAMES
        assert views_of(window=False, progress=False).progress is None
    finally:
        camera.close()
    monkeypatch.undo()
    config = headless(clip, capture=CaptureConfig(camera=clip, max_frames=6),
                      output=OutputConfig(window=False, progress=True))
    live_camera(config, model=tiny_model)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert bar.startswith("live: 100%") and "6/6" in bar and "fps=" in bar and "kbit/s=" in bar, bar


def test_views_on_a_sender_half_are_refused():
    config = LiveConfig(transport=TransportConfig(kind="udp", connect=("127.0.0.1", 9)),
                        output=OutputConfig(window=False, serve=("127.0.0.1", 0)))
    with pytest.raises(LiveError, match="a sender half .* renders no frames"):
        open_views(config, None, LiveStats)
