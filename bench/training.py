"""Training speed on CPU: vaudit's setup against Ultralytics' own defaults, in one command.

    python bench/training.py                       # 320 rendered frames, 1 epoch at 320 px, batch 16
    python bench/training.py --images 640 --imgsz 640

Ultralytics trains on a CPU with ``cpu_count - 1`` torch threads, so on a 2-core machine one core idles;
`vaudit train` uses every core (pipeline/backends/ultralytics_backend.py: prepare). Both variants train the same
architecture from its YAML on the same rendered dataset, each in its own process, and the script
prints seconds per epoch and the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(variant: str, data: str, imgsz: int, batch: int, out: str) -> None:
    """One training epoch in this process; prints the seconds it took and the torch threads used."""
    import torch
    from ultralytics import YOLO, utils
    from ultralytics.utils import torch_utils

    from pipeline.backends.ultralytics_backend import prepare

    prepare()  # offline either way
    if variant == "ultralytics":
        torch_utils.NUM_THREADS = utils.NUM_THREADS  # Ultralytics' own choice: cpu_count - 1
    model = YOLO("yolov8n.yaml", task="detect")
    t0 = time.perf_counter()
    model.train(data=data, epochs=1, imgsz=imgsz, batch=batch, device="cpu", workers=0, val=False, plots=False,
                amp=False, pretrained=False, project=out, name=variant, exist_ok=True, verbose=False, seed=0)
    print(f"RESULT {time.perf_counter() - t0:.1f} {torch.get_num_threads()}")


def run(variant: str, data: Path, args: argparse.Namespace, out: Path) -> tuple[float, int]:
    cmd = [sys.executable, __file__, "--child", variant, "--data", str(data), "--imgsz", str(args.imgsz),
           "--batch", str(args.batch), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    seconds, threads = line.split()[1:]
    return float(seconds), int(threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=320, help="rendered training frames")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--child", choices=("ultralytics", "vaudit"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.imgsz, args.batch, args.out)
        return

    from pipeline.synth import render_dataset

    with tempfile.TemporaryDirectory(prefix="vaudit-bench-train-") as tmp:
        data = render_dataset(Path(tmp) / "ds", seed=31, count=args.images, val_fraction=0.05)
        print(f"{args.images} rendered frames, 1 epoch of yolov8n at {args.imgsz} px, batch {args.batch}, "
              f"{os.cpu_count()} CPU cores")
        base, base_threads = run("ultralytics", data, args, Path(tmp) / "runs")
        ours, our_threads = run("vaudit", data, args, Path(tmp) / "runs")
    print(f"  Ultralytics defaults: {base:7.1f} s ({base_threads} torch threads)")
    print(f"  vaudit train setup:   {ours:7.1f} s ({our_threads} torch threads)")
    print(f"  vaudit is {base / ours:.2f}x the baseline's speed")


if __name__ == "__main__":
    main()
