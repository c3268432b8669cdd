"""Recognition models: a name -> (config, builder) registry."""

from crnn_ocr.models.registry import create_model, list_models, model_config

__all__ = ["create_model", "list_models", "model_config"]
