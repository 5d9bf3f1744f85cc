"""Training data: preparing aligned face clips (`prepare`) and the datasets that read them."""
from .datasets import (
                       AudioWindowDataset,
                       AugmentConfig,
                       FramePairDataset,
                       FrameTripletDataset,
                       PreparedClip,
                       read_prepared_manifest,
)

__all__ = ["AudioWindowDataset", "AugmentConfig", "FramePairDataset", "FrameTripletDataset", "PreparedClip",
           "read_prepared_manifest"]
