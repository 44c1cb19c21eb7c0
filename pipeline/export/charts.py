"""PNG charts for the exposure meeting: who had how many of what, and where it is heading.

Matplotlib's object API on the Agg canvas (no pyplot, no GUI, no global figure state), with the CJK
font registered from the system file: nothing is downloaded, and the Chinese names render instead of
empty boxes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..config import Config
from ..fonts import FONT_CANDIDATES, cjk_font_path
from ..store import Store
from .counts import counts, dated_violations
from .periods import Period

TREND_MONTHS = 12
_CATEGORY_COLORS = {"garbage": "#e67e22", "parking": "#e74c3c", "stall": "#9b59b6"}


def _cjk_family() -> str:
    """Register the system CJK font with matplotlib and return its family name."""
    path = cjk_font_path()
    if path is None:
        raise RuntimeError(f"no CJK font found (looked for {', '.join(FONT_CANDIDATES)}): install fonts-noto-cjk")
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(family: str) -> dict:
    return {"font.family": family, "axes.unicode_minus": False}


def by_district_chart(store: Store, cfg: Config, period: Period, out: Path) -> Path:
    """Confirmed violations per district, stacked by category, ranked left to right."""
    t = counts(store, cfg, period)
    with rc_context(_style(_cjk_family())):
        fig = _figure(max(6.0, 1.1 * len(t.rows) + 3), 4.5)
        ax = fig.add_subplot()
        names = [r.label for r in t.rows]
        bottom = [0] * len(t.rows)
        for col in t.columns:
            heights = [r.cells[col.key] for r in t.rows]
            ax.bar(names, heights, bottom=bottom, label=col.label, color=_CATEGORY_COLORS.get(col.key))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        for x, total in enumerate(bottom):
            ax.annotate(str(total), (x, total), ha="center", va="bottom", xytext=(0, 2), textcoords="offset points")
        ax.set_title(f"{t.period_zh} 各区域违规数量（已确认）")
        ax.set_ylabel("违规数")
        ax.set_ylim(0, max(bottom + [1]) * 1.15)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper right")
        fig.savefig(out)
    return out


def trend_chart(store: Store, cfg: Config, period: Period, out: Path) -> Path:
    """Confirmed violations per month and district over the 12 months ending with the period."""
    months = period.last_months(TREND_MONTHS)
    found = dated_violations(store, months[0].start, months[-1].end, "confirmed")
    per = Counter((v["district"], v["when"].strftime("%Y-%m")) for v in found)
    districts = list(cfg.districts) + sorted({v["district"] for v in found} - set(cfg.districts))
    labels = [m.label for m in months]
    with rc_context(_style(_cjk_family())):
        fig = _figure(9.0, 4.5)
        ax = fig.add_subplot()
        for d in districts:
            ax.plot(labels, [per[(d, m)] for m in labels], marker="o", label=d)
        ax.set_title(f"近{TREND_MONTHS}个月各区域违规趋势（已确认，截至{months[-1].label_zh}）")
        ax.set_ylabel("违规数")
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(loc="upper left")
        fig.savefig(out)
    return out


def charts(store: Store, cfg: Config, period: Period, out_dir: Path) -> list[Path]:
    """Write the meeting's charts into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [by_district_chart(store, cfg, period, out_dir / f"by_district_{period.label}.png"),
            trend_chart(store, cfg, period, out_dir / f"trend_{period.label}.png")]
