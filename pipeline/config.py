"""Configuration: pydantic models for ``configs/*.yaml`` and one ``load()`` with clear errors.

A config mistake found after an hour of processing wastes the hour, so everything is validated up
front and unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"


CATEGORY_IDS = ("garbage", "parking", "stall")


class ConfigError(Exception):
    """A user-fixable configuration problem; the message names the key and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    path: str = Field("models/vaudit-det-real2.pt", description=(
        "the detector's weights (models/ holds the shipped ones, each with its card); relative paths resolve "
        "against the project root, then the working folder"))
    ensemble: list[str] = Field(default_factory=list, description=(
        "further weights with the same classes run on the same frames, boxes fused with the main model's "
        "(confidences averaged); each adds the detector's cost; [] runs the main model alone"))
    imgsz: int = Field(640, ge=64, le=2048, multiple_of=32, description=(
        "inference size in pixels: larger finds smaller, more distant objects and costs more"))
    backend: Literal["torch", "onnx", "openvino"] = Field("onnx", description=(
        "torch, onnx or openvino: an export of the same weights, made on first use and cached by their hash"))
    batch: int = Field(4, ge=1, le=64, description="frames per inference call")
    threads: int = Field(0, ge=0, le=256, description="onnx inference threads; 0 lets ONNX Runtime decide")
    precision: Literal["fp32", "int8"] = Field("int8", description=(
        "int8 quantises the onnx export once (calibrated on rendered frames, cached beside it); onnx only"))
    classes: dict[str, Literal["garbage", "parking", "stall"]] = Field(
        default_factory=lambda: {"garbage": "garbage", "illegal_parking": "parking", "stall": "stall"},
        description="model class -> violation category; classes not named are context (vehicle, bin, person)",
    )

    @model_validator(mode="after")
    def _int8_needs_onnx(self) -> ModelConfig:
        if self.precision == "int8" and self.backend != "onnx":
            raise ValueError(f"precision int8 needs backend onnx (backend is {self.backend})")
        return self

    def all_paths(self) -> list[str]:
        return [self.path, *self.ensemble]

    def resolved_path(self, path: str | None = None) -> Path:
        """``path`` (default: the main model's) resolved against the project root, then the CWD."""
        p = Path(path or self.path).expanduser()
        if p.is_absolute():
            return p
        for base in (PROJECT_ROOT, Path.cwd()):
            if (base / p).exists():
                return base / p
        return PROJECT_ROOT / p


class SamplingConfig(_Strict):
    rate: float = Field(1.0, gt=0, le=30, description=(
        "sampled frames per second: 1/s decodes only the keyframes of the usual 1 s GOP; 2/s must decode "
        "half of every GOP"))
    scene_keyframes: bool = Field(True, description="also sample keyframes the encoder inserted off-grid (scene cuts)")
    max_side: int = Field(1280, ge=160, le=7680, description="frames larger than this are downscaled before detection")


class EventsConfig(_Strict):
    max_gap_s: float = Field(2.5, gt=0, le=60, description="a track survives this long without a detection")
    min_iou: float = Field(0.05, ge=0, le=1, description="association threshold once camera motion is taken out")


class CategoryConfig(_Strict):
    zh: str = Field(description="Chinese name, as shown to analysts and in exports")
    en: str = Field(description="English name")
    confidence: float = Field(0.35, gt=0, lt=1, description=(
        "detections below this are not evidence of the category (chosen per model on rendered tuning "
        "footage: see the README)"))
    min_hits: int = Field(2, ge=1, description="sampled frames that must see the object")
    min_duration_s: float = Field(1.0, ge=0, description="seconds from first to last sighting")
    merge_gap_s: float = Field(8.0, ge=0, description=(
        "tracks this close in time at the same place (camera motion taken out) are one object that left "
        "the view and came back"))
    clip_pre_s: float = Field(3.0, ge=0, le=60, description="evidence clip starts this long before the first sighting")
    clip_post_s: float = Field(3.0, ge=0, le=60, description="and ends this long after the last")
    max_residual_motion: float | None = Field(None, gt=0, description=(
        "box heights per second not explained by camera motion: more is a moving object (null: no limit)"))
    fold_nested: bool = Field(True, description=(
        "a box mostly inside a tracked one is part of the same object (a stall's canopy, one bag of a "
        "pile); false where objects stand one behind another (vehicles parked in a row)"))
    merge_touching: bool = Field(False, description=(
        "tracks whose boxes touch in the frames they share are one object: bags heaped together are one "
        "pile and one violation, not one per bag"))

    def label(self) -> str:
        return f"{self.zh} {self.en}"


