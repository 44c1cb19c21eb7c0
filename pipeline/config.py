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
    path: str = "models/vaudit-det-ft.pt"
    # further weights with the same classes, run on the same frames; their boxes are fused with the main
    # model's (pipeline/detect.py: fuse). Each member adds the detector's cost.
    ensemble: list[str] = Field(default_factory=list)
    imgsz: int = Field(416, ge=64, le=2048, multiple_of=32)
    backend: Literal["torch", "onnx", "openvino"] = "onnx"
    batch: int = Field(4, ge=1, le=64)
    threads: int = Field(0, ge=0, le=256)  # inference threads for the onnx backend; 0 = let the runtime decide
    # int8: the onnx export quantised (pipeline/quantize.py), calibrated on synthetic frames; onnx only
    precision: Literal["fp32", "int8"] = "fp32"
    classes: dict[str, Literal["garbage", "parking", "stall"]] = Field(
        default_factory=lambda: {"garbage": "garbage", "illegal_parking": "parking", "stall": "stall"}
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
    rate: float = Field(1.0, gt=0, le=30)
    scene_keyframes: bool = True
    max_side: int = Field(1280, ge=160, le=7680)


class EventsConfig(_Strict):
    max_gap_s: float = Field(2.5, gt=0, le=60)
    min_iou: float = Field(0.05, ge=0, le=1)


class CategoryConfig(_Strict):
    zh: str
    en: str
    confidence: float = Field(0.35, gt=0, lt=1)
    min_hits: int = Field(2, ge=1)
    min_duration_s: float = Field(1.0, ge=0)
    merge_gap_s: float = Field(8.0, ge=0)
    clip_pre_s: float = Field(3.0, ge=0, le=60)
    clip_post_s: float = Field(3.0, ge=0, le=60)
    max_residual_motion: float | None = Field(None, gt=0)
    # a second box mostly inside a tracked one is a part of the same object (a stall's canopy, one bag of
    # a pile); false where two objects of the category often stand one behind the other (parked vehicles)
    fold_nested: bool = True

    def label(self) -> str:
        return f"{self.zh} {self.en}"


class DistrictConfig(_Strict):
    en: str | None = None
    aliases: list[str] = Field(default_factory=list)


class ReviewConfig(_Strict):
    """Settings of the review web app (``vaudit serve``); they change no evidence, so no run key."""

    # addresses (or networks, e.g. 10.0.0.0/24) of reverse proxies whose X-Forwarded-For is believed;
    # none by default: the peer's own address is the client, whatever headers it sends
    trusted_proxies: list[str] = Field(default_factory=list)

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
    timezone: str = "Asia/Shanghai"
    model: ModelConfig = Field(default_factory=ModelConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    categories: dict[str, CategoryConfig]
    districts: dict[str, DistrictConfig] = Field(default_factory=dict)
    review: ReviewConfig = Field(default_factory=ReviewConfig)

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
        if set(self.categories) != set(CATEGORY_IDS):
            raise ValueError(f"categories must define exactly {', '.join(CATEGORY_IDS)}; got {sorted(self.categories)}")
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
