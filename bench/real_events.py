"""Events on real imagery: footage panned across held-out real photos, run through the real CLI.

    python bench/real_events.py                       # 30 holdout photos per garbage set, 15 vehicle photos
    python bench/real_events.py --per-set 60 --model models/other.pt

Each held-out photo (pipeline/realdata.py; never trained or tuned on) becomes a 6 s handheld pan
(pipeline/synth/pan.py) with its garbage boxes as ground-truth violations. `vaudit ingest` and
`vaudit run` process them into a fresh workspace exactly as a user would, and the violations are scored
against the truth per video (pipeline/scoring.py). Tidy bins and vehicles are not violations: a
garbage flag on them is a false alarm. The shared parking-lot video (a real fixed-camera clip with no
rubbish in view) adds a count of garbage flags where there should be none. Photos are taken in a fixed
order (by a hash of their name), not chosen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.realdata import REAL_SETS, SHARED_DATA, boxes, images
from pipeline.scoring import EventScore, score_events
from pipeline.synth.pan import pan_video

PARKING_LOT = SHARED_DATA / "videos" / "parking-lot-fixed-camera.mp4"
SETS = {"cn-garbage-overflow": 1.0, "woosong-trashbags": 1.0, "in-street-vehicles": 0.5}  # share of --per-set


def footage(out: Path, per_set: int, data: Path) -> dict[str, list[Path]]:
    """Render the pans once (cached in ``out``); set name -> videos."""
    made: dict[str, list[Path]] = {}
    for name, share in SETS.items():
        rs = REAL_SETS[name]
        if not rs.root(data).is_dir():
            continue
        photos = sorted(images(rs, "holdout", data), key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
        folder = out / "城关镇" / name
        for i, photo in enumerate(photos[:round(per_set * share)]):
            video = folder / f"{name[:8]}-{i:03d}.mp4"
            if not video.with_suffix(".json").exists():
                pan_video(photo, boxes(rs, photo), folder, video.stem, seed=i)
            made.setdefault(name, []).append(video)
    return made


def vaudit(workspace: Path, *args: str) -> str:
    cmd = [str(Path(sys.executable).parent / "vaudit"), "--workspace", str(workspace), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
    return res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-set", type=int, default=30, help="holdout photos per garbage set (vehicles: half)")
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "real-events")
    args = ap.parse_args()

    made = footage(args.cache / "footage", args.per_set, args.data)
    if not made:
        raise SystemExit(f"no real sets under {args.data}")
    run_args = [*(["--config", str(args.config)] if args.config else []), *(["--model", str(args.model)] if args.model else [])]
    with tempfile.TemporaryDirectory(prefix="vaudit-real-") as tmp:
        ws = Path(tmp) / "ws"
        vaudit(ws, "ingest", str(args.cache / "footage"))
        if PARKING_LOT.exists():
            vaudit(ws, "ingest", str(PARKING_LOT), "--district", "城关镇")
        vaudit(ws, "run", *run_args)
        found = json.loads(vaudit(ws, "violations", "--json", *(["--config", str(args.config)] if args.config else [])))
    by_video: dict[str, list[dict]] = {}
    for v in found:
        by_video.setdefault(Path(v["source_path"]).name, []).append(v)
    for name, videos in made.items():
        total, flags = EventScore(), {}
        for video in videos:
            truth = json.loads(video.with_suffix(".json").read_text())
            mine = by_video.get(video.name, [])
            total = total.add(score_events([v for v in mine if v["category"] == "garbage"], truth["violations"]))
            for v in mine:
                if v["category"] != "garbage":
                    flags[v["category"]] = flags.get(v["category"], 0) + 1
        other = ", ".join(f"{k} {n}" for k, n in sorted(flags.items())) or "none"
        print(f"{name}: {len(videos)} pans, garbage {total}; other flags: {other}")
    lot = by_video.get(PARKING_LOT.name, [])
    if PARKING_LOT.exists():
        counts = {c: sum(v["category"] == c for v in lot) for c in ("garbage", "parking", "stall")}
        print(f"{PARKING_LOT.name} (no rubbish in view): " + ", ".join(f"{c} {n}" for c, n in counts.items()))


if __name__ == "__main__":
    main()
