"""`python -m sdk prior fit|show`: fit the face prior on prepared data, or describe a prior file.

    python -m sdk prior fit --data cache/prepared --out DIR [--components E] [--fp32]
    python -m sdk prior show [FILE_OR_DIR]        (default: the shipped sdk/assets/prior/)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SdkError


def _run_fit(args: argparse.Namespace) -> int:
    from .fit import FitConfig, fit_prior
    from .prior_file import save_prior

    try:
        config = FitConfig(components=args.components, max_frames_per_clip=args.max_frames_per_clip)
    except ValueError as exc:
        raise SdkError(f"prior fit: {exc}") from None
    prior, report = fit_prior(args.data, config)
    path = save_prior(prior, args.out, half=not args.fp32)
    (args.out / "fit_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(report.table())
    print(f"\n{path} ({path.stat().st_size / 1024:.0f} KiB, {'fp32' if args.fp32 else 'fp16'} basis); "
          f"report: {args.out / 'fit_report.json'}")
    return 0


def _run_show(args: argparse.Namespace) -> int:
    from .prior_file import FORMAT_VERSION, load_prior, resolve_prior_path

    prior = load_prior(args.file)
    fit = prior.metadata.get("fit", {})
    print(f"{resolve_prior_path(args.file)}: face prior (format version {FORMAT_VERSION}, "
          f"{prior.metadata.get('dtype', '?')} basis), sha256 {prior.sha256}")
    print(f"E = {prior.components} expression coefficients ({prior.basis.explained():.3f} of the train offset "
          f"energy), {int((prior.weights > 0).sum())} rigid points, rigid residual limit {prior.residual_limit:.4f}")
    for dims in (8, 16, 24, 32):
        if dims <= prior.components:
            print(f"  E = {dims}: {prior.basis.explained(dims):.3f} of the energy")
    print("controls: " + ", ".join(f"{entry['name']} [{entry['low']:g}, {entry['high']:g}]"
                                   for entry in prior.metadata.get("controls", [])))
    if fit:
        print(f"fit: {fit.get('clips')} {fit.get('split')} clips ({fit.get('identities')} identities, "
              f"{fit.get('frames')} frames) of {fit.get('data')} at {fit.get('size')}², {fit.get('fitted_at')}; "
              f"test error px {fit.get('test_error_px')}")
        print(f"note: {fit.get('note')}")
    return 0


def add_prior_verb(subparsers: argparse._SubParsersAction) -> None:
    """Add `prior fit` and `prior show` to the `python -m sdk` parser."""
    parser = subparsers.add_parser("prior", help="fit or show the semantic face prior (pose + expression code)",
                                   description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    actions = parser.add_subparsers(dest="prior_action", metavar="ACTION", required=True)
    fit = actions.add_parser("fit", help="fit the prior on a prepared folder's train split; measure it on test")
    fit.add_argument("--data", type=Path, required=True, help="prepared data folder (python -m sdk data prepare)")
    fit.add_argument("--out", type=Path, required=True, help="output directory (face_prior.safetensors, "
                     "face_prior.sha256, fit_report.json)")
    fit.add_argument("--components", type=int, default=32, metavar="E", help="expression coefficients (default 32)")
    fit.add_argument("--max-frames-per-clip", type=int, default=400, metavar="N",
                     help="even subsampling of longer clips (default 400)")
    fit.add_argument("--fp32", action="store_true", help="store the basis in fp32 (default fp16)")
    fit.set_defaults(run=_run_fit)
    show = actions.add_parser("show", help="describe a prior file")
    show.add_argument("file", nargs="?", default="default", help="prior file or directory (default: the shipped one)")
    show.set_defaults(run=_run_show)
