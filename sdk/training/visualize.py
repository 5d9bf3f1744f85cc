"""Sample sheets: one row per example, one labelled column per stage of the pipeline (RGB uint8)."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np
import torch
from torch import Tensor

from ..media import to_image
from ..models.motion import Keypoints

MAX_ROWS = 4
MIN_TILE = 128  # tiles are upscaled (nearest) to at least this side so that small models stay legible
LABEL_HEIGHT = 18


def keypoint_colors(count: int) -> list[tuple[int, int, int]]:
    """`count` distinct RGB colours around the hue wheel."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(count, 1), 0.9, 1.0)) for i in range(count)]


def draw_keypoints(image: np.ndarray, value: Tensor) -> np.ndarray:
    """RGB uint8 (H, W, 3) with keypoints (K, 2) in [-1, 1] drawn as coloured dots."""
    out = image.copy()
    h, w = out.shape[:2]
    radius = max(2, round(min(h, w) / 40))
    for (x, y), colour in zip(value.detach().float().cpu().tolist(), keypoint_colors(len(value))):
        centre = (round((x + 1) / 2 * (w - 1)), round((y + 1) / 2 * (h - 1)))
        cv2.circle(out, centre, radius, colour, thickness=-1, lineType=cv2.LINE_AA)
    return out


def colorize(values: Tensor, normalise: bool = True) -> np.ndarray:
    """A map (1, H, W) or (H, W) -> RGB uint8 (H, W, 3) with the magma colour map.

    `normalise` stretches the map's own min..max to the full range; otherwise values are in [0, 1].
    """
    values = values.detach().float().cpu().reshape(values.shape[-2:])
    if normalise:
        values = (values - values.min()) / (values.max() - values.min()).clamp_min(1e-8)
    gray = (values.clamp(0, 1) * 255).round().byte().numpy()
    return cv2.cvtColor(cv2.applyColorMap(gray, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB)


def gray(values: Tensor) -> np.ndarray:
    """A map (1, H, W) in [0, 1] -> RGB uint8 (H, W, 3) grey levels."""
    values = values.detach().float().cpu().reshape(1, *values.shape[-2:]).expand(3, -1, -1)
    return to_image(values)


def _tile(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[0] == side and image.shape[1] == side:
        return image
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_NEAREST)


def compose_sheet(columns: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Labelled grid: {column label: one RGB uint8 tile per row} -> RGB uint8 sheet."""
    rows = len(next(iter(columns.values())))
    side = max(MIN_TILE, max(tile.shape[0] for tiles in columns.values() for tile in tiles))
    sheet = np.full((LABEL_HEIGHT + rows * side, len(columns) * side, 3), 255, np.uint8)
    for c, (label, tiles) in enumerate(columns.items()):
        cv2.putText(sheet, label, (c * side + 3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for r, tile in enumerate(tiles):
            sheet[LABEL_HEIGHT + r * side:LABEL_HEIGHT + (r + 1) * side, c * side:(c + 1) * side] = _tile(tile, side)
    return sheet


def _resized(maps: Tensor, size: tuple[int, int]) -> Tensor:
    return torch.nn.functional.interpolate(maps.detach().float(), size=size, mode="bilinear", align_corners=False)


def generator_sheet(source: Tensor, driving: Tensor, source_depth: Tensor | None, kp_source: Keypoints,
                    kp_driving: Keypoints, occlusion: Tensor, deformed: Tensor, prediction: Tensor,
                    decoded: Tensor | None = None, composite_mask: Tensor | None = None) -> np.ndarray:
    """Columns: source, driving, source depth (depth variants), keypoints on source and on driving,
    occlusion, deformed source, [decoded image and composite mask,] prediction. Images (N, 3, H, W)
    at any sizes (tiles are scaled to the largest), depth (N, 1, h, w), occlusion (N, 1, h, w) at the
    motion resolution, composite mask (N, 1, S, S); the first `MAX_ROWS` examples become rows."""
    rows = min(MAX_ROWS, source.shape[0])
    size = tuple(source.shape[-2:])
    occlusion = _resized(occlusion[:rows], size)
    columns: dict[str, list[np.ndarray]] = {"source": [], "driving": []}
    if source_depth is not None:
        columns["source depth"] = []
    columns.update({"kp source": [], "kp driving": [], "occlusion": [], "deformed": []})
    if composite_mask is not None:
        columns.update({"decoded": [], "composite mask": []})
    columns["prediction"] = []
    for i in range(rows):
        src, drv = to_image(source[i]), to_image(driving[i])
        columns["source"].append(src)
        columns["driving"].append(drv)
        if source_depth is not None:
            columns["source depth"].append(colorize(1.0 / source_depth[i].float().clamp_min(1e-6)))
        columns["kp source"].append(draw_keypoints(src, kp_source.value[i]))
        columns["kp driving"].append(draw_keypoints(drv, kp_driving.value[i]))
        columns["occlusion"].append(gray(occlusion[i]))
        columns["deformed"].append(to_image(deformed[i]))
        if composite_mask is not None:
            columns["decoded"].append(to_image(decoded[i]))
            columns["composite mask"].append(gray(composite_mask[i]))
        columns["prediction"].append(to_image(prediction[i]))
    return compose_sheet(columns)


def depth_sheet(target: Tensor, references: Tensor, warped: Tensor, depth: Tensor, uncertainty: Tensor | None,
                auto_mask: Tensor) -> np.ndarray:
    """Columns: target, first reference, that reference warped into the target view, depth (as
    normalised disparity, bright = near), uncertainty (DaGAN++), auto-mask. target (N, 3, H, W),
    references and warped (N, R, 3, H, W), depth (N, 1, H, W), uncertainty and auto_mask (N, 1, H, W)."""
    rows = min(MAX_ROWS, target.shape[0])
    columns: dict[str, list[np.ndarray]] = {"target": [], "reference": [], "warped": [], "depth": []}
    if uncertainty is not None:
        columns["uncertainty"] = []
    columns["auto-mask"] = []
    for i in range(rows):
        columns["target"].append(to_image(target[i]))
        columns["reference"].append(to_image(references[i, 0]))
        columns["warped"].append(to_image(warped[i, 0]))
        columns["depth"].append(colorize(1.0 / depth[i].float().clamp_min(1e-6)))
        if uncertainty is not None:
            columns["uncertainty"].append(colorize(uncertainty[i]))
        columns["auto-mask"].append(gray(auto_mask[i]))
    return compose_sheet(columns)
