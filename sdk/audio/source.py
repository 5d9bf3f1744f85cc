"""Where audio comes from: a file (WAV, MP3, FLAC, ... via PyAV), the same file paced in real time as
a "microphone", or a real microphone through PortAudio (`sounddevice`, the optional `audio` extra).

Everything leaves here as 16 kHz mono float32 in [-1, 1] (`sdk.media`'s convention). Other rates
are resampled and stereo is mixed down (PyAV's resampler, stateful, so blocks join without
clicks), noted once per source with a log warning. Clipped input (many samples at full scale)
is noted once too; it is still used.

    load_audio(path)                 -> AudioClip (all samples, what was converted)
    open_audio_source("FILE.wav")    -> PacedAudioFile (real-time pacing; paced=False: as fast as read)
    open_audio_source("0" | "name")  -> Microphone (a PortAudio input device)
    source.read(block)               -> (block,) float32, or None at the end

A source counts what went wrong instead of dropping it silently: `stats.overruns` (the device
delivered blocks faster than they were read and PortAudio dropped input), `stats.underruns`
(reads that waited past the real-time deadline).
"""
from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MediaReadError, SdkError
from ..media import AUDIO_SAMPLE_RATE, _av

log = logging.getLogger(__name__)

CLIPPING_LEVEL = 0.999  # |sample| at or above this counts as clipped
CLIPPING_SHARE = 0.001  # warn when more than this share of samples is clipped
DEVICE_TIMEOUT_S = 2.0  # a device that delivers nothing for this long has stopped
MEDIA_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus", ".mp4", ".mov", ".mkv", ".webm")


class AudioDeviceError(SdkError):
    """No usable input device, PortAudio missing, or a device that stopped delivering audio."""


@dataclass(frozen=True)
class AudioClip:
    """samples (N,) float32 16 kHz mono; source: the file; rate / channels: what the file had."""

    samples: np.ndarray
    source: str
    rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / AUDIO_SAMPLE_RATE


def note_conversion(source: str, rate: int, channels: int) -> None:
    """The one warning for input that is not 16 kHz mono (once per source, by the caller)."""
    changes = []
    if channels != 1:
        changes.append(f"{channels} channels mixed to mono")
    if rate != AUDIO_SAMPLE_RATE:
        changes.append(f"{rate} Hz resampled to {AUDIO_SAMPLE_RATE} Hz")
    if changes:
        log.warning("%s: %s", source, ", ".join(changes))


def note_clipping(source: str, samples: np.ndarray) -> bool:
    """Warn once if more than CLIPPING_SHARE of `samples` sit at full scale; returns whether."""
    if not len(samples):
        return False
    share = float(np.mean(np.abs(samples) >= CLIPPING_LEVEL))
    if share > CLIPPING_SHARE:
        log.warning("%s: %.1f %% of the samples are clipped (at full scale); the mouth may follow the "
                    "distortion", source, 100 * share)
        return True
    return False


