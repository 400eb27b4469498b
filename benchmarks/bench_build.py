"""Benchmark of `python -m generator build` against the targets of the speed issue (a script, not a test).

In one run, on this machine:

1. t0: one bare pdflatex pass over a one-page article with amsmath (the median of 7 runs), and
   again just before each build (the median of 5): each build is reported as a multiple of the
   t0 taken beside it, since a shared machine's speed drifts over the minutes a run takes;
2. a cold build of N variants (default 50) of the counted worksheets - the two neural-network
   worksheets (`COUNTED`), sheet + key per copy (`--kinds sheet,key`), as the targets were set on
   them - into a fresh output folder (so no cache), `--repeat` times (default 3; the median counts);
3. the same build again, unchanged (a no-op rebuild);
4. the same build after editing one question (the title of nn-backprop's relu): an incremental
   rebuild (no target; shown for what a typo fix costs);
5. a cold build for a roster of S students (default 200) with awkward names, the same worksheets
   and kinds, one variant per student, also `--repeat` times;
6. for comparison (no target), a cold build of everything the default `build` makes: every
   worksheet and exam, with worked solutions too; with --full, also the roster that way;
7. the large cases (`--large N`, default 1000; 0 skips them): a cold build of N variants and one
   for an N-student roster, sheet + key;
8. `preview` of one question (softmax, PDF only), `--repeat` times;
9. each worksheet of the bank alone, N variants, sheet + key, cold: its cost per (variant,
   question) in wall and CPU milliseconds, so that a new worksheet's cost stands beside the old
   ones (the worksheets beyond neural networks are not in the counted build, whose target was set
   before they existed).

After each cold build it measures the floor in the same run: the build's own `.tex` pages typeset
by pdflatex alone, with the shared preamble preloaded, one run per core side by side
(`measure_floor`); each build is printed as a multiple of that floor as well as of t0, with the
bytes a page of its per-copy PDFs takes and what it wrote in all.

Each build runs in a subprocess of its own. For each it prints the wall time, pages per second
(pages of the per-copy PDFs), where the time went (Python stages until TeX starts, then the
compile stage: TeX runs and splitting, with the manifest and key table written meanwhile, in
wall seconds; and CPU seconds of Python, counting its
worker processes, and of pdflatex), the peak memory of the whole process tree, every time as a
multiple of t0, and whether the target is met. Peak memory is sampled from /proc during one more
build of each kind, not during the timed ones: the sampling takes CPU from the build it watches.

    python benchmarks/bench_build.py [--variants 50] [--students 200] [--repeat 3] [--large 1000] [--jobs N] [--full]
                                     [--json FILE]

Run it from the project folder; it writes only into a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The counted build's worksheets: the targets were set on these two (issue 22, November 2026);
# the bank's other worksheets are reported per (variant, question) beside them (case 9).
COUNTED = ("nn-derivatives", "nn-backprop")
TARGETS = {"cold": 30.0, "noop": 8.0, "roster": 100.0}  # multiples of t0
MEMORY_TARGET_MB = 400.0

T0_DOCUMENT = r"""\documentclass{article}
\usepackage{amsmath}
\begin{document}
Let $f(x) = \sum_{i=1}^{n} a_i x^i$. Then
\begin{equation}
  f'(x) = \sum_{i=1}^{n} i\, a_i x^{i-1}.
\end{equation}
\end{document}
"""

# Runs the CLI inside the subprocess and records, around the compile stage (from the first job
# handed to TeX to the last one done), the wall clock and the CPU time of the children (Python
# worker processes finish before it starts; pdflatex runs in it).
WRAPPER = r"""
import json, resource, sys, time
start = time.perf_counter()
from generator.typeset.batch import Typesetter
submit, finish = Typesetter.submit, Typesetter.finish
marks = {}
def submitted(self, *args, **kwargs):
    if "compile_start" not in marks:
        marks["compile_start"] = time.perf_counter() - start
        marks["children_before"] = _cpu(resource.RUSAGE_CHILDREN)
    return submit(self, *args, **kwargs)
def finished(self, *args, **kwargs):
    try:
        return finish(self, *args, **kwargs)
    finally:
        marks["compile_end"] = time.perf_counter() - start
        marks["children_after"] = _cpu(resource.RUSAGE_CHILDREN)
