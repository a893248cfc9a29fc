"""Rewards against hand-computed values; the registry's refusals before any training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from c2s._errors import C2SError
from c2s.inverse._models import InverseModel
from c2s.rewards import (
    check,
    expression_similarity,
    gene_validity,
    get,
    label,
    parse_spec,
    perturbation_program,
    text_similarity,
)

# expression at sentence position p: 3 - log10(1 + p)
INV = InverseModel.from_dict({"model": "linear", "slope": -1.0, "intercept": 3.0})


def f(p: int) -> float:
    return 3.0 - math.log10(1.0 + p)


def test_label_exact_after_normalization_and_partial_credit():
    comps = ["CD4 T cell.", "B cell", [{"role": "assistant", "content": " cd4  t CELL "}]]
    truth = ["cd4 t cell", "CD4 T cell", "CD4 T cell"]
    assert label(comps, truth) == [1.0, 0.0, 1.0]
    # {b, cell} against {cd4, t, cell}: 1 shared word of 4
    assert label(comps, truth, partial="tokens") == [1.0, 0.25, 1.0]
    with pytest.raises(C2SError, match="column 'label'"):
        label(comps)
    with pytest.raises(C2SError, match="partial"):
        label(comps, truth, partial="edit")


def test_gene_validity_counts_distinct_known_genes():
    genes = ["A", "B", "C", "D"]
    comps = ["A B C.", "A A B", "A X B", "a b c d", ""]
    assert gene_validity(comps, genes=genes) == pytest.approx([1.0, 2 / 3, 2 / 3, 1.0, 0.0])
    # a short answer scores against the number of genes asked for
    assert gene_validity(["A B C."], genes=genes, n_genes=4) == [0.75]


def test_expression_similarity_by_hand():
    comp, ref = ["A B C", "A B"], ["A C B", "A C"]
    got = expression_similarity(comp, ref, inverse=INV)
    same_genes = np.corrcoef([f(0), f(1), f(2)], [f(0), f(2), f(1)])[0, 1]
    missing = np.corrcoef([f(0), f(1), 0.0], [f(0), 0.0, f(1)])[0, 1]  # genes A, B, C
    assert got == pytest.approx([same_genes, missing])
    sp = expression_similarity(comp[:1], ref[:1], inverse=INV, method="spearman")
    assert sp == pytest.approx([0.5])  # ranks (3, 2, 1) against (3, 1, 2)
    assert expression_similarity(["A B C"], ["A B C"], inverse=INV) == pytest.approx([1.0])


def test_perturbation_program_by_hand():
    ctrl, pert, comp = ["A B C D"], ["C A B D"], ["B C A D"]
    # change from the control over the programme A, B, C
    obs = [f(1) - f(0), f(2) - f(1), f(0) - f(2)]  # order A < B < C
    pred = [f(2) - f(0), f(0) - f(1), f(1) - f(2)]  # order A < C < B
    # Kendall tau: (A,B) and (A,C) concordant, (B,C) discordant: (2 - 1) / 3
    tau = perturbation_program(comp, ctrl, pert, inverse=INV, program=["A", "B", "C"])
    assert tau == pytest.approx([1 / 3])
    r = perturbation_program(comp, ctrl, pert, inverse=INV, program=["a", "b", "c"],
                             method="pearson")  # fmt: skip
    assert r == pytest.approx([np.corrcoef(pred, obs)[0, 1]])
    # the programme from a column, per example; a perfect prediction scores 1
    same = perturbation_program(pert, ctrl, pert, inverse=INV, program=[["A", "B", "C"]])
    assert same == pytest.approx([1.0])
    with pytest.raises(C2SError, match="programme"):
        perturbation_program(comp, ctrl, pert, inverse=INV)


def test_text_similarity_is_the_cosine_of_the_embeddings():
    def enc(texts):
        v = np.array([[1.0, 1.0] if "t cell" in t.lower() else [1.0, 0.0] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    got = text_similarity(["a T cell", "a B cell"], ["T cell", "T cell"], encoder=enc)
    assert got == pytest.approx([1.0, 1 / math.sqrt(2)])


def test_registry_binds_options_and_refuses_bad_requests(monkeypatch):
    fn = get("label", partial="tokens")
    assert fn.__name__ == "label" and fn(["B cell"], label=["T cell"], prompts=["x"]) == [1 / 3]
    assert parse_spec("label") == ("label", 1.0, {})
    assert parse_spec("perturbation_program:2:method=pearson") == (
        "perturbation_program", 2.0, {"method": "pearson"},
    )  # fmt: skip
    with pytest.raises(C2SError, match="neither a weight"):
        parse_spec("label:heavy")
    with pytest.raises(C2SError, match="Unknown reward 'acuracy'"):
        get("acuracy")
    with pytest.raises(C2SError, match="needs \\['inverse'\\]"):
        get("expression_similarity")
    with pytest.raises(C2SError, match="Unknown reward"):
        check(["label", "nope"], ["label"])
    with pytest.raises(C2SError, match="column\\(s\\) \\['reference_cell'\\]"):
        check(["expression_similarity"], ["label"])
    with pytest.raises(C2SError, match="\\['program'\\]"):
        check(["perturbation_program"], ["control_cell", "perturbed_cell"])
    check(["perturbation_program"], ["control_cell", "perturbed_cell"], program=True)
    import c2s.metrics

    monkeypatch.setattr(c2s.metrics, "sentence_encoder", lambda model=None: None)
    with pytest.warns(UserWarning, match="text_similarity is skipped"):
        assert get("text_similarity") is None
