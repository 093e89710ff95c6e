"""Spreadsheets (xlsx, xls) read as tables of cells."""

from __future__ import annotations

import io

from molehunt.pii.files.cells import scan_table
from molehunt.pii.files.common import FileScan, Job, Refused


def scan_workbook(job: Job, data: bytes, result: FileScan) -> None:
    """Every sheet of a spreadsheet (xlsx or xls) as a table of cells, within the cell limit."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    cells = 0
    for name in book.sheet_names:
        sheet = book.get_sheet_by_name(name)
        cells += sheet.total_height * max(sheet.total_width, 1)
        if cells > job.limits.max_cells:
            raise Refused(f"too many cells ({cells}, limit {job.limits.max_cells})")
        scan_table(job, name, sheet.to_python(skip_empty_area=False), result)
