"""The command line: help, clean errors (no traceback), exit codes, and the TeX error report."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import FIXTURES, ROOT, needs_tex, write


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("command", [[], ["build"], ["check"], ["export"], ["grade"]])
def test_help(command):
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: python -m generator" in result.stdout


def test_build_with_a_bad_spec_prints_one_message_and_no_traceback(tmp_path, bank):
    write(bank / "questions" / "q.yaml", "id: q\ntitle: Q\nparameters:\n  u: {entries: [0, 1]}\ndefine:\n  z: exp(v)\nparts: [{id: p, of: z, prompt: p}]\nstem: s\n")
    write(bank / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [q]\n")
    result = cli("build", "--bank", str(bank), "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"error: {bank}/questions/q.yaml:6:6: define.z: unknown name 'v' (column 5 of 'exp(v)')\n"
    assert not (tmp_path / "out").exists()


def test_build_writes_into_out(tmp_path):
    result = cli("build", "--seed", "3", "--bank", str(FIXTURES / "bank"), "--out", str(tmp_path / "o"), "--no-pdf")
    assert result.returncode == 0, result.stderr
    assert f"wrote 5 files to {tmp_path / 'o'}/" in result.stdout
    assert (tmp_path / "o" / "manifest.json").exists()


def test_check_passes_good_files_and_fails_bad_ones(tmp_path):
    good = cli("check", str(FIXTURES / "bank" / "questions" / "affine.yaml"))
    assert good.returncode == 0 and good.stdout.startswith("ok: 1 question(s)")
    bad = write(tmp_path / "bad.yaml", "id: b\ntitle: B\nparameters:\n  u: {entries: [0, 1]}\ndefine:\n  z: u\nparts: [{id: p, of: zz, prompt: p}]\nstem: s\n")
    result = cli("check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:7:21: parts[0].of: 'zz' is not in define; did you mean 'z'?" in result.stdout
    assert "Traceback" not in result.stderr


@needs_tex
def test_tex_error_names_the_question_and_shows_the_log(tmp_path, bank):
    write(bank / "questions" / "q.yaml", "id: broken-tex\ntitle: Q\nparameters:\n  u: {entries: [1, 2]}\ndefine:\n  z: u\nparts: [{id: p, of: z, prompt: p}]\nstem: 'Here \\undefinedmacro{} breaks.'\n")
    write(bank / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [broken-tex]\n")
    previous = cli("build", "--bank", str(FIXTURES / "bank"), "--out", str(tmp_path / "out"), "--no-pdf")
    assert previous.returncode == 0, previous.stderr
    before = (tmp_path / "out" / "manifest.json").read_bytes()
    result = cli("build", "--bank", str(bank), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "LaTeX error in question 'broken-tex', stem" in result.stderr
    assert "Undefined control sequence" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "manifest.json").read_bytes() == before


@needs_tex
def test_shell_escape_is_off(tmp_path, bank):
    marker = tmp_path / "pwned"
    write(bank / "questions" / "q.yaml", f"id: q\ntitle: Q\nparameters:\n  u: {{entries: [1, 2]}}\ndefine:\n  z: u\nparts: [{{id: p, of: z, prompt: p}}]\nstem: '\\immediate\\write18{{touch {marker}}}x'\n")
    write(bank / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [q]\n")
    result = cli("build", "--bank", str(bank), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
