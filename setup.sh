#!/usr/bin/env bash
# One command on a fresh Debian machine: install TeX (Debian packages) and the Python package,
# then run the main job. Run as root, or as a user with sudo. `--no-build` skips the main job.
# The two latex-cjk packages let rosters print Chinese and Japanese names (docs/rosters.md).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then apt=(apt-get); else apt=(sudo apt-get); fi
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends \
  texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended \
  lmodern latexmk poppler-utils zbar-tools latex-cjk-common latex-cjk-chinese-arphic-gbsn00lp >/dev/null
python3 -m pip install -q -e '.[test]'
# Byte-compile the package now (what a non-editable install does): with PYTHONDONTWRITEBYTECODE
# set, as on some CI machines, every run would otherwise compile it again (about 0.05 s a build).
python3 -m compileall -q generator
if [ "${1:-}" != "--no-build" ]; then
  python3 -m generator build --seed 42
fi
