"""Detector backends: one file per way of running YOLO weights.

``ultralytics_backend`` loads the .pt weights (PyTorch) and makes the ONNX/OpenVINO exports, cached by
the weights' hash; ``onnx_backend`` runs an ONNX export directly with ONNX Runtime. pipeline/detect.py
picks one from the config.
"""


class ModelError(Exception):
    """The model file is missing or unusable (a user-facing reason)."""
