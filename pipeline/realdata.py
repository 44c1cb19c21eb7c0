"""Real labelled photo sets: their class mappings, their fixed train / holdout split, and YOLO folders.

Each real set labels only some of vaudit's classes (woosong boxes bags, cn-garbage-overflow rubbish and
bins, in-street-vehicles vehicles). ``RealSet.labelled`` says which: training masks the other classes'
loss on that set's images (pipeline/partial.py), so an unboxed real car in a rubbish photo does not teach
the model that a real car is background.

The holdout split is fixed by a rule, never chosen: a set's own ``valid`` split where it has one (its
train photos from the same source photo are left out of training), else the source photos whose name
hashes into the lowest ``HOLDOUT_SHARE`` (the name before Roboflow's ``.rf.``
suffix, so two exports of one photo fall on the same side). Nothing is ever tuned on a holdout split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml

from .records import CLASSES

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HOLDOUT_SHARE = 0.2  # of a set that ships no split of its own
SPLITS = ("train", "holdout")


@dataclass(frozen=True)
class RealSet:
    name: str
    classes: dict[int, str]  # the set's class id -> vaudit class
    labelled: frozenset[str]  # vaudit classes boxed wherever they occur in the set's photos
    credit: str = ""
    # where the photos are: "splits" train|valid/images/, "hashed" images/ split by HOLDOUT_SHARE,
    # "flat" images/ all held out (a user's folder, measured only)
    layout: Literal["splits", "hashed", "flat"] = "splits"
    path: Path | None = None  # a folder of its own; else ``data/name``

    def root(self, data: Path = SHARED_DATA) -> Path:
        return self.path or data / self.name


def folder_set(path: Path, classes: dict[int, str]) -> RealSet:
    """Any YOLO folder (``images/`` + ``labels/``, or ``valid/images`` + ``valid/labels``) to measure on."""
    path = Path(path)
    if path.name in REAL_SETS and not classes:
        return replace(REAL_SETS[path.name], path=path)
    unknown = set(classes.values()) - set(CLASSES)
    if not classes or unknown:
        raise ValueError(f"{path}: give a class mapping onto vaudit's classes {CLASSES}, e.g. 0=garbage,1=vehicle"
                         + (f" (unknown: {sorted(unknown)})" if unknown else ""))
    layout = "flat" if (path / "images").is_dir() else "splits"
    if layout == "splits" and not (path / "valid" / "images").is_dir():
        raise ValueError(f"{path}: no images/ or valid/images/ folder with YOLO labels beside it")
    return RealSet(path.name, dict(classes), frozenset(classes.values()), layout=layout, path=path)


REAL_SETS = {
    s.name: s for s in (
        RealSet(
            "cn-garbage-overflow", {0: "garbage", 1: "bin", 2: "garbage"}, frozenset({"garbage", "bin"}),
            "公开数据集111 (Roboflow Universe project-shb1t/-111-ehcfr), CC BY 4.0 as declared by its uploader; "
            "many photos carry news-site watermarks, so the images are used for training only and never "
            "redistributed", layout="hashed"),
        RealSet(
            "woosong-trashbags", {0: "garbage", 1: "garbage"}, frozenset({"garbage"}),
            "Woosong trash bags (Korea), Roboflow Universe woosongvision/trashbags-segmentation-v1-v2 via GitHub "
            "itsCaveMan/WoosongVision (commit 33a6b888), CC BY 4.0"),
        RealSet(
            # unboxed rubbish is rare in these traffic photos, so they also teach what is not garbage;
            # parked or not is the judge's question, so the illegal_parking class is left unlearned here
            "in-street-vehicles", {0: "vehicle", 1: "vehicle", 2: "vehicle"}, frozenset({"vehicle", "garbage"}),
            "Modes of Transport dataset by Roboflow user ts-2qpml (Roboflow Universe ts-2qpml/modes-of-transport), "
            "CC BY 4.0"),
    )
}


def source_name(image: Path) -> str:
    """The source photo a Roboflow export image came from (``IMG_1_jpg.rf.<hash>.jpg`` -> ``IMG_1_jpg``)."""
    return image.name.split(".rf.")[0] if ".rf." in image.name else image.stem


def in_holdout(image: Path) -> bool:
    digest = hashlib.sha256(source_name(image).encode()).digest()
    return int.from_bytes(digest[:4], "big") < HOLDOUT_SHARE * 2**32


def images(rs: RealSet, split: str, data: Path = SHARED_DATA) -> list[Path]:
    """The set's photos of one split ('train' or 'holdout'), sorted."""
    root = rs.root(data)
    if rs.layout == "splits":
        held = _pictures(root / "valid" / "images")
        if split == "holdout":
            return held
        # a set's own split can put two exports of one photo on both sides (woosong: 31 photos)
        seen = {source_name(p) for p in held}
        return [p for p in _pictures(root / "train" / "images") if source_name(p) not in seen]
    if rs.layout == "flat":
        return _pictures(root / "images") if split == "holdout" else []
    return [p for p in _pictures(root / "images") if in_holdout(p) == (split == "holdout")]


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def label_path(rs: RealSet, image: Path) -> Path:
    return image.parent.parent / "labels" / (image.stem + ".txt")


def boxes(rs: RealSet, image: Path) -> list[tuple[str, float, float, float, float]]:
    """(vaudit class, cx, cy, w, h) normalised, for one photo."""
    lab = label_path(rs, image)
    out = []
    for row in (lab.read_text().splitlines() if lab.exists() else []):
        v = row.split()
        if len(v) < 5 or int(v[0]) not in rs.classes:
            continue
        cls = rs.classes[int(v[0])]
        if len(v) >= 7:  # a segmentation polygon: its extent is the box
            xs, ys = [float(x) for x in v[1::2]], [float(y) for y in v[2::2]]
            x1, x2, y1, y2 = max(0.0, min(xs)), min(1.0, max(xs)), max(0.0, min(ys)), min(1.0, max(ys))
            if x2 - x1 > 0.005 and y2 - y1 > 0.005:
                out.append((cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
        elif len(v) == 5:
            out.append((cls, *map(float, v[1:5])))
    return out


def write_yolo(rs: RealSet, out: Path, *, data: Path = SHARED_DATA, repeat: int = 1) -> Path:
    """The set as a YOLO folder of vaudit's classes: ``out/images/{train,holdout}`` (symlinks: the photos
    stay where they are and never enter the project) and converted labels. ``repeat`` links each training
    photo that many times (a small set oversampled). Returns its data.yaml."""
    for split in SPLITS:
        img_out, lab_out = out / "images" / split, out / "labels" / split
        img_out.mkdir(parents=True, exist_ok=True)
        lab_out.mkdir(parents=True, exist_ok=True)
        for img in images(rs, split, data):
            lines = "".join(f"{CLASSES.index(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
                            for c, cx, cy, w, h in boxes(rs, img))
            for k in range(repeat if split == "train" else 1):
                stem = img.stem if k == 0 else f"{img.stem}~{k}"
                link = img_out / (stem + img.suffix)
                if not link.is_symlink():
                    link.symlink_to(img.resolve())
                (lab_out / (stem + ".txt")).write_text(lines)
    spec = {"path": str(out.resolve()), "train": "images/train", "val": "images/holdout",
            "names": dict(enumerate(CLASSES))}
    (out / "data.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return out / "data.yaml"


def available(data: Path = SHARED_DATA) -> list[RealSet]:
    """The real sets present on this machine."""
    return [rs for rs in REAL_SETS.values() if rs.root(data).is_dir()]
