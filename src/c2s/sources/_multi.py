"""Several inputs as one source of rows: the files' cells one after another, their genes
aligned by name on one gene list (the same genes, their union or their intersection), and a
column that names each cell's file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from c2s._errors import C2SError
from c2s._warn import warn_user
from c2s.sources._genes import check_gene_names
from c2s.sources._matrix import MatrixSource, open_matrix

GENE_MODES = ("same", "union", "intersection")


@dataclass
class MultiSource(MatrixSource):
    """Rows of several sources; ``maps[i]`` takes source ``i``'s gene columns to the shared
    gene list (-1: left out)."""

    parts: list = field(default_factory=list, repr=False)
    maps: list = field(default_factory=list, repr=False)
    starts: np.ndarray = field(default=None, repr=False)  # first row of each part, then n_obs
    names: list = field(default_factory=list)
    genes: np.ndarray = field(default=None, repr=False)
    report: dict = field(default_factory=dict)
    source_key: str = "source_file"

    @property
    def label(self) -> str:
        return f"{self.parts[0].label} of {len(self.parts)} inputs"

    @property
    def reopenable(self) -> bool:
        return all(p.reopenable for p in self.parts)

    @property
    def in_memory(self) -> bool:
        return False

    @property
    def always_carried(self) -> tuple[str, ...]:
        return (self.source_key,)

    def gene_names(self, *, where: str | None = None) -> np.ndarray:
        where = f"the gene names of {self.label}" if where is None else where
        return check_gene_names(self.genes, where=where)

    def provenance(self) -> dict:
        return super().provenance() | {"file": self.names, "genes": self.report}

    def read_rows_raw(self, start: int, stop: int):
        blocks = []
        for i, part in enumerate(self.parts):
            a, b = max(start, self.starts[i]), min(stop, self.starts[i + 1])
            if a < b:
                off = self.starts[i]
                indptr, indices, data = part.read_rows_raw(a - off, b - off)
                blocks.append(self._aligned(i, indptr - indptr[0], indices, data, b - a))
        m = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
        return m.indptr, m.indices, m.data

    def _aligned(self, i: int, indptr, indices, data, n_rows: int) -> sp.csr_matrix:
        cols = self.maps[i][indices]
        keep = cols >= 0
        if not keep.all():
            kept = np.concatenate([[0], np.cumsum(keep)])
            indptr, cols, data = kept[indptr], cols[keep], data[keep]
        m = sp.csr_matrix((data, cols, indptr), shape=(n_rows, len(self.genes)))
        m.has_sorted_indices = False
        m.sort_indices()  # the shared order may differ from this file's
        return m


def _name(data, i: int) -> str:
    if isinstance(data, str | os.PathLike):
        return Path(data).name
    return str(getattr(data, "filename", None) or f"input {i}")


def open_many(
    inputs,
    *,
    layer=None,
    use_raw=False,
    var_names=None,
    genes: str = "same",
    source_key: str = "source_file",
) -> MultiSource:
    """One :class:`MultiSource` over ``inputs`` (AnnData objects or .h5ad paths): their
    cells in order, genes aligned by name. ``genes="same"`` refuses inputs whose gene sets
    differ and says how; ``"union"`` keeps every gene (a gene a file lacks counts as not
    expressed in that file's cells) and ``"intersection"`` only the genes every file has;
    both report per file what was added or left out (a warning, and ``report``)."""
    if genes not in GENE_MODES:
        raise C2SError(f"genes must be one of {', '.join(GENE_MODES)}, not {genes!r}.")
    if not isinstance(source_key, str) or not source_key.strip():
        raise C2SError(f"source_key must name an obs column, got {source_key!r}.")
    _refuse_repeats(inputs)
    names = [_name(d, i) for i, d in enumerate(inputs)]
    if len(set(names)) < len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    parts = [open_matrix(d, layer=layer, use_raw=use_raw, var_names=var_names) for d in inputs]
    per = [p.gene_names(where=f"the gene names of {n}") for p, n in zip(parts, names, strict=True)]
    shared, maps, report = _align_genes(names, per, genes)
    obs = _joined_obs(parts, names, source_key)
    starts = np.concatenate([[0], np.cumsum([p.n_obs for p in parts])])
    var = pd.DataFrame(index=pd.Index(shared, dtype=object))
    return MultiSource(
        where=parts[0].where,
        shape=(int(starts[-1]), len(shared)),
        var=var,
        obs=obs,
        var_names=var_names,
        parts=parts,
        maps=maps,
        starts=starts,
        names=names,
        genes=np.asarray(shared, dtype=object),
        report={"mode": genes, "inputs": report},
        source_key=source_key,
    )


def _align_genes(names: list[str], per: list[np.ndarray], genes: str):
    """The shared gene list, each input's map onto it, and (where the sets differ) what
    each input lacks or leaves out, warned about."""
    sets = [set(g) for g in per]
    differ = [i for i in range(1, len(per)) if sets[i] != sets[0]]
    if genes == "same" and differ:
        raise C2SError(
            "The inputs' gene sets differ: "
            + "; ".join(_difference(names, sets, 0, i) for i in differ)
            + ". Choose genes='union' (--genes union: a gene a file lacks counts as not "
            "expressed in its cells) or genes='intersection' (--genes intersection: only the "
            "genes every file has)."
        )
    if genes == "intersection":
        shared = [g for g in per[0] if all(g in s for s in sets[1:])]
        if not shared:
            raise C2SError(f"The inputs {names} have no gene in common.")
    else:  # first file's order, then each later file's new genes in its order
        shared = list(dict.fromkeys(g for p in per for g in p))
    position = pd.Index(shared)
    maps = [position.get_indexer(g).astype(np.int64) for g in per]
    report = {}
    if differ:
        report = {
            n: {
                "genes": len(g),
                "absent": len(shared) - int((m >= 0).sum()),
                "left_out": int((m < 0).sum()),
            }
            for n, g, m in zip(names, per, maps, strict=True)
        }
        detail = "; ".join(
            f"{n}: {r['absent']} of the {len(shared)} genes absent"
            + (f", {r['left_out']} of its genes left out" if r["left_out"] else "")
            for n, r in report.items()
        )
        warn_user(f"Gene sets differ between the inputs ({genes}): {detail}.")
    return shared, maps, report


def _joined_obs(parts, names: list[str], source_key: str) -> pd.DataFrame:
    """The inputs' obs one after another, with ``source_key`` naming each cell's input;
    cell ids must stay unique."""
    obs = []
    for p, n in zip(parts, names, strict=True):
        if source_key in p.obs.columns:
            raise C2SError(
                f"{n} already has an obs column {source_key!r}; choose another "
                "source_key (--source-key)."
            )
        obs.append(p.obs.assign(**{source_key: n}))
    obs = pd.concat(obs, axis=0)
    if obs.index.has_duplicates:
        dup = obs.index[obs.index.duplicated()].unique()
        where = sorted(set(obs.loc[obs.index.isin(dup[:1]), source_key]))
        raise C2SError(
            f"{len(dup)} cell ids repeat across the inputs (e.g. {dup[0]!r} in "
            f"{' and '.join(where)}); a dataset's cell ids must be unique. Make them unique "
            "first, e.g. adata.obs_names = 'batch1_' + adata.obs_names."
        )
    obs[source_key] = pd.Categorical(obs[source_key], categories=names)
    return obs


def _refuse_repeats(inputs) -> None:
    """The same input twice (also by another path to the same file, or the same AnnData
    object) would put its cells in the dataset twice: repeated cell ids, and the same cell
    in training and test."""
    seen: dict = {}
    for i, d in enumerate(inputs):
        path = d if isinstance(d, str | os.PathLike) else getattr(d, "filename", None)
        key, what = ("object", id(d)), f"input {i + 1} (an AnnData)"
        if path is not None:
            what = repr(str(path))
            try:
                st = os.stat(path)
                key = ("file", st.st_dev, st.st_ino)
            except OSError:  # opening it reports what is wrong
                key = ("path", os.path.realpath(path))
        if key in seen:
            raise C2SError(
                f"{seen[key]} and {what} are the same input: its cells would be in the dataset "
                "twice, with repeated cell ids and the same cells in training and test. Give "
                "each input once."
            )
        seen[key] = what


def _difference(names, sets, a: int, b: int) -> str:
    lacks, extra = sorted(sets[a] - sets[b]), sorted(sets[b] - sets[a])
    out = []
    if lacks:
        out.append(
            f"{names[b]} lacks {len(lacks)} of {names[a]}'s genes (e.g. {', '.join(lacks[:3])})"
        )
    if extra:
        out.append(
            f"{names[b]} has {len(extra)} genes {names[a]} lacks (e.g. {', '.join(extra[:3])})"
        )
    return " and ".join(out)
