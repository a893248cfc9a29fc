"""Synthetic single-cell counts with cell-type programs, realistic depth and many ties."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._errors import C2SError

# Cells are drawn in blocks of this many, each block from a generator seeded by
# (seed, block start): synthetic() and write_synthetic_h5ad() give the same data.
_BLOCK = 512


def _gene_names(n_genes: int) -> list[str]:
    # Mixed case, like mouse symbols, so that upper-casing for display is exercised.
    return [f"Gene{i}" for i in range(n_genes)]


class _Model:
    """Parameters shared by every chunk, so chunks can be drawn independently."""

    def __init__(self, n_genes, n_cell_types, genes_per_cell, n_markers, seed):
        rng = np.random.default_rng(seed)
        self.n_genes = n_genes
        self.n_cell_types = n_cell_types
        # Heavy-tailed baseline profile (a few very high genes, a long low tail).
        base = rng.lognormal(mean=0.0, sigma=1.6, size=n_genes)
        self.base = base / base.sum()
        self.programs = np.ones((n_cell_types, n_genes))
        for t in range(n_cell_types):
            markers = rng.choice(n_genes, size=min(n_markers, n_genes), replace=False)
            self.programs[t, markers] *= rng.uniform(4.0, 30.0, size=len(markers))
        # Library size chosen so that the expected number of detected genes is near target.
        self.depth = self._depth_for(genes_per_cell)

    def _expected_detected(self, depth: float) -> float:
        # Mean over cell types and over the log-normal library-size spread (quadrature
        # nodes) of sum_g P(count > 0), where P(count > 0) = 1 - (1 + 0.5 mu)^-2 under
        # Gamma(2, 0.5)-Poisson noise with mean mu.
        rates = self.programs * self.base
        rates /= rates.sum(axis=1, keepdims=True)
        nodes, weights = np.polynomial.hermite_e.hermegauss(7)
        weights = weights / weights.sum()
        total = 0.0
        for z, w in zip(nodes, weights, strict=True):
            mu = depth * np.exp(0.35 * z) * rates
            total += w * float((1.0 - (1.0 + 0.5 * mu) ** -2.0).sum(axis=1).mean())
        return total

    def _depth_for(self, target: float) -> float:
        target = min(target, 0.95 * self.n_genes)
        lo, hi = 1.0, 1e9
        for _ in range(80):
            mid = np.sqrt(lo * hi)
            if self._expected_detected(mid) < target:
                lo = mid
            else:
                hi = mid
        return float(mid)

    def draw(self, rng, n_cells, start):
        types = rng.integers(0, self.n_cell_types, size=n_cells)
        lib = self.depth * rng.lognormal(mean=0.0, sigma=0.35, size=n_cells)
        rates = self.programs[types] * self.base
        rates /= rates.sum(axis=1, keepdims=True)
        mu = rates * lib[:, None]
        # Gamma-Poisson (negative binomial) noise; small integer counts give many ties.
        mu = mu * rng.gamma(shape=2.0, scale=0.5, size=mu.shape)
        counts = rng.poisson(mu).astype(np.float32)
        return sp.csr_matrix(counts), types


def _obs(types, start, n_cell_types, seed):
    n = len(types)
    rng = np.random.default_rng([seed, 7, start])
    names = [f"type_{t}" for t in range(n_cell_types)]
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([names[t] for t in types], categories=names),
            "tissue": pd.Categorical(
                np.where(types % 2 == 0, "blood", "lung"), categories=["blood", "lung"]
            ),
            "donor": pd.Categorical([f"donor_{d}" for d in rng.integers(0, 4, size=n)]),
            "organism": "Homo sapiens",
        },
        index=[f"cell_{i}" for i in range(start, start + n)],
    )
    return obs


def _draw_block(model, start, m, seed, normalize):
    rng = np.random.default_rng([seed, start])
    counts, types = model.draw(rng, m, start)
    return _finish(counts, normalize), _obs(types, start, model.n_cell_types, seed)


def _finish(counts, normalize):
    if normalize:
        from c2s.pp import log10_normalize

        return log10_normalize(counts)
    return counts


def synthetic(
    n_cells: int = 1000,
    n_genes: int = 2000,
    *,
    n_cell_types: int = 5,
    genes_per_cell: float = 500,
    n_markers: int = 50,
    normalize: bool = False,
    seed: int = 0,
):
    """Synthetic counts with cell-type programs.

    Each cell type multiplies the expression of its own marker genes; library sizes are
    log-normal; counts are negative binomial, so small integers (and ties) dominate, as in
    droplet data.

    Parameters
    ----------
    n_cells, n_genes
        Shape of the matrix.
    n_cell_types
        Number of cell types (``obs["cell_type"]`` is ``type_0`` ...).
    genes_per_cell
        Target mean number of detected (non-zero) genes per cell.
    n_markers
        Marker genes per cell type.
    normalize
        Return ``log10(1 + cp10k)`` values instead of counts.
    seed
        Seed; the same seed gives the same data.

    Returns
    -------
    AnnData with a CSR ``X`` (float32), ``obs`` columns ``cell_type``, ``tissue``, ``donor``,
    ``organism`` and mixed-case gene names (``Gene0`` ...).
    """
    import anndata as ad

    if n_cells < 1 or n_genes < 1:
        raise C2SError("n_cells and n_genes must be positive.")
    model = _Model(n_genes, n_cell_types, genes_per_cell, n_markers, seed)
    blocks, obs_blocks = [], []
    for start in range(0, n_cells, _BLOCK):
        X, obs = _draw_block(model, start, min(_BLOCK, n_cells - start), seed, normalize)
        blocks.append(X)
        obs_blocks.append(obs)
    X = sp.vstack(blocks, format="csr").astype(np.float32)
    var = pd.DataFrame(index=_gene_names(n_genes))
    return ad.AnnData(X=X, obs=pd.concat(obs_blocks), var=var)


def write_synthetic_h5ad(
    path: str | os.PathLike,
    n_cells: int,
    n_genes: int = 2000,
    *,
    chunk_size: int = 4 * _BLOCK,
    progress: bool | None = None,
    **kwargs,
) -> Path:
    """Write :func:`synthetic` data of any size to an .h5ad file in bounded memory.

    Cells are drawn block by block exactly as :func:`synthetic` draws them (same seed, same
    data) and appended to a CSR ``X`` on disk about ``chunk_size`` cells at a time, so a
    200,000-cell file never exists in memory. Other arguments go to :func:`synthetic`.
    """
    import h5py
    from anndata.io import write_elem

    from c2s._atomic import atomic_file
    from c2s._logging import progress as bar

    normalize = kwargs.pop("normalize", False)
    seed = kwargs.pop("seed", 0)
    n_cell_types = kwargs.pop("n_cell_types", 5)
    model = _Model(
        n_genes,
        n_cell_types,
        kwargs.pop("genes_per_cell", 500),
        kwargs.pop("n_markers", 50),
        seed,
    )
    if kwargs:
        raise C2SError(f"Unknown arguments: {sorted(kwargs)}")
    with atomic_file(path, overwrite=True) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group("X")
        g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        g.attrs["shape"] = (n_cells, n_genes)
        data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype="f4", chunks=(1 << 18,))
        indices = g.create_dataset(
            "indices", shape=(0,), maxshape=(None,), dtype="i4", chunks=(1 << 18,)
        )
        indptr = [np.zeros(1, dtype=np.int64)]
        obs_blocks = []
        nnz = 0
        step = max(_BLOCK, chunk_size // _BLOCK * _BLOCK)
        for start in bar(range(0, n_cells, step), desc="synthetic h5ad", enabled=progress):
            parts = [
                _draw_block(model, b, min(_BLOCK, n_cells - b), seed, normalize)
                for b in range(start, min(start + step, n_cells), _BLOCK)
            ]
            X = sp.vstack([p[0] for p in parts], format="csr").astype(np.float32)
            data.resize((nnz + X.nnz,))
            indices.resize((nnz + X.nnz,))
            data[nnz:] = X.data
            indices[nnz:] = X.indices
            indptr.append(X.indptr[1:].astype(np.int64) + nnz)
            nnz += X.nnz
            obs_blocks.extend(p[1] for p in parts)
        g.create_dataset("indptr", data=np.concatenate(indptr))
        write_elem(f, "obs", pd.concat(obs_blocks))
        write_elem(f, "var", pd.DataFrame(index=_gene_names(n_genes)))
        for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            write_elem(f, key, {})
        f.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    return Path(path)
