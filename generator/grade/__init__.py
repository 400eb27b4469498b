"""Marking responses against manifest.json: `python -m generator grade` (docs/grading.md)."""
