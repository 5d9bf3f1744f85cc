"""A progress bar for headless sessions: frames so far (of the video's, or of `--frames`), with the
rendered frame rate, the code stream's kbit/s and the drops in its postfix.

It writes to stderr, as tqdm does everywhere in this project (`data prepare`, `export`), so the
stats JSON on stdout stays clean to pipe; by default it shows only when stderr is a terminal.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

from ..stats import LiveStats


class ProgressBar:
    def __init__(self, total: int | None):
        self.total = total
        self._bar: tqdm | None = None  # started with the first frame: its rate leaves out model loading

    def update_stats(self, stats: LiveStats) -> None:
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc="live", unit="frame", file=sys.stderr, dynamic_ncols=True)
        # frames captured, the video's progress; a receiver half counts the frames it rendered
        self._bar.n = stats.frames_captured or stats.frames_rendered
        self._bar.set_postfix({"rendered": stats.frames_rendered, "fps": f"{stats.fps:.1f}",
                               "kbit/s": f"{stats.kbps:.2f}", "dropped": stats.frames_dropped_total}, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
