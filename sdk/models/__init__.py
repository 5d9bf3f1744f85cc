"""The networks, one per file (tensor shapes in each docstring), and their configurations.

- `config`: `ModelConfig` and friends, `get_config(name)`, `CONFIG_NAMES` (learned keypoints),
  `SEMANTIC_CONFIG_NAMES` (driven by the face prior), `MODEL_NAMES` (both)
- `depth_net.DepthNet`, `pose_net.PoseNet` (self-supervised depth stage)
- `keypoint_detector.KeypointDetector`, `dense_motion.DenseMotion`, `attention.CrossModalAttention`,
  `generator.Generator`, `discriminator.Discriminator`, `expression_modulation.ExpressionModulation`
- `talking_head.TalkingHeadModel`: depth + keypoints + generator, split encode / prepare_source / render
  (face prior: prepare_source with the avatar's mesh / drive / render_semantic)
- `semantic_inputs`: the face prior's numpy keypoints and codes as the generator's tensors
- `motion`: `Keypoints`, `relative_keypoints`, `keypoint_hull_area`, `make_coordinate_grid`
- `macs`: `count_macs`, `count_params`
- audio to semantic codes (issue 13): `audio_frame_encoder`, `audio_expression`, `audio_motion_space`,
  `audio_motion`; `audio_to_code.AudioToCodeModel` holds them (`sdk.audio` drives it)
"""
from __future__ import annotations

from .attention import CrossModalAttention
from .audio_to_code import AudioModelConfig, AudioToCodeModel
from .config import (CONFIG_NAMES, MODEL_NAMES, SEMANTIC_CONFIG_NAMES, AttentionConfig, CompositeConfig,
                     DenseMotionConfig, DepthConfig, DiscriminatorConfig, GeneratorConfig, KeypointConfig, ModelConfig,
                     PoseConfig, SemanticConfig, get_config)
from .dense_motion import DenseMotion, MotionOutput
from .depth_net import DepthNet
from .discriminator import Discriminator, DiscriminatorOutput
from .expression_modulation import ExpressionModulation
from .generator import Generator, GeneratorOutput, SourceFeatures
from .keypoint_detector import KeypointDetector
from .macs import count_macs, count_params
from .motion import Keypoints, keypoint_hull_area, make_coordinate_grid, relative_keypoints
from .pose_net import PoseNet, PoseOutput
from .talking_head import SemanticInputs, SourceState, TalkingHeadModel

__all__ = ["CONFIG_NAMES", "MODEL_NAMES", "SEMANTIC_CONFIG_NAMES", "AttentionConfig", "AudioModelConfig", "AudioToCodeModel", "CompositeConfig", "CrossModalAttention", "DenseMotion", "DenseMotionConfig",
           "DepthConfig", "DepthNet", "Discriminator", "DiscriminatorConfig", "DiscriminatorOutput", "ExpressionModulation",
           "Generator",
           "GeneratorConfig", "GeneratorOutput", "KeypointConfig", "KeypointDetector", "Keypoints", "ModelConfig",
           "MotionOutput", "PoseConfig", "PoseNet", "PoseOutput", "SemanticConfig", "SemanticInputs", "SourceFeatures",
           "SourceState",
           "TalkingHeadModel", "count_macs", "count_params", "get_config", "keypoint_hull_area",
           "make_coordinate_grid", "relative_keypoints"]
