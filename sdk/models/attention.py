"""Cross-modal depth attention (DaGAN §3.4, DaGAN++ §III-C) with a bounded attention map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import downsample
from .config import AttentionConfig


class CrossModalAttention(nn.Module):
    """Refines warped appearance features with attention queried by the source depth features.

    out = warped + gamma · upsample(softmax(Q Kᵀ / √d) V), where Q = W_q(depth features) and
    K = W_k(warped), V = W_v(warped) by 1×1 convs. Keys/values are average-pooled to at most
    key_side² tokens and queries to at most query_side² positions, so the map stays
    (query_side² × key_side²) on a phone at any feature size. gamma starts at 0 (as in SAGAN), so
    an untrained block is the identity and the generator starts as the FOMM baseline.

    The query depends only on the source, so it is computed once per avatar by `query` and the
    per-frame `forward` only projects the warped features.

    Shapes at a feature map of side s: depth_features (N, C_d, s, s) -> query (N, d, q, q) with
    q = min(s, query_side); forward(query, warped (N, C, s, s)) -> (N, C, s, s).
    """

    def __init__(self, depth_channels: int, feature_channels: int, side: int, cfg: AttentionConfig):
        super().__init__()
        self.side = side
        self.query_side = min(side, cfg.query_side)
        self.query_pool = side // self.query_side
        self.key_pool = max(side // cfg.key_side, 1)
        self.scale = cfg.qk_channels ** -0.5
        self.query_proj = nn.Conv2d(depth_channels, cfg.qk_channels, 1)
        self.key_proj = nn.Conv2d(feature_channels, cfg.qk_channels, 1)
        self.value_proj = nn.Conv2d(feature_channels, feature_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def query(self, depth_features: Tensor) -> Tensor:
        """(N, C_d, s, s) -> (N, qk_channels, q, q), pooled before the projection (same result, fewer MACs)."""
        return self.query_proj(downsample(depth_features, self.query_pool))

    def forward(self, query: Tensor, warped: Tensor) -> Tensor:
        n, c = warped.shape[:2]
        pooled = downsample(warped, self.key_pool)
        keys = self.key_proj(pooled).flatten(2)  # (N, d, L)
        values = self.value_proj(pooled).flatten(2).transpose(1, 2)  # (N, L, C)
        attention = torch.softmax((query.flatten(2).transpose(1, 2) @ keys) * self.scale, dim=-1)  # (N, q², L)
        attended = (attention @ values).transpose(1, 2).reshape(n, c, self.query_side, self.query_side)
        if self.query_side != self.side:
            attended = F.interpolate(attended, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return warped + self.gamma * attended
