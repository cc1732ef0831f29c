"""Training: folders of colour photos in, a colorization checkpoint out (``train(cfg)``)."""

from .config import TrainConfig
from .state import resume_config
from .trainer import TrainingDiverged, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "resume_config", "train"]
