"""What a run reads: model architectures (config JSON, ONNX), hardware files and request traces."""
