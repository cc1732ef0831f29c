"""The model zoo. Importing this package registers every architecture."""

from .fusion import FusionColorizer
from .registry import check_side, create_model, list_models, model_args_for, model_spec, register_model
from .resnet import ResNetColorizer
from .unet import UNetColorizer

register_model("fusion-s", FusionColorizer, "EfficientNet-Lite0 + pixel decoder + 64 colour queries x 3 layers")
register_model(
    "fusion-m",
    FusionColorizer,
    "EfficientNet-Lite0 + wider pixel decoder + 100 colour queries x 6 layers",
    decoder_channels=(256, 160, 128, 96),
    num_queries=100,
    query_dim=192,
    heads=6,
    colour_layers=6,
    refine_channels=64,
)
register_model("unet", UNetColorizer, "U-Net encoder-decoder from scratch, base width 32")
register_model("resnet", ResNetColorizer, "ResNet-34 first stages (to stride 8) + upsampling decoder")

__all__ = ["check_side", "create_model", "list_models", "model_args_for", "model_spec", "register_model"]
