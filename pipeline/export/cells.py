"""Spreadsheet cells that cannot run: text that Excel or LibreOffice would read as a formula is kept text.

A district, an inspector or a file name comes from a folder name or a manifest that anyone filling the
inbox can write, so ``=HYPERLINK("http://…","点此")`` must arrive in the assessor's spreadsheet as
those characters, not as a live formula. CSV has no cell types, so such text gets a leading apostrophe
(the OWASP advice: the spreadsheet shows the text, not a result). In an XLSX the cell is stored as a
string and marked "quote prefix", as Excel itself marks text typed after an apostrophe.
"""

from __future__ import annotations

import re

# what a spreadsheet treats as the start of a formula (tab and CR: some strip them, then see the rest)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def risky(value: object) -> bool:
    """Text a spreadsheet could take for a formula; plain numbers such as ``-3`` or ``+12.5%`` are not."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value)


def csv_cell(value: object) -> object:
    """``value`` made inert for a CSV file: risky text gets a leading apostrophe, the rest is unchanged."""
    return "'" + value if risky(value) else value


def csv_row(row: list) -> list:
    return [csv_cell(v) for v in row]


def inert_xlsx_cells(sheet) -> int:
    """Turn every formula openpyxl made from a risky string in ``sheet`` back into plain, quote-prefixed
    text (openpyxl stores any string starting with '=' as a formula). Returns how many cells it changed."""
    changed = 0
    for row in sheet.iter_rows():
        for cell in row:
            if risky(cell.value):
                cell.data_type = "s"
                cell.quotePrefix = True
                changed += 1
    return changed
