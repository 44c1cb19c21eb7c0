"""Training: the default detector, and how a city fine-tunes vaudit on its own reviewed footage.

Wraps Ultralytics training with three guarantees: nothing is downloaded (no pretrained weights, no
fonts, no AMP-check weights), real labelled data is mixed with rendered data (the woosong garbage
photos: segmentation polygons become boxes), and every model leaves with a card whose figures were
measured on held-out data, synthetic and real reported separately.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .backends.ultralytics_backend import prepare
from .config import Config, load
from .records import CLASSES

WOOSONG_CREDIT = (
    "Woosong trash bags (Korea), 1,185 street photos of garbage bags with segmentation labels, CC BY 4.0, "
    "Roboflow Universe project woosongvision/trashbags-segmentation-v1-v2 via GitHub itsCaveMan/WoosongVision "
    "(commit 33a6b888361cc87f9a933951be932eae0ecdcdd0)"
)


def woosong_to_yolo(src: Path, out: Path, splits: tuple[str, ...] = ("train", "valid")) -> Path:
    """Convert the woosong segmentation labels to vaudit detection labels (both bag classes are garbage).

    Images are symlinked, not copied: the dataset stays where it is (it may not enter the repository).
    """
    garbage = CLASSES.index("garbage")
    for split in splits:
        img_out, lab_out = out / "images" / split, out / "labels" / split
        img_out.mkdir(parents=True, exist_ok=True)
        lab_out.mkdir(parents=True, exist_ok=True)
        for img in sorted((src / split / "images").iterdir()):
            lab = src / split / "labels" / (img.stem + ".txt")
            lines = []
            if lab.exists():
                for row in lab.read_text().split("\n"):
                    v = row.split()
                    if len(v) < 7:
                        continue
                    xs, ys = [float(x) for x in v[1::2]], [float(y) for y in v[2::2]]
                    x1, x2, y1, y2 = max(0, min(xs)), min(1, max(xs)), max(0, min(ys)), min(1, max(ys))
                    if x2 - x1 > 0.005 and y2 - y1 > 0.005:
                        lines.append(f"{garbage} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}")
            link = img_out / img.name
            if not link.exists():
                link.symlink_to(img.resolve())
            (lab_out / (img.stem + ".txt")).write_text("\n".join(lines) + ("\n" if lines else ""))
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/valid",
            "names": dict(enumerate(CLASSES))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return out / "data.yaml"


def merge_data(yamls: list[Path], out: Path) -> Path:
    """One data.yaml training on the union of several datasets that share vaudit's class list."""
    train, val = [], []
    for y in yamls:
        d = yaml.safe_load(Path(y).read_text())
        names = d["names"] if isinstance(d["names"], list) else [d["names"][k] for k in sorted(d["names"])]
        if names != CLASSES:
            raise ValueError(f"{y}: classes {names} differ from vaudit's {CLASSES}")
        base = Path(d.get("path") or Path(y).parent)
        train += [str(base / t) for t in ([d["train"]] if isinstance(d["train"], str) else d["train"])]
        val += [str(base / t) for t in ([d["val"]] if isinstance(d["val"], str) else d["val"])]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump({"train": train, "val": val, "names": dict(enumerate(CLASSES))},
                                  allow_unicode=True, sort_keys=False))
    return out


@dataclass
class TrainResult:
    weights: Path
    seconds: float
    epochs: int
    imgsz: int
    device: str


