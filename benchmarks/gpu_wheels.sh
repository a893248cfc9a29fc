#!/usr/bin/env bash
# Fetch (here, where PyPI is reachable) the wheels the GPU check needs that the lent device
# machine lacks, into .whl/ (ignored by git; name it in the device run's carry). The device
# has PyTorch, transformers, peft, accelerate, h5py, pandas, scipy, numba, pyarrow, pytest
# and scikit-learn; c2s needs anndata beside them.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for pkg in anndata==0.12.19 array-api-compat natsort legacy-api-wrap scverse-misc zarr \
           numcodecs donfig crc32c; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${plat[@]}" -d .whl "$pkg"
done
ls -la .whl
