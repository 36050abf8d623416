"""Hiera models: the official family for images and video, MAE pretraining, and checkpoint loading."""
from .checkpoint import CheckpointError, LoadResult, interpolate_pos_embed, load_checkpoint, read_checkpoint
from .hiera import Hiera, HieraBlock, MaskUnitAttention, required_input_multiples
from .hiera_mae import MaskedAutoencoderHiera
from .registry import create_model, list_models, model_architecture, register_model

__all__ = [
    "CheckpointError", "Hiera", "HieraBlock", "LoadResult", "MaskUnitAttention", "MaskedAutoencoderHiera",
    "create_model", "interpolate_pos_embed", "list_models", "load_checkpoint", "read_checkpoint",
    "model_architecture", "register_model", "required_input_multiples",
]
