#!/usr/bin/env bash
# Set up losskernel on a fresh Debian machine with Python 3.11: a virtual environment in .venv
# with the exact package versions of requirements.lock, and the package itself (editable).
# Safe to run again: it only installs what is missing. Takes about 2-3 minutes the first time.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    echo "setup.sh: need Python 3.11 as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian ships venv separately.
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq python3-venv
    else
        echo "setup.sh: Python's venv module is missing; run: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi

# WordNet 3.0 for the ImageNet experiments (Figure 1's hierarchy), offline: Debian's files.
# Elsewhere nltk's own corpus works too: python -c "import nltk; nltk.download('wordnet')".
if [ ! -f /usr/share/wordnet/data.noun ] || [ ! -f /usr/share/wordnet/index.sense ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
    else
        echo "setup.sh: note: WordNet is missing; the ImageNet branch needs it:" \
             "sudo apt-get install wordnet-base wordnet-sense-index" >&2
    fi
fi

# Fashion-MNIST for the default `fashion` experiment (Figure 1 on real images): Debian's
# 30 MB package of the original idx files, read by torchvision without a download.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "setup.sh: note: the default pipeline's fashion experiment needs Fashion-MNIST:" \
             "sudo apt-get install dataset-fashion-mnist" >&2
    fi
fi

# Headless Chromium (the test that opens the HTML report) and a minimal TeX (the `paper` target
# and its test); without them those tests skip and say why.
if ! command -v chromium >/dev/null || ! command -v latexmk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends \
            chromium latexmk texlive-latex-base texlive-latex-recommended >/dev/null
    else
        echo "setup.sh: note: for the report test and the paper: sudo apt-get install" \
             "--no-install-recommends chromium latexmk texlive-latex-base" \
             "texlive-latex-recommended" >&2
    fi
fi

# torch makes the venv about 6 GB; a full disk would otherwise fail half-way through pip.
if [ ! -x .venv/bin/python ]; then
    free_gb=$(( $(df -Pk . | awk 'NR == 2 {print $4}') / 1024 / 1024 ))
    if [ "$free_gb" -lt 8 ]; then
        echo "setup.sh: only ${free_gb} GB free on the disk of $(pwd); the venv needs about" \
             "6 GB and the tests 2 GB more. Free at least 8 GB, or clone to another disk." >&2
        exit 1
    fi
    "$PYTHON" -m venv .venv
fi
# pip prints one warning per package for the machine's local index folders; keep the real errors.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock \
    2> >(grep -v "is neither a file nor a directory" >&2)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation -e . 2> >(grep -v "is neither a file nor a directory" >&2)
echo "setup.sh: ready (.venv)"