# What differs per category; every other key takes CategoryConfig's default. A config's categories
# section overrides these key by key.
CATEGORY_DEFAULTS: dict[str, dict] = {
    "garbage": {"zh": "暴露垃圾", "en": "Exposed garbage", "confidence": 0.15, "merge_touching": True},
    "parking": {"zh": "违规停车", "en": "Illegal parking", "confidence": 0.50, "max_residual_motion": 0.8,
                "fold_nested": False},
    "stall": {"zh": "占道经营", "en": "Street stall", "confidence": 0.35},
}


class DistrictConfig(_Strict):
    en: str | None = Field(None, description="English name")
    aliases: list[str] = Field(default_factory=list, description="folder or manifest spellings of the name")


class ReviewConfig(_Strict):
    """Settings of the review web app (``vaudit serve``); they change no evidence, so no run key."""

    trusted_proxies: list[str] = Field(default_factory=list, description=(
        "reverse proxies (addresses or networks, e.g. 10.0.0.0/24) whose X-Forwarded-For names the client; "
        "[]: the connecting address is the client, forwarded headers are ignored"))

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
        return v


class Config(_Strict):
    timezone: str = Field("Asia/Shanghai", description="wall-clock times are shown and counted in this zone")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the detector")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="which frames are decoded")
    events: EventsConfig = Field(default_factory=EventsConfig, description="tracking one object across frames")
    categories: dict[str, CategoryConfig] = Field(
        default_factory=lambda: {k: CategoryConfig(**v) for k, v in CATEGORY_DEFAULTS.items()},
        description="the three violation categories and when a track becomes one")
    districts: dict[str, DistrictConfig] = Field(default_factory=dict, description=(
        "districts and townships: names are shown as written; aliases map folder or manifest spellings"))
    review: ReviewConfig = Field(default_factory=ReviewConfig, description=(
        "the review web app (vaudit serve); not part of a run: changing it re-runs nothing"))

    @model_validator(mode="before")
    @classmethod
    def _category_defaults(cls, data):
        """A categories section overrides CATEGORY_DEFAULTS key by key; a category left out keeps them."""
        if isinstance(data, dict) and isinstance(data.get("categories"), dict):
            given = data["categories"]
            # a category that is not a mapping is left as it is, for validation to name it
            merged = {k: {**v, **given[k]} if isinstance(given.get(k), dict) else given.get(k, v)
                      for k, v in CATEGORY_DEFAULTS.items()}
            merged.update({k: v for k, v in given.items() if k not in CATEGORY_DEFAULTS})
            data = {**data, "categories": merged}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from e
        return v

    @model_validator(mode="after")
    def _categories_complete(self) -> Config:
        unknown = sorted(set(self.categories) - set(CATEGORY_IDS))
        if unknown:
            raise ValueError(f"unknown categories {unknown}: the categories are {', '.join(CATEGORY_IDS)}")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def category_label(self, category: str) -> str:
        c = self.categories.get(category)
        return c.label() if c else category

    def canonical_district(self, name: str | None) -> str | None:
        """Map a folder or manifest spelling to the configured district name (case-insensitive alias)."""
        if not name:
            return None
        low = name.strip().lower()
        for canonical, d in self.districts.items():
            if low == canonical.lower() or low in (a.lower() for a in d.aliases):
                return canonical
        return name.strip()

    def snapshot(self) -> dict:
        """What a run records and its key hashes: the review server's settings are not part of it."""
        return self.model_dump(mode="json", exclude={"review"})

    def sha256(self) -> str:
        blob = json.dumps(self.snapshot(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _describe(err: ValidationError, origin: str) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = " ".join(str(e["msg"]).split())
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "literal_error":
        msg = f"{msg}, got {e.get('input')!r}"
    more = f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return f"{origin}: {where}: {msg}{more}"


def load(path: str | Path | None = None) -> Config:
    """Load and validate a config file; the default one when ``path`` is None."""
    p = Path(path) if path else DEFAULT_CONFIG
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        why = " ".join(str(getattr(e, "problem", None) or e).split())  # one line, whatever YAML says
        raise ConfigError(f"{p}: not valid YAML{line}: {why}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, str(p))) from None
