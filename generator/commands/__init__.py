"""The author's commands beside `build`: `check` (validate and verify), `preview` (one question
as PDF and PNGs) and `list` (`listing`)."""
