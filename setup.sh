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
  lmodern latexmk poppler-utils latex-cjk-common latex-cjk-chinese-arphic-gbsn00lp >/dev/null
python3 -m pip install -q -e '.[test]'
if [ "${1:-}" != "--no-build" ]; then
  python3 -m generator build --seed 42
fi
