"""Exports for assessment staff: counts tables, charts and the exposure-meeting pack."""

from .charts import charts
from .counts import CountsTable, counts, write_counts
from .pack import PackError, pack
from .periods import Period, parse_period
from .redact import RedactionError

__all__ = ["CountsTable", "PackError", "Period", "RedactionError", "charts", "counts", "pack", "parse_period",
           "write_counts"]
