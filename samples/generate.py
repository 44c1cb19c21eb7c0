"""Re-render the shipped sample footage: `python samples/generate.py` (about a minute on 2 cores).

Four 20 s clips from `vaudit synth` with fixed seeds, filed as inspection teams file them:
one folder per district, bodycam/phone-style file names, capture time in the container metadata.
Each NAME.json beside its video is the exact ground truth (violations and hard negatives).
"""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.synth import render_video

HERE = Path(__file__).resolve().parent
TZ = ZoneInfo("Asia/Shanghai")
SAMPLES = [  # (district folder, file name, seed, capture start)
    ("城关镇", "VID_20261103_092233", 102, datetime(2026, 11, 3, 9, 22, 33, tzinfo=TZ)),
    ("东城街道", "VID_20261104_143010", 103, datetime(2026, 11, 4, 14, 30, 10, tzinfo=TZ)),
    ("西湖乡", "20261105_101500", 105, datetime(2026, 11, 5, 10, 15, 0, tzinfo=TZ)),
    ("城关镇", "DSJ_20261110_160201", 106, datetime(2026, 11, 10, 16, 2, 1, tzinfo=TZ)),
]


def render(root: Path, district: str, name: str, seed: int, start: datetime) -> dict:
    """One sample clip under root/district/ (a test re-renders one to check the shipped files match)."""
    return render_video(root / district, name, seed=seed, duration=20, size=(960, 540), fps=25, gop_s=1.0,
                        district=district, capture_start=start, crf=27)


if __name__ == "__main__":
    for district, name, seed, start in SAMPLES:
        gt = render(HERE, district, name, seed, start)
        print(f"{district}/{name}.mp4: {[v['category'] for v in gt['violations']]}")
