#!/usr/bin/env bash
# Installs what auralis-rt needs on Debian/Ubuntu: system packages (without
# recommends), then a virtual environment in .venv with the package built in
# place (`pip install -e .[test]` compiles the C kernels).  Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential python3-dev python3-venv libsndfile1 jackd2 libjack-jackd2-dev
              portaudio19-dev libportaudio2 ffmpeg)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: missing system packages (${missing[*]}) and no apt-get to install them" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "setup: auralis-rt needs Python 3.11 or newer" >&2; exit 1; }
import sys
sys.exit(sys.version_info < (3, 11))
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: ready (.venv/bin/auralis-rt)"
