"""Check that c2s's ``linear`` inverse model reproduces the reference package's fit.

Both sides fit on every cell of scanpy's bundled PBMC data (log-normalized ``.raw``), so cell
sampling cannot differ. Ties permute genes of equal value, which leaves the multiset of
(rank, value) pairs, and therefore the least-squares line, unchanged.

    .venv/bin/python benchmarks/compat_linear.py     # needs .venv-ref (make bench-ref)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    import c2s

    adata = c2s.datasets.pbmc68k_reduced()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pbmc.h5ad"
        adata.write_h5ad(path)
        res = subprocess.run(
            [
                str(ROOT / ".venv-ref/bin/python"),
                str(ROOT / "benchmarks/ref_reconstruct.py"),
                str(path),
                "--sample-size",
                str(adata.n_obs),
                "--n",
                "10",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    ref = json.loads(res.stdout.strip().splitlines()[-1])
    cs = c2s.sentences.from_anndata(adata)
    ours = c2s.inverse.LinearInverse(sample_size=None).fit(cs)
    out = {
        "ref": {"slope": ref["slope"], "intercept": ref["intercept"]},
        "ours": {"slope": ours.slope, "intercept": ours.intercept},
        "abs_diff": {
            "slope": abs(ours.slope - ref["slope"]),
            "intercept": abs(ours.intercept - ref["intercept"]),
        },
    }
    print(json.dumps(out, indent=2))
    return 0 if max(out["abs_diff"].values()) < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
