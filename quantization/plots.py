"""The report's figures (matplotlib, no display needed): each function writes one PNG and returns its path."""
from __future__ import annotations

from pathlib import Path

from .errors import MissingDependencyError


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError("the report's plots need matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def size_latency(points: list[tuple[str, float, float]], path: Path, threads: int) -> Path:
    """Scatter of (label, size MB, per-frame ms)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5))
    for label, size, latency in points:
        axes.scatter(size, latency)
        axes.annotate(label, (size, latency), fontsize=8, xytext=(4, 4), textcoords="offset points")
    axes.set_xlabel("size of the three graphs (MB)")
    axes.set_ylabel(f"per-frame latency here, {threads} thread(s) (ms, median)")
    axes.set_title("size vs speed")
    axes.grid(alpha=0.3)
    return _save(figure, plt, path)


def quality_bars(rows: list[tuple[str, float, float]], path: Path) -> Path:
    """Bars of (label, PSNR vs real, PSNR vs fp32 torch)."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    labels = [row[0] for row in rows]
    left.barh(labels, [row[1] for row in rows])
    left.set_xlim(min(row[1] for row in rows) - 1.0, max(row[1] for row in rows) + 0.5)
    left.set_xlabel("PSNR vs real frames (dB)")
    right.barh(labels, [min(row[2], 60.0) for row in rows])
    right.set_xlabel("PSNR vs fp32 torch frames (dB, capped at 60)")
    right.set_yticklabels([])
    for axes in (left, right):
        axes.invert_yaxis()
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle("quality on the test identities")
    return _save(figure, plt, path)


def latency_bars(rows: list[tuple[str, dict[int, float]]], path: Path) -> Path:
    """Grouped bars of per-frame latency by thread count: (label, {threads: ms})."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(10, 5))
    threads = sorted({t for _, values in rows for t in values})
    width = 0.8 / max(len(threads), 1)
    for offset, count in enumerate(threads):
        axes.bar([i + offset * width for i in range(len(rows))], [values.get(count, 0.0) for _, values in rows],
                 width, label=f"{count} thread(s)")
    axes.set_xticks([i + width * (len(threads) - 1) / 2 for i in range(len(rows))])
    axes.set_xticklabels([label for label, _ in rows], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("per-frame latency (ms, median)")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, plt, path)


def sensitivity_bars(items: list[tuple[str, float, bool]], path: Path) -> Path:
    """Horizontal bars of (layer label, PSNR with only that layer INT8, kept float?)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, max(3.0, 0.28 * len(items))))
    colors = ["tab:red" if kept else "tab:blue" for _, _, kept in items]
    axes.barh([label for label, _, _ in items], [value for _, value, _ in items], color=colors)
    axes.invert_yaxis()
    axes.set_xlabel("PSNR of frames vs float with only this layer INT8 (dB; red: kept float)")
    axes.tick_params(axis="y", labelsize=7)
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, plt, path)


def loss_curve(points: list[tuple[int, float]], path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot([p[0] for p in points], [p[1] for p in points])
    axes.set_xlabel("fine-tuning step")
    axes.set_ylabel("loss (reconstruction + distillation)")
    axes.grid(alpha=0.3)
    return _save(figure, plt, path)


def _save(figure, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
