"""Stage 4, typesetting: pdflatex runs (`compile`), kept and preloaded formats and runs started
early (`formats`), all copies of a document kind in one run (`batch`), cut into per-copy PDFs
(`split`) and joined into print files (`combine`)."""
