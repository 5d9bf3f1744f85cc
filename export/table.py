"""Plain-text tables for the terminal (the summary after export, verify and bench)."""
from __future__ import annotations


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; numbers should already be strings."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)),
             "  ".join("-" * width for width in widths)]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"
