#!/usr/bin/env bash
# The benchmark's own environment: devinterp 2.0.1, the peer library it is measured against.
#
# devinterp is a benchmark-only dependency, so it does not go into the project's .venv. This
# makes benchmarks/.venv, a thin layer over .venv: it sees .venv's packages (torch, numpy,
# losskernel) through a .pth file and adds devinterp with whatever it needs that .venv lacks
# (transformers, datasets, zarr, ...; about 450 MB, 20 s). Run `bash setup.sh` first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
    echo "benchmarks/setup.sh: .venv is missing; run 'bash setup.sh' first" >&2
    exit 1
fi
base_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ ! -x benchmarks/.venv/bin/python ]]; then
    .venv/bin/python -c 'import sys; print(sys.base_prefix)' >/dev/null
    "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv benchmarks/.venv
fi
layer_site=$(benchmarks/.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# addsitedir, not a bare path: .venv's own .pth files (the editable losskernel) must run too
echo "import site; site.addsitedir('${base_site}')" > "${layer_site}/_project_venv.pth"
benchmarks/.venv/bin/python -m pip install --quiet --disable-pip-version-check devinterp==2.0.1
benchmarks/.venv/bin/python -c 'import devinterp, losskernel, torch; print("benchmarks/.venv ready: devinterp", __import__("importlib.metadata").metadata.version("devinterp"), "torch", torch.__version__)'
