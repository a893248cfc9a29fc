#!/usr/bin/env bash
# The GPU check (one CUDA device, under 8 minutes): the gpu-marked tests, then
# benchmarks/gpu_check.py (bf16 training of a Pythia-410M-shaped model for 30 steps,
# inference cells/s on 2,000 cells). Results go to $1, else $OUT, else bench-out/gpu.
#
# On the lent device machine (no network), packages it lacks travel as wheels in .whl/
# (benchmarks/gpu_wheels.sh fetches them here) and are installed first:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:src bash benchmarks/gpu_check.sh "$OUT"
set -uo pipefail
dir="${1:-${OUT:-bench-out/gpu}}"
mkdir -p "$dir"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}src" PYTHONUNBUFFERED=1
python3 -m pytest -q -p no:cacheprovider -m gpu tests --junitxml "$dir/gpu_tests.xml" \
  >"$dir/gpu_tests.log" 2>&1
echo "gpu tests: exit $? (log in $dir/gpu_tests.log)"
python3 benchmarks/gpu_check.py --out "$dir" >"$dir/gpu_check.log" 2>&1
status=$?
tail -n 40 "$dir/gpu_check.log"
exit $status
