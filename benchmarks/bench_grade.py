"""How long `grade` takes for a class: N response rows (default 1,000) against a real manifest.

    PYTHONPATH=. python3 benchmarks/bench_grade.py [--rows N]

Builds nn-backprop (no PDFs) with a 30-student roster into a temporary folder, writes N response
rows (the key's values, with every seventh entry off by one and every eleventh a fraction), and
times `generator.grade.grading.grade` (reading, parsing, marking and writing both CSVs), best of 5.
The goal (issue 19): well under a second per 1,000 rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.build import BuildOptions, build  # noqa: E402  (after sys.path is set)
from generator.grade.grading import GradeOptions, grade  # noqa: E402


def _flat(value, index=()):
    if not isinstance(value, list):
        return [(index, value)]
    return [pair for k, item in enumerate(value, 1) for pair in _flat(item, index + (k,))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    rows_wanted = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        roster = root / "roster.csv"
        roster.write_text("name,id\n" + "".join(f"Student {k},s{k:03d}\n" for k in range(30)), encoding="utf-8")
        build(BuildOptions(seed=42, bank=ROOT / "question_bank", out=root / "b", pdf=False, roster=roster, variants=6,
                           worksheets=("nn-backprop",)))
        manifest = json.loads((root / "b" / "manifest.json").read_text(encoding="utf-8"))
        variants = {v["id"]: {q["id"]: q for q in v["questions"]} for v in manifest["variants"]}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["student", "question", "part", "entry", "response"])
        rows = 0
        for copy in manifest["documents"][0]["copies"]:
            for slot in copy["questions"]:
                for part in variants[copy["variant"]][slot["id"]]["parts"]:
                    for index, value in _flat(part["value"]):
                        if rows == rows_wanted:
                            break
                        response = repr(value + 1) if rows % 7 == 0 else "1/3" if rows % 11 == 0 else repr(value)
                        writer.writerow([copy["student"], slot["id"], part["id"], ",".join(map(str, index)), response])
                        rows += 1
        (root / "r.csv").write_text(out.getvalue(), encoding="utf-8")
        times = []
        for _ in range(5):
            start = time.perf_counter()
            result = grade(GradeOptions(root / "r.csv", root / "b" / "manifest.json", force=True))
            times.append(time.perf_counter() - start)
        print(f"{result.rows} rows, {result.students} students: best {min(times):.3f} s, "
              f"median {sorted(times)[2]:.3f} s ({min(times) / max(1, result.rows) * 1e6:.0f} us a row)")


if __name__ == "__main__":
    main()
