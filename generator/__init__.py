"""Worksheet and answer-key generator: YAML specs -> SymPy keys -> Jinja LaTeX -> PDFs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
