"""Synthetic inspection footage with exact ground truth: street videos and a YOLO data set.

No real footage may be shipped, so vaudit renders its own: perspective Chinese streets filmed
from the sidewalk or a slow vehicle, with garbage piles, illegal parking and street stalls plus
hard negatives. Every label comes from the geometry that drew the pixels. A second style, "city"
(city.py), draws another city's vehicles, stalls, rubbish and weather.
"""

from ..records import CLASSES
from .dataset import render_dataset
from .scene import STYLES
from .video import render_video

__all__ = ["CLASSES", "STYLES", "render_dataset", "render_video"]
