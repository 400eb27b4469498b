"""`python -m generator list`: the bank's questions and where they are used."""

from __future__ import annotations

from conftest import FIXTURES

from generator.cli import main
from generator.commands.listing import list_bank
from generator.errors import display_path
from generator.spec.model import load_bank

CLASSBANK = FIXTURES / "classbank"


def test_list_shows_questions_worksheets_and_exams():
    drill = display_path(CLASSBANK / "worksheets" / "drill.yaml")
    quiz = display_path(CLASSBANK / "exams" / "quiz.yaml")
    assert list_bank(load_bank(CLASSBANK)) == f"""\
Questions (4) in {CLASSBANK}:
  ID      TITLE          POINTS  PARTS       TAGS                 USED BY
  lin     Inner product  3       2: y dy_dx  linear               worksheet drill; exam quiz
  sig     Sigmoid        5       1: ds_dz    activations          exam quiz (tag activations)
  square  Square         4       2: y dy_dx  activations, scalar  worksheet drill; exam quiz (tag activations)
  step    ReLU           3       1: r        activations          exam quiz (tag activations)

Worksheets (1):
  drill  'Drill & practice'  ({drill})
      2 questions: square, lin

Exams (1):
  quiz  'Quiz'  ({quiz})
      lin (3 points); 2 from tag activations (3 in the bank) (4 points); order shuffled per variant, total 11 points
"""


def test_list_command_prints_the_listing(capsys):
    assert main(["list", "--bank", str(CLASSBANK)]) == 0
    assert capsys.readouterr().out == list_bank(load_bank(CLASSBANK))

