"""One contract for the ``c2s.tl`` verbs, checked over their signatures (as scanpy checks its
API) and by running them: inputs resolved the same way everywhere, ``layer`` for AnnData
layers and ``hidden_layer`` for the model's, ``inplace`` for what is written, and every written
field named in the docstring."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest

import c2s
from c2s._errors import C2SError

VERBS = {name: getattr(c2s.tl, name) for name in c2s.tl.VERBS}
POSITIONAL = {
    "predict": ["data", "model"],
    "embed": ["data", "model"],
    "attention": ["data", "model"],
    "describe": ["data", "model"],
    "perturb": ["data", "model", "perturbations"],
    "screen": ["data", "model", "perturbations"],
    "generate": ["model", "labels"],
}
INPUT = {"split": None, "layer": None, "use_raw": False, "var_names": None}
ANNOTATING = ("predict", "embed")


def params(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


@pytest.mark.parametrize("name", sorted(VERBS))
def test_signature_convention(name):
    p = params(VERBS[name])
    positional = [k for k, v in p.items() if v.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional == POSITIONAL[name], "everything after the data and model is keyword-only"
    if "data" in p:  # one way to choose the cells of every input
        assert {k: p[k].default for k in INPUT} == INPUT
    if "layer" in p:
        assert p["layer"].annotation in ("str | None", str | None)  # an AnnData layer name
    if "hidden_layer" in p:
        assert p["hidden_layer"].default == -1
    assert (name in ANNOTATING) == ("inplace" in p)
    if name in ANNOTATING:
        assert p["inplace"].default is True and "key_added" in p
    doc = inspect.getdoc(VERBS[name])
    assert "Returns\n-------" in doc, "the docstring says what comes back and what is written"


def _norm(doc: str) -> str:
    return re.sub(r"\s+", " ", doc)


def _written(before, after) -> set[tuple[str, str]]:
    out = set()
    for attr in ("obs", "obsm", "uns"):
        old = set(getattr(before, attr).keys())
        out |= {(attr, k) for k in set(getattr(after, attr).keys()) - old}
    return out


def _documented(doc: str, attr: str, key: str, key_added: str) -> bool:
    suffix = key[len(key_added) :]
    spelled = f'{attr}[key_added + "{suffix}"]' if suffix else f"{attr}[key_added]"
    return spelled in doc


@pytest.fixture(scope="module")
def model(trained_model):
    from c2s.model import C2SModel

    return C2SModel.from_pretrained(trained_model, device="cpu")


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("predict", {"key_added": "p"}),
        ("predict", {"key_added": "f", "mode": "free", "max_new_tokens": 4}),
        ("embed", {"key_added": "e"}),
    ],
)
def test_every_written_field_is_documented_and_inplace_false_writes_nothing(model, pbmc, name, kw):
    verb = VERBS[name]
    cells = pbmc[:6].copy()
    before = cells.copy()
    assert verb(cells, model, n_genes=10, **kw) is None
    written = _written(before, cells)
    assert written, "an annotating verb writes something"
    doc = _norm(inspect.getdoc(verb))
    missing = [w for w in written if not _documented(doc, *w, kw["key_added"])]
    assert not missing, f"written but not in the docstring: {missing}"
    # inplace=False: the same results come back, nothing is written
    fresh = pbmc[:6].copy()
    res = verb(fresh, model, n_genes=10, inplace=False, **kw)
    kind = c2s.tl.EmbeddingResult if name == "embed" else c2s.tl.PredictionResult
    assert isinstance(res, kind) and list(res.index) == list(fresh.obs_names)
    assert not _written(before, fresh) and list(fresh.obs.columns) == list(before.obs.columns)
    if name == "embed":
        np.testing.assert_allclose(res.to_numpy(), cells.obsm["e"], atol=1e-5)
    else:
        assert list(res.labels) == list(cells.obs[kw["key_added"]])


def test_inputs_are_resolved_one_way(model, pbmc, pbmc_dataset):
    with pytest.raises(C2SError, match="inplace=False"):
        c2s.tl.predict(pbmc_dataset, model, split="test")
    with pytest.raises(C2SError, match="inplace=False"):
        c2s.tl.embed(pbmc_dataset.path, model)
    with pytest.raises(C2SError, match="split= applies to c2s datasets"):
        c2s.tl.embed(pbmc[:3].copy(), model, split="test")
    for verb in (c2s.tl.describe, c2s.tl.attention):
        with pytest.raises(C2SError, match="ranked when it was converted"):
            verb(pbmc_dataset, model, layer="counts")
    with pytest.raises(C2SError, match="read it first"):
        c2s.tl.predict("cells.h5ad", model, inplace=False)


def test_layer_and_var_names_reach_every_verb_with_cells(model, pbmc):
    """Expression from a layer and names from a var column give the same results as the same
    values in X with the names in the index."""
    ref = pbmc[:5].copy()
    odd = ref.copy()
    odd.layers["lognorm"] = odd.X.copy()
    odd.X = -np.ones(odd.shape, dtype=np.float32)  # scaled-looking: X cannot be ranked
    odd.var["symbol"] = odd.var_names.astype(str)
    odd.var_names = [f"ENSG{i:011d}" for i in range(odd.n_vars)]
    kw = {"layer": "lognorm", "var_names": "symbol"}
    a = c2s.tl.predict(ref, model, inplace=False)
    b = c2s.tl.predict(odd, model, inplace=False, **kw)
    assert list(a.labels) == list(b.labels)
    e1 = c2s.tl.embed(ref, model, inplace=False)
    e2 = c2s.tl.embed(odd, model, inplace=False, **kw)
    np.testing.assert_allclose(e1.to_numpy(), e2.to_numpy(), atol=1e-5)
    att1 = c2s.tl.attention(ref, model, cells=[0], n_genes=5)
    att2 = c2s.tl.attention(odd, model, cells=[0], n_genes=5, **kw)
    pd.testing.assert_frame_equal(next(iter(att1.values())), next(iter(att2.values())))
    every = {"perturbation_key": None}  # every cell is a control
    p1 = c2s.tl.perturb(ref[:2].copy(), model, ["IFNG"], n_genes=5, seed=0, **every)
    p2 = c2s.tl.perturb(odd[:2].copy(), model, ["IFNG"], n_genes=5, seed=0, **kw, **every)
    assert list(p1.obs["c2s_sentence"]) == list(p2.obs["c2s_sentence"])
    d1 = c2s.tl.describe(ref, model, n_genes=5, max_new_tokens=3)
    d2 = c2s.tl.describe(odd, model, n_genes=5, max_new_tokens=3, **kw)
    assert list(d1["description"]) == list(d2["description"])
    with pytest.raises(C2SError, match="scaled"):
        c2s.tl.embed(odd, model, inplace=False)  # without the layer, X is what is ranked


def test_gene_tries_live_in_the_model(model):
    genes = model.config.genes
    a = model.gene_trie(genes)
    assert model.gene_trie(genes) is a  # cached
    assert model.gene_trie(genes, anchor="Cell 1:", sep="\n") is not a
    b = model.gene_trie(genes[:10])
    assert b is not a and b.n_genes == 10
    assert not hasattr(model, "_gene_tries")  # nothing patched onto the object
