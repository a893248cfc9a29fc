"""Generated cells against real cells: distribution distances, k-NN label agreement and gene
validity.

Cells are rows of a matrix (a NumPy array, a SciPy sparse matrix or an AnnData, whose ``.X``
is used) with the same genes as columns on both sides. Distances are computed in a PCA space
fitted on the real cells (``n_components``, 50 by default), which is what the C2S papers do
and what keeps them meaningful with thousands of mostly-zero genes. Metrics built on all
pairwise distances (MMD, energy, Wasserstein, Gromov-Wasserstein) subsample each side to
``max_cells`` cells with ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from c2s._anndata import is_anndata
from c2s._errors import C2SError

KS = (3, 5, 10, 25)


def as_matrix(x, *, keep_sparse: bool = False):
    """A dense float64 cells x features array from an array, a sparse matrix or an AnnData;
    with ``keep_sparse``, sparse input comes back as a float64 CSR matrix instead."""
    if is_anndata(x):
        x = x.X
    if keep_sparse and sp.issparse(x):
        return sp.csr_matrix(x, dtype=np.float64)
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise C2SError(f"Expected a cells x features matrix, got shape {x.shape}.")
    return x


def _same_width(x: np.ndarray, y: np.ndarray):
    if x.shape[1] != y.shape[1]:
        raise C2SError(
            f"The two sets have {x.shape[1]} and {y.shape[1]} features; they must be aligned to "
            "the same genes (e.g. both reconstructed on the dataset's vocabulary)."
        )
    if len(x) == 0 or len(y) == 0:
        raise C2SError("Both sets need at least one cell.")


def pca_space(
    real, n_components: int = 50, seed: int = 0, *, max_cells: int | None = 50_000
) -> Callable[[object], np.ndarray]:
    """A function mapping cells to the top principal components of ``real`` (fitted once).

    Sparse input stays sparse: the fit centres implicitly (ARPACK) instead of densifying the
    matrix, on a seeded sample of at most ``max_cells`` cells, and cells are projected in
    blocks, so memory is that of the sparse matrix plus the components.
    """
    from sklearn.decomposition import PCA

    x = as_matrix(real, keep_sparse=True)
    k = int(min(n_components, x.shape[0] - 1, x.shape[1]))
    if k < 1:
        return as_matrix
    fit = _subsample(x, max_cells, np.random.default_rng(seed))
    if sp.issparse(fit) and k < min(fit.shape):
        pca = PCA(n_components=k, random_state=seed, svd_solver="arpack").fit(fit)
    else:
        pca = PCA(n_components=k, random_state=seed, svd_solver="full").fit(as_matrix(fit))

    def project(cells) -> np.ndarray:
        c = as_matrix(cells, keep_sparse=True)
        out = np.empty((c.shape[0], pca.n_components_))
        for a in range(0, c.shape[0], _BLOCK):
            block = c[a : a + _BLOCK]
            out[a : a + _BLOCK] = pca.transform(block if sp.issparse(block) else as_matrix(block))
        return out

    return project


_BLOCK = 8192  # cells projected at a time


def _subsample(x, n: int | None, rng):
    """At most ``n`` rows of ``x`` (an array or a sparse matrix), drawn without replacement."""
    if n is None or x.shape[0] <= n:
        return x
    return x[np.sort(rng.choice(x.shape[0], n, replace=False))]


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b, "sqeuclidean")


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(a, b)


def knn_accuracy(
    real,
    real_labels: Sequence,
    generated,
    generated_labels: Sequence,
    *,
    ks: Sequence[int] = KS,
    embed: Callable | None = None,
) -> dict[int, float]:
    """For each k: the fraction of generated cells that a k-nearest-neighbour classifier fit
    on the real cells assigns to the label they were generated for.

    ``embed`` maps cells to the space the neighbours are found in (default: a PCA fit on the
    real cells). Labels never seen among the real cells count as misses.
    """
    from sklearn.neighbors import KNeighborsClassifier

    f = embed or pca_space(real)
    xr, xg = f(real), f(generated)
    yr = np.asarray([str(x) for x in real_labels])
    yg = np.asarray([str(x) for x in generated_labels])
    if len(yr) != len(xr) or len(yg) != len(xg):
        raise C2SError("Each set needs one label per cell.")
    out = {}
    for k in ks:
        clf = KNeighborsClassifier(n_neighbors=min(int(k), len(xr))).fit(xr, yr)
        out[int(k)] = float(np.mean(clf.predict(xg) == yg))
    return out


def median_bandwidth(real, *, max_cells: int | None = 2000, seed: int = 0) -> float:
    """The median heuristic: the median pairwise Euclidean distance among the ``real`` cells
    (1.0 when they are all identical). Computed from the reference set alone, so that every
    set compared with it is measured with the same kernel."""
    x = _subsample(as_matrix(real), max_cells, np.random.default_rng(seed))
    d = _sqdist(x, x)[np.triu_indices(len(x), 1)]
    return float(np.sqrt(np.median(d))) if d.size and np.median(d) > 0 else 1.0


def mmd_rbf(x, y, *, bandwidth: float | None = None, max_cells: int | None = 2000, seed=0):
    """Squared maximum mean discrepancy with a Gaussian kernel ``exp(-|a-b|^2 / (2 s^2))``.

    ``x`` is the reference (real) set: ``s`` is :func:`median_bandwidth` of ``x`` unless
    ``bandwidth`` gives it, so comparing several sets with the same ``x`` uses one kernel.
    The biased (V-statistic) estimate: 0 for identical sets, >= 0.
    """
    rng = np.random.default_rng(seed)
    x, y = as_matrix(x), as_matrix(y)
    _same_width(x, y)
    if bandwidth is None:
        bandwidth = median_bandwidth(x, max_cells=max_cells, seed=seed)
    x, y = _subsample(x, max_cells, rng), _subsample(y, max_cells, rng)
    g = 1.0 / (2.0 * bandwidth**2)
    kxx = np.exp(-g * _sqdist(x, x)).mean()
    kyy = np.exp(-g * _sqdist(y, y)).mean()
    kxy = np.exp(-g * _sqdist(x, y)).mean()
    return float(max(kxx + kyy - 2.0 * kxy, 0.0))


def energy_distance(x, y, *, max_cells: int | None = 2000, seed=0) -> float:
    """``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (Euclidean; 0 exactly when the sets are identical)."""
    rng = np.random.default_rng(seed)
    x, y = as_matrix(x), as_matrix(y)
    _same_width(x, y)
    x, y = _subsample(x, max_cells, rng), _subsample(y, max_cells, rng)

    def mean_d(a, b):
        return float(_dist(a, b).mean())

    return float(max(2 * mean_d(x, y) - mean_d(x, x) - mean_d(y, y), 0.0))


def _ot():
    try:
        import ot
    except ImportError:
        raise C2SError(
            "This metric needs POT (Python Optimal Transport): pip install 'c2s[eval]' "
            "(or pip install pot)."
        ) from None
    return ot


def wasserstein(x, y, *, max_cells: int | None = 2000, seed=0) -> float:
    """Exact 1-Wasserstein (earth mover's) distance between the two sets as uniform point
    clouds with Euclidean cost (POT's network simplex)."""
    ot = _ot()
    rng = np.random.default_rng(seed)
    x, y = as_matrix(x), as_matrix(y)
    _same_width(x, y)
    x, y = _subsample(x, max_cells, rng), _subsample(y, max_cells, rng)
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    return float(ot.emd2(a, b, _dist(x, y), numItermax=10_000_000))


def gromov_wasserstein(x, y, *, max_cells: int | None = 1000, seed=0) -> float:
    """Gromov-Wasserstein discrepancy (square loss) between the two sets' internal Euclidean
    distance matrices, each scaled by its mean distance, so it compares shapes and is blind
    to where each set sits and to its overall scale. The features need not match."""
    ot = _ot()
    rng = np.random.default_rng(seed)
    x, y = as_matrix(x), as_matrix(y)
    x, y = _subsample(x, max_cells, rng), _subsample(y, max_cells, rng)
    cx, cy = _dist(x, x), _dist(y, y)
    cx /= cx.mean() or 1.0
    cy /= cy.mean() or 1.0
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    return float(max(ot.gromov.gromov_wasserstein2(cx, cy, a, b, "square_loss"), 0.0))


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``: the Frechet (2-Wasserstein) distance
    between two Gaussians."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: regularize
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(max(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean), 0.0))


def scfid(real, generated, *, embed: Callable | None = None) -> float:
    """The Frechet distance between Gaussians fitted to the two sets' embeddings.

    ``embed`` maps cells to vectors. The published scFID uses a single-cell foundation
    model's embeddings; with the default (a PCA fit on the real cells) this is a PCA-space
    Frechet distance, reported as ``frechet_pca`` by :func:`generation_metrics`. A C2S
    model's embeddings (e.g. ``lambda a: c2s.tl.embed(a, model, inplace=False).to_numpy()``)
    give a model-space one.
    """
    f = embed or pca_space(real)
    er, eg = np.asarray(f(real), dtype=np.float64), np.asarray(f(generated), dtype=np.float64)
    if len(er) < 2 or len(eg) < 2:
        raise C2SError("scFID needs at least two cells on each side.")
    return frechet_distance(
        er.mean(0), np.cov(er, rowvar=False), eg.mean(0), np.cov(eg, rowvar=False)
    )


# -- genes ---------------------------------------------------------------------------------------
def _words(sentences) -> list[list[str]]:
    return [s.split() if isinstance(s, str) else [str(g) for g in s] for s in sentences]


def gene_validity(sentences, vocabulary) -> float:
    """Fraction of generated genes (over all cells) that are in ``vocabulary``."""
    vocab = {str(g).upper() for g in vocabulary}
    words = [g for s in _words(sentences) for g in s]
    return float(np.mean([g.upper() in vocab for g in words])) if words else float("nan")


def gene_uniqueness(sentences) -> float:
    """Mean over cells of (distinct genes / genes): 1 when no cell repeats a gene."""
    cells = [s for s in _words(sentences) if s]
    return float(np.mean([len(set(s)) / len(s) for s in cells])) if cells else float("nan")


def top_gene_overlap(
    generated, generated_labels, real, real_labels, *, n_top: int = 50
) -> dict[str, float]:
    """Per label: the share of the ``n_top`` genes most often present in the real cells'
    sentences that are also among the ``n_top`` most often present in the generated ones
    (1: the same marker genes; sentences are lists or space-joined strings); ``"mean"``
    averages over the labels present on both sides."""
    from collections import Counter

    def top(sents, labels, lab):
        c = Counter(
            g.upper() for s, y in zip(sents, labels, strict=True) if str(y) == lab for g in s
        )
        return {g for g, _ in c.most_common(n_top)}

    gs, rs = _words(generated), _words(real)
    labs = sorted({str(y) for y in generated_labels} & {str(y) for y in real_labels})
    out = {}
    for lab in labs:
        want, got = top(rs, real_labels, lab), top(gs, generated_labels, lab)
        out[lab] = len(want & got) / len(want) if want else float("nan")
    out["mean"] = float(np.nanmean(list(out.values()))) if out else float("nan")
    return out


def generation_metrics(
    real,
    real_labels,
    generated,
    generated_labels,
    *,
    ks: Sequence[int] = KS,
    n_components: int = 50,
    max_cells: int = 2000,
    seed: int = 0,
    with_ot: bool = True,
) -> dict:
    """The distribution metrics above in one PCA space fitted on ``real``: k-NN accuracy at
    ``ks``, MMD (its bandwidth from ``real`` alone, reported as ``mmd_bandwidth``, so every
    set compared with the same real cells uses one kernel), energy distance, the Frechet
    distance in that PCA space (``frechet_pca``; not the published scFID, which uses a
    foundation model's embeddings) and (``with_ot``, needs POT) Wasserstein and
    Gromov-Wasserstein distances."""
    f = pca_space(real, n_components, seed)
    xr, xg = f(real), f(generated)
    bandwidth = median_bandwidth(xr, max_cells=max_cells, seed=seed)  # one kernel per real set
    out = {
        "knn_accuracy": knn_accuracy(xr, real_labels, xg, generated_labels, ks=ks, embed=as_matrix),
        "mmd": mmd_rbf(xr, xg, bandwidth=bandwidth, max_cells=max_cells, seed=seed),
        "mmd_bandwidth": bandwidth,
        "energy_distance": energy_distance(xr, xg, max_cells=max_cells, seed=seed),
        "frechet_pca": scfid(xr, xg, embed=as_matrix),
        "n_real": len(xr),
        "n_generated": len(xg),
        "pca_components": int(xr.shape[1]),
    }
    if with_ot:
        out["wasserstein"] = wasserstein(xr, xg, max_cells=max_cells, seed=seed)
        out["gromov_wasserstein"] = gromov_wasserstein(
            xr, xg, max_cells=min(max_cells, 1000), seed=seed
        )
    return out