def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
Typesetter.submit, Typesetter.finish = submitted, finished
from generator.cli import main
code = main(sys.argv[2:])
marks["wall"] = time.perf_counter() - start
marks["self_cpu"] = _cpu(resource.RUSAGE_SELF)
marks["children_cpu"] = _cpu(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump(marks, f)
sys.exit(code)
"""

AWKWARD = [
    "Zoë Müller", "Søren Kierkegaard", "Siobhán O'Brien", "Łukasz Straße-Wałęsa", "José Ångström",
    "Ana María de la Peña & Co", "Jean-Luc \"JL\" Picard", "Ægir Þórsson", "Dvořák, Antonín",
    "100% {braces} $dollars$ #hash", "under_score~tilde^caret\\backslash", "山田 はなこ",
]


def measure_t0(folder: Path, runs: int = 7) -> float:
    """Median wall time of one pdflatex pass over a one-page amsmath article."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t0.tex").write_text(T0_DOCUMENT, encoding="utf-8")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "t0.tex"], cwd=folder, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class TreeMemory:
    """Peak memory of a process and all its descendants, sampled from /proc.

    Summed as PSS (proportional set size, /proc/PID/smaps_rollup): forked worker processes share
    most of their pages with the parent, and adding their RSS would count those pages twice.
    RSS is the fallback where smaps_rollup cannot be read.
    """

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> TreeMemory:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def _sample(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry)
            parents[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * self._page
        total = 0
        for pid, resident in rss.items():
            p = pid
            while p and p != self.pid:
                p = parents.get(p, 0)
            if p == self.pid:
                total += self._pss(pid, resident)
        return total

    @staticmethod
    def _pss(pid: int, rss: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return rss


def run_build(args: list[str], scratch: Path, name: str, *, sample_memory: bool = False) -> dict[str, float]:
    """One `python -m generator build ...` in a subprocess: timings and CPU split, and t0
    measured just before it (the machine's speed drifts over a run: see `measure_t0`); with
    `sample_memory`, the peak memory of its process tree too (see `peak_memory`)."""
    t0 = measure_t0(scratch / "t0", runs=5)
    marks_file = scratch / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", WRAPPER, str(marks_file), "build", *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    if sample_memory:
        with TreeMemory(process.pid) as memory:
            out, err = process.communicate()
        peak = memory.peak / 2**20
    else:
        out, err = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"build {' '.join(args)} failed:\n{out}\n{err}")
    marks = json.loads(marks_file.read_text())
    result = {"wall": wall, "peak_mb": peak, "t0": t0}
    if "compile_start" in marks:
        tex_cpu = marks["children_after"] - marks["children_before"]
        result.update(
            python_wall=marks["compile_start"], compile_wall=marks["compile_end"] - marks["compile_start"],
            python_cpu=marks["self_cpu"] + marks["children_before"], tex_cpu=tex_cpu,
        )
    else:
        result.update(python_wall=marks["wall"], compile_wall=0.0, python_cpu=marks["self_cpu"] + marks["children_cpu"], tex_cpu=0.0)
    return result


def measure(result: dict[str, float], folder: Path, scratch: Path, pages: int) -> None:
    """Add the floor (`measure_floor`), in the same run just after the build, and the bytes written."""
    result["floor"] = measure_floor(folder, scratch / f"floor-{folder.name}", os.cpu_count() or 1)["wall"]
    result["pdf_bytes"] = float(pdf_bytes(folder))
    result["out_bytes"] = float(output_bytes(folder))
    result["pages"] = float(pages)


def run_command(args: list[str], scratch: Path, name: str) -> dict[str, float]:
    """Any other `python -m generator ...` command in a subprocess: its wall time, and t0 just before."""
    t0 = measure_t0(scratch / "t0", runs=5)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "generator", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return {"wall": wall, "t0": t0, "peak_mb": 0.0, "python_wall": wall, "python_cpu": 0.0}


def peak_memory(args: list[str], scratch: Path, name: str) -> float:
    """Peak memory (MB) of one more such build, sampled; its time is not reported.

    Why a build of its own: sampling the process tree every 0.1 s (smaps_rollup, which has the
    kernel walk each process's page tables) took about 0.2 s of CPU during a 3.5 s cold build,
    11 ms a sample, on the same two cores: the timed builds ran about 3% slower beside it."""
    return run_build(args, scratch, name, sample_memory=True)["peak_mb"]


def measure_floor(folder: Path, scratch: Path, cores: int) -> dict[str, float]:
    """What TeX alone needs for a build's pages: its own per-copy `.tex` files, made into batch
    documents as the build makes them (`generator.typeset.batch.batch_text`), cut into `cores`
    batches of about equal length and typeset by pdflatex with the shared preamble preloaded
    (`generator.typeset.formats.UnpackedFormat`), one run per core, side by side. The wall time
    from the first run's start to the last run's end, the median of three, is the floor: no
    Python stage, no splitting, no second pass. Copies that share no preamble (none in the
    counted builds) are left out."""
    sys.path.insert(0, str(ROOT))
    from generator.typeset.batch import Copy, Job, batch_prefix, batch_text, split_copy
    from generator.typeset.compile import format_file, run_pdflatex
    from generator.typeset.formats import UnpackedFormat

    by_preamble: dict[str, list[Copy]] = {}
    for tex in sorted(folder.glob("*/*/*.tex")):
        text = tex.read_text(encoding="utf-8")
        parts = split_copy(text)
        if parts is not None:
            by_preamble.setdefault(parts[0], []).append(Copy(str(tex), text, ""))
    preamble, copies = max(by_preamble.items(), key=lambda item: len(item[1]))
    total = sum(len(c.text) for c in copies)
    groups: list[list[Copy]] = [[] for _ in range(cores)]
    done = 0
    for copy in copies:  # in order, cut where the running length passes each core's share
        groups[min(cores - 1, done * cores // max(1, total))].append(copy)
        done += len(copy.text)
    walls = []
    with UnpackedFormat(format_file(), cache=scratch / "floor-formats", preamble=batch_prefix(preamble)) as formats:
        documents = []
        for k, group in enumerate(g for g in groups if g):
            text, _ = batch_text(Job("floor.pdf", tuple(group)), range(len(group)), preamble, two_sided=True)
            read, fmt = formats.reading(text)
            work = scratch / f"floor-{k}"
            work.mkdir(parents=True, exist_ok=True)
            (work / "batch.tex").write_text(read, encoding="utf-8")
            documents.append((work / "batch.tex", fmt))
        for _ in range(3):
            start = time.perf_counter()
            threads = [threading.Thread(target=run_pdflatex, args=(tex,), kwargs={"fmt": fmt, "timeout": 600})
                       for tex, fmt in documents]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            walls.append(time.perf_counter() - start)
    return {"wall": statistics.median(walls), "copies": len(copies), "runs": len(documents)}


def output_bytes(folder: Path) -> int:
    """Bytes of every file a build wrote (its PDFs, .tex files, manifest, key table, kept results)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def pdf_bytes(folder: Path) -> int:
    """Bytes of the per-copy PDFs (what `count_pages` counts the pages of)."""
    return sum(path.stat().st_size for path in folder.glob("*/*/*.pdf"))


def count_pages(folder: Path) -> int:
    """Pages of the per-copy PDFs (not the combined print files)."""
    from pypdf import PdfReader

    return sum(len(PdfReader(pdf).pages) for pdf in folder.glob("*/*/*.pdf"))


def write_roster(path: Path, students: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "id", "email"])
        for i in range(students):
            writer.writerow([f"{AWKWARD[i % len(AWKWARD)]} {i:03d}", f"s{i:04d}_{'&%#'[i % 3]}", f"s{i}@example.org"])


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median multiple of t0, and the range of the multiples of all runs."""
    ordered = sorted(runs, key=lambda r: r["wall"] / r["t0"])
    return {**ordered[len(ordered) // 2], "low": ordered[0]["wall"] / ordered[0]["t0"],
            "high": ordered[-1]["wall"] / ordered[-1]["t0"], "runs": len(runs)}


def report(name: str, result: dict[str, float], target: float | None, pages: int | None) -> bool:
    t0 = result["t0"]
    multiple = result["wall"] / t0
    met = target is None or multiple <= target
    line = f"{name:<28} {result['wall']:7.2f} s = {multiple:6.1f} t0 (t0 {t0 * 1000:.0f} ms)"
    if target is not None:
        line += f"  (target <= {target:.0f} t0: {'met' if met else 'NOT met'})"
    print(line)
    if result.get("runs", 1) > 1:
        print(f"{'':<28} median of {result['runs']:.0f} runs; all runs {result['low']:.1f} to {result['high']:.1f} t0")
    if pages:
        print(f"{'':<28} {pages} pages, {pages / result['wall']:.0f} pages/s")
    if result.get("compile_wall"):
        print(f"{'':<28} wall: Python stages {result['python_wall']:.2f} s ({result['python_wall'] / t0:.1f} t0), "
              f"compile stage {result['compile_wall']:.2f} s ({result['compile_wall'] / t0:.1f} t0)")
        print(f"{'':<28} CPU: Python {result['python_cpu']:.2f} s, pdflatex {result['tex_cpu']:.2f} s")
    elif result.get("python_cpu"):
        print(f"{'':<28} all Python: {result['python_wall']:.2f} s wall, {result['python_cpu']:.2f} s CPU")
    if result.get("floor"):
        print(f"{'':<28} {result['wall'] / result['floor']:.2f} x the floor: TeX alone on the same pages, preloaded, "
              f"one run per core, {result['floor']:.2f} s ({result['floor'] / t0:.1f} t0)")
    if pages and result.get("pdf_bytes"):
        print(f"{'':<28} {result['pdf_bytes'] / pages / 1024:.1f} KB a page in the per-copy PDFs; "
              f"{result['out_bytes'] / 2**20:.1f} MB written in all")
    if result.get("peak_mb"):
        print(f"{'':<28} peak memory (process tree, PSS): {result['peak_mb']:.0f} MB")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=50)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, help="passed to the builds (default: theirs, one per core)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--full", action="store_true", help="also build the roster with every document (slow)")
    parser.add_argument("--repeat", type=int, default=3, help="cold builds and rosters with a target: runs each, the median counts")
    parser.add_argument("--large", type=int, default=1000, metavar="N",
                        help="the large cases: N variants and an N-student roster, cold, sheet + key (0: skip them)")
    args = parser.parse_args()
    extra = ["--jobs", str(args.jobs)] if args.jobs else []
    results: dict[str, dict[str, float]] = {}
    pages: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as temp:
        scratch = Path(temp)
        t0 = measure_t0(scratch / "t0")
        print(f"t0 (one pdflatex pass, one-page amsmath article): {t0 * 1000:.0f} ms at the start (each build is "
              f"measured against t0 taken just before it); {os.cpu_count()} cores\n")
        bank = Path(shutil.copytree(ROOT / "question_bank", scratch / "bank"))  # a copy, to edit below
        every = worksheets(bank)
        names = [name for name in COUNTED if name in every] or sorted(every)
        counted = ["--kinds", "sheet,key", *(arg for name in names for arg in ("--worksheet", name))]
        repeat = max(1, args.repeat)
        def cold(out: str) -> list[str]:  # into a fresh folder each time: cold
            return ["--bank", str(bank), "--variants", str(args.variants), "--out", str(scratch / out), *counted, *extra]

        results["cold"] = median_run([run_build(cold(f"cold-{k}"), scratch, f"cold-{k}") for k in range(repeat)])
        results["cold"]["peak_mb"] = peak_memory(cold("cold-memory"), scratch, "cold-memory")
        pages["cold"] = count_pages(scratch / "cold-0")
        measure(results["cold"], scratch / "cold-0", scratch, pages["cold"])
        results["noop"] = run_build(cold("cold-0"), scratch, "noop")
        results["noop"]["peak_mb"] = peak_memory(cold("cold-0"), scratch, "noop-memory")
        relu = bank / "questions" / "relu.yaml"
        original = relu.read_text(encoding="utf-8")
        for k, title in enumerate(("Edited, ", "Edited again, ")):  # timed, then its memory
            relu.write_text(original.replace("title: ", f"title: {title}", 1), encoding="utf-8")
            if k == 0:
                results["edit"] = run_build(cold("cold-0"), scratch, "edit")
            else:
                results["edit"]["peak_mb"] = peak_memory(cold("cold-0"), scratch, "edit-memory")
        relu.write_text(original, encoding="utf-8")  # the builds below use the bank as it is
        roster = scratch / "roster.csv"
        write_roster(roster, args.students)

        def for_roster(out: str) -> list[str]:
            return ["--bank", str(bank), "--roster", str(roster), "--out", str(scratch / out), *counted, *extra]

        results["roster"] = median_run([run_build(for_roster(f"roster-{k}"), scratch, f"roster-{k}") for k in range(repeat)])
        results["roster"]["peak_mb"] = peak_memory(for_roster("roster-memory"), scratch, "roster-memory")
        pages["roster"] = count_pages(scratch / "roster-0")
        measure(results["roster"], scratch / "roster-0", scratch, pages["roster"])
        if args.large:
            large = ["--bank", str(bank), "--variants", str(args.large), *counted, *extra]
            results["large"] = run_build([*large, "--out", str(scratch / "large")], scratch, "large")
            results["large"]["peak_mb"] = peak_memory([*large, "--out", str(scratch / "large-memory")], scratch,
                                                      "large-memory")
            pages["large"] = count_pages(scratch / "large")
            measure(results["large"], scratch / "large", scratch, pages["large"])
            shutil.rmtree(scratch / "large-memory", ignore_errors=True)
            big_roster = scratch / "roster-large.csv"
            write_roster(big_roster, args.large)
            large_roster = ["--bank", str(bank), "--roster", str(big_roster), *counted, *extra]
            results["large_roster"] = run_build([*large_roster, "--out", str(scratch / "large-roster")], scratch,
                                                "large_roster")
            results["large_roster"]["peak_mb"] = peak_memory(
                [*large_roster, "--out", str(scratch / "large-roster-memory")], scratch, "large_roster-memory")
            pages["large_roster"] = count_pages(scratch / "large-roster")
            measure(results["large_roster"], scratch / "large-roster", scratch, pages["large_roster"])
            shutil.rmtree(scratch / "large-roster-memory", ignore_errors=True)
        results["preview"] = median_run([run_command(["preview", "softmax", "--bank", str(bank), "--no-png",
                                                      "--out", str(scratch / f"preview-{k}")], scratch, f"preview-{k}")
                                         for k in range(repeat)])
        for name in sorted(every):
            alone = ["--bank", str(bank), "--variants", str(args.variants), "--kinds", "sheet,key", "--worksheet", name,
                     "--out", str(scratch / f"alone-{name}"), *extra]
            results[f"alone:{name}"] = {**run_build(alone, scratch, f"alone-{name}"), "questions": len(every[name])}
            shutil.rmtree(scratch / f"alone-{name}", ignore_errors=True)
        full = ["--bank", str(bank), "--variants", str(args.variants), *extra]
        results["full"] = run_build([*full, "--out", str(scratch / "full")], scratch, "full")
        results["full"]["peak_mb"] = peak_memory([*full, "--out", str(scratch / "full-memory")], scratch, "full-memory")
        pages["full"] = count_pages(scratch / "full")
        measure(results["full"], scratch / "full", scratch, pages["full"])
        if args.full:
            full_roster = ["--bank", str(bank), "--roster", str(roster), *extra]
            results["full_roster"] = run_build([*full_roster, "--out", str(scratch / "full-roster")], scratch, "full_roster")
            results["full_roster"]["peak_mb"] = peak_memory([*full_roster, "--out", str(scratch / "full-roster-memory")],
                                                            scratch, "full_roster-memory")
            pages["full_roster"] = count_pages(scratch / "full-roster")
        print(f"counted builds: the worksheets {', '.join(names)}, sheet + key per copy, "
              "combined print files, manifest.json, answers.csv\n")
        ok = [
            report(f"cold, {args.variants} variants", results["cold"], TARGETS["cold"], pages["cold"]),
            report("no-op rebuild", results["noop"], TARGETS["noop"], None),
            report("one question edited", results["edit"], None, None),
            report(f"roster, {args.students} students", results["roster"], TARGETS["roster"], pages["roster"]),
        ]
        if args.large:
            report(f"cold, {args.large} variants", results["large"], None, pages["large"])
            report(f"roster, {args.large} students", results["large_roster"], None, pages["large_roster"])
        report("preview of one question", results["preview"], None, None)
        print(f"\neach worksheet alone, {args.variants} variants, sheet + key, cold: cost per (variant, question)")
        for name in sorted(every):
            r = results[f"alone:{name}"]
            units = args.variants * r["questions"]
            print(f"  {name:<20} {r['questions']:.0f} questions  {r['wall']:6.2f} s wall  "
                  f"{r['wall'] / units * 1000:5.1f} ms wall, {(r['python_cpu'] + r['tex_cpu']) / units * 1000:5.1f} ms CPU "
                  f"(Python {r['python_cpu'] / units * 1000:.1f}, pdflatex {r['tex_cpu'] / units * 1000:.1f}) "
                  f"per (variant, question)")
        memory_ok = results["roster"]["peak_mb"] < MEMORY_TARGET_MB
        print(f"\nroster peak memory < {MEMORY_TARGET_MB:.0f} MB: {'met' if memory_ok else 'NOT met'}\n")
        print("for comparison, no target: everything the default build makes (every worksheet and exam; sheet, key "
              "and worked solutions)")
        report(f"full, {args.variants} variants", results["full"], None, pages["full"])
        if args.full:
            report(f"full, roster of {args.students}", results["full_roster"], None, pages["full_roster"])
        if args.json:
            args.json.write_text(json.dumps({"t0": t0, "cores": os.cpu_count(), "pages": pages, **results}, indent=1) + "\n")
    return 0 if all(ok) and memory_ok else 1


def worksheets(bank: Path) -> dict[str, tuple[str, ...]]:
    """The bank's worksheets: id -> its question ids."""
    sys.path.insert(0, str(ROOT))
    from generator.spec.model import load_bank

    return {name: tuple(sheet.questions) for name, sheet in load_bank(bank).worksheets.items()}


if __name__ == "__main__":
    sys.exit(main())
