from pathlib import Path

import pytest

from pipeline import config as config_mod
from pipeline.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_config_loads_with_chinese_names():
    cfg = config_mod.load()
    assert cfg.categories["garbage"].zh == "暴露垃圾"
    assert cfg.categories["parking"].zh == "违规停车"
    assert cfg.categories["stall"].zh == "占道经营"
    assert cfg.category_label("stall") == "占道经营 Street stall"
    assert cfg.canonical_district("chengguan") == "城关镇"
    assert cfg.canonical_district("somewhere else") == "somewhere else"
    assert len(cfg.sha256()) == 64


def default_text() -> str:
    return config_mod.DEFAULT_CONFIG.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("rate: 1.0", "rate: -1"), "sampling.rate"),
        (("backend: onnx", "backend: tensorflow"), "model.backend"),
        (("backend: onnx", "backend: torch"), "precision int8 needs backend onnx"),
        (("timezone: Asia/Shanghai", "timezone: Mars/Olympus"), "unknown time zone"),
        (("  max_gap_s: 2.5", "  max_gap_s: 2.5\n  typo_key: 1"), "events.typo_key: unknown key"),
        (("Illegal parking\n    confidence: ", "Illegal parking\n    confidence: 2 # was "), "categories.parking.confidence"),
    ],
)
def test_wrong_value_names_the_key(tmp_path, edit, expected):
    text = default_text()
    assert edit[0] in text
    with pytest.raises(ConfigError) as e:
        config_mod.load(write(tmp_path, text.replace(edit[0], edit[1], 1)))
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_a_config_needs_only_the_keys_it_changes(tmp_path):
    """Every default is written once (pipeline/config.py): a one-key config is the default but that key."""
    default = config_mod.load().model_dump()
    cfg = config_mod.load(write(tmp_path, "categories:\n  garbage: {confidence: 0.3}\n")).model_dump()
    assert cfg["categories"]["garbage"]["confidence"] == 0.3
    cfg["categories"]["garbage"]["confidence"] = default["categories"]["garbage"]["confidence"]
    assert cfg == {**default, "districts": {}}  # districts are site data: the shipped file's are examples


def test_default_yaml_and_readme_table_are_generated_from_the_schema():
    from pipeline import configdoc

    assert configdoc.main(["--check"]) == 0, "run python -m pipeline.configdoc --write"
    text = default_text()
    for name, field in config_mod.ModelConfig.model_fields.items():
        assert f"  {name}:" in text and field.description.split()[0] in text


def test_unknown_category_and_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown categories"):
        config_mod.load(write(tmp_path, "categories:\n  litter: {zh: a, en: b}\n"))
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        config_mod.load(write(tmp_path, "a: 1\n b: [\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        config_mod.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_mod.load(write(tmp_path, "- 1\n- 2\n"))
