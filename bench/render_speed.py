"""Per-frame speed of every model config in torch on this CPU: encoder and render, 1 and 2 threads.

    python bench/render_speed.py [--configs dagan++-mobile ...] [--runs 50] [--json out/render_speed.json]

Prints a table and writes JSON. Ratios are against the named baseline config (default
`fomm-mobile`, the depth-free FOMM generator at the same size) measured in the same run.
Weights are random: speed does not depend on them. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sdk.bench import median_ms
from sdk.models import CONFIG_NAMES, TalkingHeadModel, count_macs, count_params, get_config


@torch.inference_mode()
def measure(name: str, runs: int, threads: list[int]) -> dict:
    cfg = get_config(name)
    model = TalkingHeadModel(cfg).eval()
    image = torch.rand(1, 3, cfg.resolution, cfg.resolution)
    driving = torch.rand(1, 3, cfg.resolution, cfg.resolution)
    state = model.prepare_source(image)
    code = model.encode(driving)
    row = {"config": name, "resolution": cfg.resolution, "params_m": count_params(model) / 1e6,
           "encode_gmac": count_macs(model.encode, (driving,)) / 1e9,
           "render_gmac": count_macs(lambda: model.render(state, code), ()) / 1e9}
    count = max(3, runs // 10) if cfg.size == "paper" else runs
    for n in threads:
        torch.set_num_threads(n)
        row[f"encode_ms_{n}t"] = median_ms(lambda: model.encode(driving), count)
        row[f"render_ms_{n}t"] = median_ms(lambda: model.render(state, code), count)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=[n for n in CONFIG_NAMES if not n.endswith("-paper")])
    parser.add_argument("--baseline", default="fomm-mobile")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", default="out/render_speed.json")
    args = parser.parse_args()
    names = list(dict.fromkeys([args.baseline, *args.configs]))
    rows = [measure(name, args.runs, args.threads) for name in names]
    base = rows[0]
    last = args.threads[-1]
    for row in rows:
        row[f"render_ratio_vs_baseline_{last}t"] = row[f"render_ms_{last}t"] / base[f"render_ms_{last}t"]
    header = ["config", "params M", "enc GMAC", "render GMAC"] + [
        f"{stage} ms {n}t" for n in args.threads for stage in ("enc", "render")] + [f"render ×{args.baseline}"]
    print(" | ".join(header))
    for row in rows:
        cells = [row["config"], f"{row['params_m']:.2f}", f"{row['encode_gmac']:.3f}", f"{row['render_gmac']:.3f}"]
        cells += [f"{row[f'{stage}_ms_{n}t']:.1f}" for n in args.threads for stage in ("encode", "render")]
        cells.append(f"{row[f'render_ratio_vs_baseline_{last}t']:.2f}")
        print(" | ".join(cells))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"baseline": args.baseline, "runs": args.runs, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
