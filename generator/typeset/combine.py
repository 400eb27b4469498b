"""Stage 7, combine: one print file per document kind holding every copy in order.

Each copy gets a bookmark (its variant, or the student's name and id). For two-sided printing
(the default) a blank page follows every copy with an odd number of pages, so that each copy
starts on the front of a sheet and can be separated after printing. pypdf writes no date and no
random file id, so the same inputs give the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

__all__ = ["combine_pdfs"]


def combine_pdfs(parts: Sequence[tuple[Path, str]], out: Path, *, two_sided: bool = True) -> None:
    """Concatenate the PDFs `parts` (path, bookmark title) into `out`."""
    from pypdf import PdfReader, PdfWriter  # only builds that make PDFs need it

    # pdfTeX's CJK fonts carry /ToUnicode twice; pypdf keeps one and would log a warning per font.
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        writer = PdfWriter()
        for path, title in parts:
            reader = PdfReader(path)
            writer.append(reader, outline_item=title)
            if two_sided and len(reader.pages) % 2:
                writer.add_blank_page()
        # Copies share most fonts and images: store each identical object once (about 4x smaller).
        writer.compress_identical_objects()
        with open(out, "wb") as f:
            writer.write(f)
    finally:
        logger.setLevel(level)
