"""Export a trained checkpoint to a self-describing ONNX file, and quantise it to INT8 (``train`` extra)."""
