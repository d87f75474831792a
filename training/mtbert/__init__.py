"""MultiTaskBert training toolkit: partial fine-tuning, distillation, ONNX export, bundle merge."""

__version__ = "0.1.0"
