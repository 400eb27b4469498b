"""Nothing lost: a build replaces its output folder only when it succeeded, and a failed or
interrupted build leaves the previous build's files byte-identical and no temporary folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import ROOT, needs_tex

from generator.errors import OutputError
from generator.outputs.output import MARKER, staging


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary folders `staging` left beside its destinations."""
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def tex_folders(system: Path) -> set[Path]:
    """The folders a build makes in the system's temporary folder `system` (its TMPDIR): the
    unpacked format, the preloaded one being made, primed TeX runs."""
    return set(system.glob("generator-*"))


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """An output folder from an earlier build, with a subfolder."""
    out = tmp_path / "out"
    with staging(out) as temp:
        write(temp / "sheet.tex", "old sheet")
        write(temp / "sub" / "key.pdf", "old key")
    return out


def test_success_replaces_the_folder(previous: Path) -> None:
    with staging(previous) as temp:
        write(temp / "new.tex", "new")
    assert snapshot(previous) == {MARKER: (previous / MARKER).read_bytes(), "new.tex": b"new"}
    assert leftovers(previous.parent) == []


def test_first_build_creates_missing_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with staging(out) as temp:
        write(temp / "x.tex", "x")
    assert (out / "x.tex").read_text() == "x"


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_failure_in_the_build_keeps_the_previous_files(previous: Path, error: BaseException) -> None:
    before = snapshot(previous)
    with pytest.raises(type(error)), staging(previous) as temp:
        write(temp / "sheet.tex", "half-written")
        raise error
    assert snapshot(previous) == before
    assert leftovers(previous.parent) == []


def _failing_rename(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make the rename of the finished temporary folder into place fail."""
    real = Path.rename

    def rename(self: Path, target: str | Path) -> Path:
        if ".tmp-" in self.name:
            raise error
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)


def test_final_rename_failing_restores_the_previous_folder(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(previous)
    _failing_rename(monkeypatch, OSError(18, "Invalid cross-device link"))
    with pytest.raises(OutputError) as info, staging(previous) as temp:
        write(temp / "sheet.tex", "new")
    assert str(info.value) == (
        f"{previous}: cannot move the finished build into place (Invalid cross-device link); the previous output is unchanged"
    )
    assert snapshot(previous) == before
    assert leftovers(previous.parent) == []


def test_interrupt_during_the_final_rename_restores_the_previous_folder(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(previous)
    _failing_rename(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt), staging(previous) as temp:
        write(temp / "sheet.tex", "new")
    assert snapshot(previous) == before
    assert leftovers(previous.parent) == []


def test_ctrl_c_during_the_swap_is_held_until_the_swap_is_done(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.rename

    def rename(self: Path, target: str | Path) -> Path:
        signal.raise_signal(signal.SIGINT)  # arrives between the two renames
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt), staging(previous) as temp:
        write(temp / "new.tex", "new")
    assert (previous / "new.tex").read_text() == "new"  # the whole new build, not half of a swap
    assert not (previous / "sheet.tex").exists()
    assert leftovers(previous.parent) == []


def test_writing_inside_the_temporary_folder_failing_is_an_output_error(previous: Path) -> None:
    before = snapshot(previous)
    with pytest.raises(OutputError) as info, staging(previous) as temp:
        (temp / "missing" / "x.tex").write_text("x")
    assert str(info.value) == f"{previous}: cannot write missing/x.tex (No such file or directory)"
    assert snapshot(previous) == before


@pytest.mark.parametrize("make", ["cwd", "foreign"])
def test_folders_not_ours_are_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str) -> None:
    if make == "cwd":
        monkeypatch.chdir(tmp_path)
        target = tmp_path
    else:
        target = tmp_path / "thesis"
        write(target / "chapter1.tex", "years of work")
    before = snapshot(target)
    with pytest.raises(OutputError), staging(target) as temp:
        write(temp / "x.tex", "x")
    assert snapshot(target) == before


# --- whole builds -----------------------------------------------------------------------------


def test_failed_build_leaves_the_previous_build_byte_identical(tmp_path: Path) -> None:
    from generator.cli import main

    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    out = tmp_path / "out"
    assert main(["build", "--no-pdf", "--bank", str(bank), "--out", str(out), "--seed", "1"]) == 0
    before = snapshot(out)
    write(bank / "questions" / "q.yaml", question(**{"$\\dfrac": "<< nope >> $\\dfrac"}))
    assert main(["build", "--no-pdf", "--bank", str(bank), "--out", str(out), "--seed", "2"]) == 1
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def _start_build(bank: Path, out: Path, seed: int, path: str | None = None, new_session: bool = False,
                 system: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    if system is not None:  # its own system temporary folder: other processes' folders stay out of the count
        system.mkdir(exist_ok=True)
        env["TMPDIR"] = str(system)
    return subprocess.Popen(
        [sys.executable, "-m", "generator", "build", "--bank", str(bank), "--out", str(out), "--seed", str(seed)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=new_session,
    )


def _wait_for_compile(out: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the build is running TeX: its temporary folder has a `.tex` file (a document is
    written once it has gone to TeX; a batch that has no primed run writes its own there too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(next(p.rglob("*.tex"), None) for p in out.parent.glob(f".{out.name}.tmp-*")):
            return
        if proc.poll() is not None:
            raise AssertionError(f"build ended before it compiled: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("build never reached the compile stage")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_build_interrupted_in_a_subprocess_keeps_the_previous_build(tmp_path: Path, signum: int) -> None:
    """A real `python -m generator build`, interrupted while TeX runs (a stand-in pdflatex that
    sleeps, so the moment is certain): exit 130, previous files byte-identical, no temp folders."""
    from generator.cli import main

    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    out = tmp_path / "out"
    assert main(["build", "--no-pdf", "--bank", str(bank), "--out", str(out), "--seed", "1"]) == 0
    before = snapshot(out)
    fake = write(tmp_path / "bin" / "pdflatex", "#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    system = tmp_path / "system-tmp"
    proc = _start_build(bank, out, 2, path=f"{fake.parent}{os.pathsep}{os.environ['PATH']}", system=system)
    _wait_for_compile(out, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.decode() == "interrupted; previous output left as it was\n"
    assert snapshot(out) == before
    assert leftovers(tmp_path) == [] and tex_folders(system) == set()


@needs_tex
def test_ctrl_c_with_real_tex_keeps_the_previous_build(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: the build and pdflatex."""
    bank = make_bank(tmp_path / "bank", {f"q{i}": QUESTION.replace("id: q", f"id: q{i}") for i in range(6)})
    out = tmp_path / "out"
    first = _start_build(bank, out, 1)
    assert first.wait(timeout=120) == 0, first.communicate()
    before = snapshot(out)
    system = tmp_path / "system-tmp"
    proc = _start_build(bank, out, 2, new_session=True, system=system)
    _wait_for_compile(out, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (1, 130), err  # 1 if pdflatex's death is seen first (a TeX failure)
    assert "Traceback" not in err.decode()
    assert snapshot(out) == before
    assert leftovers(tmp_path) == [] and tex_folders(system) == set()
