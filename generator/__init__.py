"""Worksheet and answer-key generator: YAML specs -> SymPy keys -> Jinja LaTeX -> PDFs."""

import os

# numpy's OpenBLAS starts a thread per core when numpy is imported, and that thread spins for a
# while (about 0.1 s of CPU per process here, on the core that starts the first pdflatex runs
# while a build imports its modules). The arrays here are a few entries: one thread is all
# BLAS needs. Set before numpy is first imported (any generator module comes after this one);
# a value the user set is kept.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
__all__ = ["__version__"]