def probe_audio(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of a file's first audio stream; MediaReadError naming the file if
    it is missing, not media, corrupt or has no audio."""
    av = _av()
    if not path.is_file():
        raise MediaReadError(f"{path}: no such audio file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaReadError(f"{path}: has no audio stream")
            context = container.streams.audio[0].codec_context
            return int(context.sample_rate or 0), int(context.channels or 1)
    except av.FFmpegError as exc:
        raise MediaReadError(f"{path}: not a readable audio file ({exc})") from exc


def load_audio(path: str | Path) -> AudioClip:
    """A whole audio (or video) file as 16 kHz mono; conversion and clipping noted once.

    A file that decodes to no samples is a MediaReadError (nothing to drive an avatar with).
    """
    from ..media import read_audio

    path = Path(path)
    rate, channels = probe_audio(path)
    samples = read_audio(path)
    if not len(samples):
        raise MediaReadError(f"{path}: the audio stream decodes to no samples")
    note_conversion(str(path), rate, channels)
    note_clipping(str(path), samples)
    return AudioClip(samples, str(path), rate, channels)


class StreamResampler:
    """Blocks of any rate and channel count -> 16 kHz mono float32, with state across blocks."""

    def __init__(self, rate: int, channels: int):
        av = _av()
        self.rate, self.channels = rate, channels
        self.identity = rate == AUDIO_SAMPLE_RATE and channels == 1
        self._resampler = None if self.identity else av.AudioResampler(format="flt", layout="mono",
                                                                         rate=AUDIO_SAMPLE_RATE)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """block (n, channels) or (n,) float32 -> (m,) float32."""
        block = np.asarray(block, dtype=np.float32)
        if self.identity:
            return block.reshape(-1)
        av = _av()
        frames = block.reshape(len(block), self.channels)
        layout = "mono" if self.channels == 1 else "stereo" if self.channels == 2 else f"{self.channels}c"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.reshape(1, -1)), format="flt", layout=layout)
        frame.sample_rate = self.rate
        out = [chunk.to_ndarray().reshape(-1) for chunk in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


@dataclass
class SourceStats:
    """samples delivered; overruns: device blocks PortAudio reported as lost (input overflow);
    underruns: reads that returned later than real time allows by more than one block;
    invalid_samples: NaN or infinite samples from a device, replaced by silence;
    end: why the source stopped ("end of file", "stopped", "device stopped")."""

    samples: int = 0
    overruns: int = 0
    underruns: int = 0
    invalid_samples: int = 0
    end: str = ""


class PacedAudioFile:
    """An audio file behaving as a microphone: `read(block)` returns the next `block` samples no
    sooner than they would have been spoken (paced=False: at once). The last block is padded
    with silence; then None."""

    kind = "file"

    def __init__(self, path: str | Path, paced: bool = True):
        self.clip = load_audio(path)
        self.name = self.clip.source
        self.paced = paced
        self.stats = SourceStats()
        self._started: float | None = None

    def read(self, block: int) -> np.ndarray | None:
        start = self.stats.samples
        if start >= len(self.clip.samples):
            self.stats.end = self.stats.end or "end of file"
            return None
        chunk = self.clip.samples[start:start + block]
        if len(chunk) < block:
            chunk = np.pad(chunk, (0, block - len(chunk)))
        if self.paced:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            due = self._started + (start + block) / AUDIO_SAMPLE_RATE
            if due > now:
                time.sleep(due - now)
            elif now - due > block / AUDIO_SAMPLE_RATE:
                self.stats.underruns += 1
                self._started = now - (start + block) / AUDIO_SAMPLE_RATE  # keep the pace from here, no burst
        self.stats.samples += block
        return chunk

    def start_fresh(self) -> None:
        """Nothing to discard: pacing starts at the first read."""

    def close(self) -> None:
        self.stats.end = self.stats.end or "stopped"


def _sounddevice():
    """The `sounddevice` module, or an AudioDeviceError saying how to get it."""
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioDeviceError("microphone input needs the `sounddevice` package: pip install "
                               "'talking-head-sdk[audio]'") from exc
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise AudioDeviceError(f"microphone input needs the PortAudio library ({exc}); on Debian/Ubuntu: "
                               "apt-get install libportaudio2") from exc
    return sounddevice


def list_input_devices() -> list[dict]:
    """The PortAudio input devices: index, name, input channels, default sample rate."""
    sd = _sounddevice()
    return [{"index": index, "name": device["name"], "channels": int(device["max_input_channels"]),
             "rate": float(device["default_samplerate"])}
            for index, device in enumerate(sd.query_devices()) if device["max_input_channels"] > 0]


def _describe(devices: list[dict]) -> str:
    if not devices:
        return "no input devices at all"
    return "input devices: " + "; ".join(f"{d['index']}: {d['name']} ({d['channels']} ch, {d['rate']:.0f} Hz)"
                                         for d in devices)


def resolve_input_device(device: int | str | None) -> dict:
    """The input device meant by an index, a (part of a) name, or None (the default input)."""
    sd = _sounddevice()
    devices = list_input_devices()
    if not devices:
        raise AudioDeviceError(f"no audio input device found ({_describe(devices)}); plug in a microphone, "
                               "or pass an audio file to use as one")
    if device is None:  # PortAudio's default input, or the first input device when it has none
        return next((d for d in devices if d["index"] == sd.default.device[0]), devices[0])
    if isinstance(device, int) or str(device).isdigit():
        chosen = [d for d in devices if d["index"] == int(device)]
    else:
        chosen = [d for d in devices if str(device).lower() in d["name"].lower()]
    if not chosen:
        raise AudioDeviceError(f"no audio input device {device!r}; {_describe(devices)}")
    return chosen[0]


class Microphone:
    """A PortAudio input stream at the device's own rate and channels, delivered as 16 kHz mono.

    PortAudio calls back on its own thread with blocks; they queue here (bounded: a reader that
    falls behind loses the oldest, counted as overruns) and `read(block)` returns exactly
    `block` samples. A device that delivers nothing for DEVICE_TIMEOUT_S has stopped: `read`
    returns None with `stats.end` = "device stopped".
    """

    kind = "device"

    def __init__(self, device: int | str | None = None, block_ms: float = 20.0, max_queue_s: float = 2.0):
        sd = _sounddevice()
        info = resolve_input_device(device)
        self.name = info["name"]
        self.rate = int(round(info["rate"]))
        self.channels = min(info["channels"], 2)
        note_conversion(f"microphone {self.name!r}", self.rate, self.channels)
        self.stats = SourceStats()
        self._resample = StreamResampler(self.rate, self.channels)
        self._blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(1, int(max_queue_s * 1000 / block_ms)))
        self._pending = np.zeros(0, np.float32)
        self._clipping_noted = False
        try:
            self._stream = sd.InputStream(device=info["index"], channels=self.channels, samplerate=self.rate,
                                          dtype="float32", blocksize=int(self.rate * block_ms / 1000),
                                          callback=self._callback)
            self._stream.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"microphone {self.name!r}: cannot open it ({exc}); "
                                   f"{_describe(list_input_devices())}") from exc

    def _callback(self, data: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self.stats.overruns += 1
        try:
            self._blocks.put_nowait(data.copy())
        except queue.Full:
            self.stats.overruns += 1
            try:
                self._blocks.get_nowait()
                self._blocks.put_nowait(data.copy())
            except (queue.Empty, queue.Full):
                pass

    def start_fresh(self) -> None:
        """Discard what the device delivered so far (e.g. while models loaded): a session starts
        from now, not seconds behind; what the full queue lost meanwhile is not an overrun."""
        while True:
            try:
                self._blocks.get_nowait()
            except queue.Empty:
                break
        self._pending = np.zeros(0, np.float32)
        self.stats.overruns = 0

    def read(self, block: int) -> np.ndarray | None:
        while len(self._pending) < block:
            try:
                raw = self._blocks.get(timeout=DEVICE_TIMEOUT_S)
            except queue.Empty:
                self.stats.end = "device stopped"
                return None
            if not np.isfinite(raw).all():  # a misbehaving driver: silence instead, counted
                self.stats.invalid_samples += int((~np.isfinite(raw)).sum())
                raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
            converted = np.clip(self._resample(raw), -1.0, 1.0)
            if not self._clipping_noted:
                self._clipping_noted = note_clipping(f"microphone {self.name!r}", converted)
            self._pending = np.concatenate([self._pending, converted])
        chunk, self._pending = self._pending[:block], self._pending[block:]
        self.stats.samples += block
        return chunk

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
        self.stats.end = self.stats.end or "stopped"


def open_audio_source(spec: int | str | Path | None, paced: bool = True) -> PacedAudioFile | Microphone:
    """An existing file -> PacedAudioFile; a device index or name (or None: the default input) -> Microphone.
    A path that looks like a file (a folder in it, or a media suffix) but does not exist is a
    MediaReadError rather than a device lookup."""
    if spec is not None and not isinstance(spec, int):
        path = Path(spec)
        if path.is_file():
            return PacedAudioFile(path, paced)
        if isinstance(spec, Path) or "/" in str(spec) or path.suffix.lower() in MEDIA_SUFFIXES:
            raise MediaReadError(f"{spec}: no such audio file (a microphone is a device index or name)")
    return Microphone(spec)
