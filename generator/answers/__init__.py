"""Stage 2, the answers: parameters drawn per variant (`sampling`), exact keys from SymPy
(`solve`, with index forms from `indexform`), each checked by an independent numeric method
(`verify`), and exact values as floats (`floats`)."""