def train(data: Path, out: Path, *, base: Path | None = None, arch: str = "yolov8n.yaml", epochs: int = 30,
          imgsz: int = 416, batch: int = 32, device: str | None = None, workers: int = 2,
          project: Path = Path("runs/train"), resume: bool = False, hours: float | None = None,
          partial_rules: Path | None = None) -> TrainResult:
    """Train from ``base`` weights (fine-tuning) or from the architecture YAML (no download either way).

    With ``partial_rules`` (pipeline/partial.py) each image's class loss counts only for the classes its
    data set labels, and mosaic is off: a mosaic tile from another set would be masked wrongly."""
    prepare()
    import torch
    from ultralytics import YOLO

    dev = device or ("0" if torch.cuda.is_available() else "cpu")
    run_dir = project / out.stem
    last = run_dir / "weights" / "last.pt"
    if resume and last.exists():
        model = YOLO(str(last))
    elif base:
        model = YOLO(str(base))
    else:
        model = YOLO(arch, task="detect")
    if partial_rules:
        from .partial import install

        install(model, partial_rules)
    # fine-tuning keeps what the base learned: a small learning rate, no warm-up restart
    tune = {"optimizer": "AdamW", "lr0": 0.0005, "warmup_epochs": 0} if base and not resume else {}
    t0 = time.time()
    model.train(
        data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, device=dev, workers=workers,
        project=str(project.resolve()), name=out.stem, exist_ok=True, plots=False, amp=False, val=False,
        pretrained=str(base) if base else False, resume=bool(resume and last.exists()), seed=0, deterministic=False, verbose=False,
        close_mosaic=max(1, epochs // 10), patience=0, cache=False, **({"mosaic": 0.0} if partial_rules else {}), **({"time": hours} if hours else {}), **tune,
    )
    seconds = time.time() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    _strip(last, out)
    results = run_dir / "results.csv"
    done = max(0, len(results.read_text().strip().splitlines()) - 1) if results.exists() else epochs
    return TrainResult(out, seconds, done, imgsz, _machine(dev))


def _machine(dev: str) -> str:
    import torch

    cpus = os.cpu_count()
    if dev != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU, {cpus} CPU cores"
    return f"CPU only, {cpus} cores ({platform.machine()})"


def _strip(src: Path, dst: Path) -> None:
    """Keep only the fp16 EMA weights (Ultralytics' strip_optimizer): ~6 MB instead of ~18."""
    from ultralytics.utils.torch_utils import strip_optimizer

    tmp = dst.with_suffix(".tmp.pt")
    shutil.copy(src, tmp)
    strip_optimizer(str(tmp))
    os.replace(tmp, dst)


def evaluate(weights: Path, data: Path, imgsz: int, split: str = "val") -> dict:
    """Per-class precision, recall and mAP50 on a held-out split."""
    prepare()
    from ultralytics import YOLO

    model = YOLO(str(weights))
    m = model.val(data=str(data), imgsz=imgsz, split=split, plots=False, verbose=False, batch=16,
                  device="cpu" if not _cuda() else "0", project="/tmp/vaudit-val", name="v", exist_ok=True)
    names = model.names
    per = {}
    for i, k in enumerate(m.box.ap_class_index):
        p, r, ap50, _ = m.box.class_result(i)
        per[names[int(k)]] = {"precision": round(float(p), 3), "recall": round(float(r), 3),
                              "mAP50": round(float(ap50), 3)}
    return {"all": {"precision": round(float(m.box.mp), 3), "recall": round(float(m.box.mr), 3),
                    "mAP50": round(float(m.box.map50), 3)}, "per_class": per}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def side_by_side(info: dict) -> list[str]:
    """The card's summary: real-photo and rendered figures in one table (rendered ones are not real-world)."""
    rows = []
    for name, res in info.get("real", {}).get("sets", {}).items():
        for cls, r in res["per_class"].items():
            rows.append(f"| real photos: {name} holdout ({res['photos']}) | {cls} AP50 | {r['AP50']} ± {r['AP50_se']} |")
    ev = info.get("event_figures")
    if ev:
        rows.append(f"| rendered footage: fresh seeds {ev['seeds']} ({ev['violations']} violations), whole pipeline "
                    f"| event recall / precision | {ev['recall']} / {ev['precision']} |")
    for name, res in info.get("metrics", {}).items():
        rows.append(f"| rendered frames: {name} | mAP50, all classes | {res['all']['mAP50']} |")
    if not rows:
        return []
    return ["## Real and rendered, side by side", "", "| measured on | figure | value |", "|---|---|---|", *rows, "",
            "Rendered figures are measured on this project's own drawings of streets: they are not real-world figures.",
            ""]


def write_card(path: Path, info: dict) -> None:
    """The model card: data, classes, settings, measured figures and limits. Also kept as JSON."""
    path.with_suffix(".json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    ev = info.get("metrics", {})
    lines = [
        f"# Model card: {info['name']}", "",
        (f"YOLO detector for vaudit ({info.get('arch', 'yolov8n')}, {info['imgsz']} px input, "
        f"{info.get('size_mb', '?')} MB). Produced by `{info['command']}`."), "",
        *side_by_side(info),
        "## Classes", "",
        *[f"- {i} `{c}`" for i, c in enumerate(CLASSES)], "",
        ("`garbage`, `illegal_parking` and `stall` feed the violation categories (configs/default.yaml: "
        "model.classes); `vehicle`, `bin` and `person` are hard negatives the model learns to tell apart."), "",
        "## Training data", "",
        *[f"- {d}" for d in info["data"]], "",
        "## Training", "",
        (f"- epochs: {info['epochs']}, training image size {info.get('train_imgsz', info['imgsz'])}, batch "
         f"{info.get('batch')}, " + (f"fine-tuned from {info['base']}" if info.get("base")
                                     else "from scratch (architecture YAML, no pretrained weights)")),
        f"- machine: {info['machine']}; training time {info['train_seconds'] / 60:.1f} min", "",
    ]
    if info.get("real"):
        real = info["real"]
        lines += [
            (f"## Measured on real photos (held out, never trained or tuned on; {real['imgsz']} px, "
             f"{real['precision']}, the default config's thresholds)"), "",
            "| set | photos | class | boxes | AP50 ± standard error | recall | precision |", "|---|---|---|---|---|---|---|",
            *[(f"| {name} | {s['photos']} | {c} | {r['boxes']} | {r['AP50']} ± {r['AP50_se']} | {r['recall']} | "
               f"{r['precision']} |") for name, s in real["sets"].items() for c, r in s["per_class"].items()],
            "", ("The standard error is the spread of AP50 over bootstrap resamples of the photos: the noise of "
                 "the figure (tests/test_model.py fails below the figure minus twice it)."), "",
        ]
    lines += [
        "## Measured on rendered frames (held out)", "",
        "| set | class | precision | recall | mAP50 |", "|---|---|---|---|---|",
    ]
    for set_name, res in ev.items():
        lines.append(f"| {set_name} | all | {res['all']['precision']} | {res['all']['recall']} | {res['all']['mAP50']} |")
        for c, r in res["per_class"].items():
            lines.append(f"| {set_name} | {c} | {r['precision']} | {r['recall']} | {r['mAP50']} |")
    if info.get("events"):
        lines += ["", "## Violations found in footage (the whole pipeline, at the configured thresholds)", "",
                  *[f"- {k}: {v}" for k, v in info["events"].items()]]
    lines += ["", "## Limits", "", *[f"- {x}" for x in info.get("limits", [])], ""]
    path.write_text("\n".join(lines))


def _render_chunk(args: tuple[Path, int, int, int, int, Path | None, dict | None]) -> Path:
    from .synth import render_dataset

    out, seed, count, w, h, real, mix = args
    return render_dataset(out, seed=seed, count=count, size=(w, h), real_garbage_dir=real, mix=mix)


def render_synthetic(out: Path, count: int, seed: int, size: tuple[int, int], real: Path | None,
                     jobs: int = 1, mix: dict[str, float] | None = None) -> list[Path]:
    """Render ``count`` training images in ``jobs`` processes (distinct seeds, one dataset folder each)."""
    from multiprocessing import get_context

    jobs = max(1, min(jobs, count // 50 or 1))
    per = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
    args = [(out / f"part{i}", seed * 1000 + i, n, size[0], size[1], real, mix) for i, n in enumerate(per)]
    if jobs == 1:
        return [_render_chunk(args[0])]
    with get_context("spawn").Pool(jobs) as pool:
        return pool.map(_render_chunk, args)


def train_recipe(out: Path, *, data: list[Path] = (), synth: int = 0, synth_seed: int = 1, real: Path | None = None,
                 epochs: int = 30, imgsz: int = 416, batch: int = 32, base: Path | None = None,
                 arch: str = "yolov8n.yaml", workers: int = 2, jobs: int = 2, work: Path | None = None,
                 command: str = "vaudit train", resume: bool = False, hours: float | None = None,
                 synth_mix: dict[str, float] | None = None, paste_real: bool = True, mine: int = 0,
                 real_sets: Path | None = None) -> dict:
    """Everything `vaudit train` does: gather data, train, measure on held-out sets, write the card.

    Each model gets its own work folder (runs/train/<name>), so a fine-tune can read the data.yaml of
    the run it continues."""
    # read now, not after hours of training: a config edited (or a schema changed) meanwhile must not
    # lose the run's card, and a broken one should fail before training starts
    cfg = load() if real_sets else None
    work = (work or Path("runs/train") / out.stem).resolve()
    work.mkdir(parents=True, exist_ok=True)
    yamls = [Path(d).resolve() for d in data]
    sources = []
    synth_yamls = []
    if synth:
        paste = real if paste_real else None
        synth_yamls = render_synthetic(work / "synth", synth, synth_seed, (640, 384), paste, jobs, synth_mix)
        yamls += [mine_hardest(base, synth_yamls, mine, imgsz, work)] if mine and base else synth_yamls
        mix_note = f", violation mix {synth_mix}" if synth_mix else ""
        sources.append(f"{synth} synthetic street frames rendered by `vaudit synth --dataset` (seed {synth_seed}"
                       f"{mix_note}), {'with real woosong bags pasted in (train split only); ' if paste else ''}"
                       "85/15 train/val"
                       + (f"; of the train split only the {mine} frames the base model got most wrong were kept"
                          if mine and base else ""))
    real_yaml, rules = None, {}
    if real_sets:
        for y, folder, labelled, note in real_training_sets(real_sets, work / "real").values():
            yamls.append(y)
            rules[str(folder)] = labelled
            sources.append(note)
    elif real:
        real_yaml = woosong_to_yolo(real, work / "woosong")
        yamls.append(real_yaml)
        sources.append(WOOSONG_CREDIT + ": train split (983) for training, valid split (190) held out")
    for d in data:
        sources.append(f"user dataset {d}")
    merged = merge_data(yamls, work / "data.yaml")
    partial_rules = None
    if rules:
        from .partial import write_rules

        partial_rules = write_rules(work / "partial-labels.json", rules)
    res = train(merged, out, base=base, arch=arch, epochs=epochs, imgsz=imgsz, batch=batch, workers=workers,
                project=work / "runs", resume=resume, hours=hours, partial_rules=partial_rules)
    metrics = {}
    if synth_yamls:
        metrics["synthetic val"] = evaluate(out, merge_data(synth_yamls, work / "synth-val.yaml"), imgsz)
    if real_yaml:
        metrics["woosong valid (real)"] = evaluate(out, real_yaml, imgsz)
    info = {
        **({"real": measure_real(out, real_sets, cfg)} if real_sets else {}),
        "name": out.stem, "arch": arch.replace(".yaml", ""), "imgsz": imgsz, "epochs": res.epochs, "batch": batch,
        "size_mb": round(out.stat().st_size / 1e6, 1), "command": command, "data": sources,
        "machine": res.device, "train_seconds": round(res.seconds, 1), "metrics": metrics,
        **({"base": str(base)} if base else {}),
    }
    return info


def measure_real(model: Path, data: Path, cfg: Config | None = None) -> dict:
    """The model alone on every real set's holdout, as `vaudit evaluate --real-sets` measures it: the
    (default) config's input size, precision and thresholds."""
    from .realdata import available
    from .realeval import evaluate_real

    return evaluate_real(cfg or load(), available(data), model=model, data=data)


SMALL_SET_IMAGES = 700  # a real set with fewer training photos is linked repeatedly up to about this many


def real_training_sets(data: Path, out: Path) -> dict[str, tuple[Path, Path, list[int], str]]:
    """Every real set in ``data`` (pipeline/realdata.py) as a YOLO folder: name -> (data.yaml, training image
    folder, labelled class ids, a line for the card)."""
    from .realdata import available, images, write_yolo

    sets = {}
    for rs in available(data):
        n_train, n_hold = len(images(rs, "train", data)), len(images(rs, "holdout", data))
        repeat = max(1, round(SMALL_SET_IMAGES / max(1, n_train)))
        y = write_yolo(rs, out / rs.name, data=data, repeat=repeat)
        labelled = sorted(CLASSES.index(c) for c in rs.labelled)
        note = (f"{rs.name} ({rs.credit}): {n_train} training photos" + (f" (each seen {repeat}x)" if repeat > 1 else "")
                + f", {n_hold} held out; loss only for {', '.join(sorted(rs.labelled))} (the classes it labels)")
        sets[rs.name] = (y, (out / rs.name / "images" / "train").resolve(), labelled, note)
    return sets


def mine_hardest(base: Path, yamls: list[Path], keep: int, imgsz: int, work: Path) -> Path:
    """A data.yaml whose train split is the ``keep`` rendered frames ``base`` gets most wrong at the
    pipeline's thresholds (pipeline/mining.py); the val splits stay whole."""
    import sys

    from . import config as config_mod
    from .mining import hardest, mistakes

    cfg = config_mod.load(None)
    thresholds = {CLASSES.index(cls): cfg.categories[cat].confidence for cls, cat in cfg.model.classes.items()}
    images, val = [], []
    for y in yamls:
        d = yaml.safe_load(Path(y).read_text())
        images += sorted((Path(d["path"]) / d["train"]).glob("*.jpg"))
        val.append(str(Path(d["path"]) / d["val"]))

    def say(done: int, total: int) -> None:
        if done % 1024 < 16 or done == total:
            print(f"mining: {done}/{total} frames", file=sys.stderr, flush=True)

    found = mistakes(base, images, thresholds, imgsz, say)
    kept = hardest(found, keep)
    work.mkdir(parents=True, exist_ok=True)
    listing = work / "mined-train.txt"
    listing.write_text("".join(f"{p}\n" for p in kept))
    (work / "mined.json").write_text(json.dumps(
        {"frames": len(found), "kept": len(kept), "with_mistakes": sum(1 for m in found if m.count),
         "missed": sum(m.missed for m in found), "false": sum(m.false for m in found)}, indent=1) + "\n")
    out = work / "mined.yaml"
    out.write_text(yaml.safe_dump({"path": str(work), "train": str(listing), "val": val,
                                   "names": dict(enumerate(CLASSES))}, sort_keys=False))
    return out


def evaluate_recipe(weights: Path, *, synth: int = 0, synth_seed: int = 1, real: Path | None = None,
                    imgsz: int = 320, jobs: int = 2, work: Path = Path("runs/eval")) -> dict:
    """Reproduce a model card's figures: re-render the same seeded synthetic set (its val split was held
    out from training) and convert the real woosong valid split, then measure on both."""
    work = work.resolve()
    metrics = {}
    if synth:
        yamls = render_synthetic(work / "synth", synth, synth_seed, (640, 384), real, jobs)
        metrics["synthetic val"] = evaluate(weights, merge_data(yamls, work / "synth-val.yaml"), imgsz)
    if real:
        metrics["woosong valid (real)"] = evaluate(weights, woosong_to_yolo(real, work / "woosong"), imgsz)
    return metrics
