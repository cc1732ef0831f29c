"""chromafuse: batch colorization of black-and-white photos."""

__version__ = "0.1.0"

from .checkpoint import load_checkpoint  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .models import create_model, list_models  # noqa: E402
from .training import train  # noqa: E402

__all__ = ["TrainConfig", "__version__", "create_model", "list_models", "load_checkpoint", "train"]
