"""Property-based: any invalid config or manifest fails with a one-line message naming the key or line."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import config as config_mod
from pipeline.config import ConfigError
from pipeline.ingest import IngestError, read_manifest

DEFAULT = yaml.safe_load(config_mod.DEFAULT_CONFIG.read_text(encoding="utf-8"))
junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                                           st.integers(), max_size=2))


def paths(d: dict, prefix=()) -> list[tuple]:
    out = []
    for k, v in d.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += paths(v, (*prefix, k))
    return out


LEAVES = paths(DEFAULT)


def set_path(d: dict, path: tuple, value) -> dict:
    import copy

    d = copy.deepcopy(d)
    cur = d
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(LEAVES), value=junk)
def test_any_mutated_config_loads_or_names_the_key(tmp_path, path, value):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(set_path(DEFAULT, path, value), allow_unicode=True), encoding="utf-8")
    try:
        config_mod.load(p)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg
        assert str(p) in msg
        # names the key it rejects (or one above it, e.g. categories when one is missing)
        assert any(str(k) in msg for k in path) or "top level" in msg, msg


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_arbitrary_yaml_text_never_raises_anything_else(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        config_mod.load(p)
    except ConfigError as e:
        assert "\n" not in str(e)


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(cell, min_size=1, max_size=5), rows=st.lists(st.lists(cell, max_size=5), max_size=6))
def test_any_manifest_parses_or_names_the_line(tmp_path, header, rows):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    p = tmp_path / "m.csv"
    p.write_text(buf.getvalue(), encoding="utf-8")
    try:
        read_manifest(Path(p), ZoneInfo("Asia/Shanghai"))
    except IngestError as e:
        assert "\n" not in str(e)
        assert "line " in str(e)
