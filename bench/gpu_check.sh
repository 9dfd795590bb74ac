#!/usr/bin/env bash
# The GPU check in one command: bench/gpu_check.sh --out DIR [--cpu] [--carry gpu_carry]
#
# 1. Makes the carried wheels importable: when a package the check needs does not
#    import (the lent GPU machine has no dask, trl, faiss, xgrammar), installs
#    CARRY/wheels/*.whl into a folder of its own and puts it on PYTHONPATH; where they
#    all import (this venv, the CPU dry run) it installs nothing.
# 2. Runs bench/gpu_check.py, each step in its own process under its own time cap, one
#    JSON line per result in DIR/results.jsonl (see that file's docstring).
set -euo pipefail
cd "$(dirname "$0")/.."

carry=gpu_carry
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [[ ${args[i]} == --carry ]] && carry=${args[i + 1]:-$carry}
done
python=${PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi

# Found, not imported: importing trl alone takes seconds.
if "$python" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" dask distributed faiss trl datasets xgrammar; then
    export GPU_CHECK_INSTALL="nothing installed: every package is there"
elif compgen -G "$carry/wheels/*.whl" >/dev/null; then
    site=${GPU_CHECK_SITE:-/tmp/arena-gpu-check-site}
    started=$SECONDS
    # --no-deps: the machine has every dependency the wheels do not bring themselves.
    timeout 60 "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$site" "$carry"/wheels/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    count=$(compgen -G "$carry/wheels/*.whl" | wc -l)
    export GPU_CHECK_INSTALL="installed $count wheels from $carry/wheels in $((SECONDS - started)) s"
else
    export GPU_CHECK_INSTALL="packages missing and no wheels in $carry/wheels (make gpu-wheels)"
    echo "gpu_check: $GPU_CHECK_INSTALL; the steps that need them will fail" >&2
fi
# Workers and trainer processes import the repository's packages from its root.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m bench.gpu_check "$@"
