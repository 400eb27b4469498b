"""Stage 1, the spec: YAML files read with their line numbers (`yamlload`), checked into frozen
models (`model`: questions, worksheets, exams, the bank), the safe expression languages they
hold (`expr`, `indexnotation`), rosters (`roster`, `printable`), where a generated line came
from (`sourcemap`), and which questions each copy gets (`assemble`)."""
