"""The networks, one per file (tensor shapes in each docstring), and their configurations.

- `config`: `ModelConfig` and friends, `get_config(name)`, `CONFIG_NAMES`
- `depth_net.DepthNet`, `pose_net.PoseNet` (self-supervised depth stage)
- `keypoint_detector.KeypointDetector`, `dense_motion.DenseMotion`, `attention.CrossModalAttention`,
  `generator.Generator`, `discriminator.Discriminator`
- `talking_head.TalkingHeadModel`: depth + keypoints + generator, split encode / prepare_source / render
- `motion`: `Keypoints`, `relative_keypoints`, `keypoint_hull_area`, `make_coordinate_grid`
- `macs`: `count_macs`, `count_params`
"""
from __future__ import annotations

from .attention import CrossModalAttention
from .config import (CONFIG_NAMES, AttentionConfig, CompositeConfig, DenseMotionConfig, DepthConfig, DiscriminatorConfig,
                     GeneratorConfig, KeypointConfig, ModelConfig, PoseConfig, get_config)
from .dense_motion import DenseMotion, MotionOutput
from .depth_net import DepthNet
from .discriminator import Discriminator, DiscriminatorOutput
from .generator import Generator, GeneratorOutput, SourceFeatures
from .keypoint_detector import KeypointDetector
from .macs import count_macs, count_params
from .motion import Keypoints, keypoint_hull_area, make_coordinate_grid, relative_keypoints
from .pose_net import PoseNet, PoseOutput
from .talking_head import SourceState, TalkingHeadModel

__all__ = ["CONFIG_NAMES", "AttentionConfig", "CompositeConfig", "CrossModalAttention", "DenseMotion", "DenseMotionConfig",
           "DepthConfig", "DepthNet", "Discriminator", "DiscriminatorConfig", "DiscriminatorOutput", "Generator",
           "GeneratorConfig", "GeneratorOutput", "KeypointConfig", "KeypointDetector", "Keypoints", "ModelConfig",
           "MotionOutput", "PoseConfig", "PoseNet", "PoseOutput", "SourceFeatures", "SourceState",
           "TalkingHeadModel", "count_macs", "count_params", "get_config", "keypoint_hull_area",
           "make_coordinate_grid", "relative_keypoints"]
