"""vaudit: a video-audit evidence pipeline for urban-management inspection footage."""

import os

__version__ = "0.1.0"

# Nothing may be fetched at run time: Ultralytics checks connectivity and would fetch fonts and weights.
os.environ.setdefault("YOLO_OFFLINE", "true")
