"""Prompt tasks: compat formats byte for byte (docs/formats.md), grouping, pairing, parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from c2s._errors import C2SError
from c2s.prompts import (
    Renderer,
    get_task,
    list_tasks,
    load_profile,
    multi_cell_text,
    task_from_template,
)
from c2s.sentences import CellSentences, Vocab

GENES = ["Cd3e", "MS4A1", "LYZ", "GNLY", "NKG7", "CD14", "FTL", "CD74"]


def make_cells(sentences, **obs) -> CellSentences:
    """Cells from lists of gene indices, with obs columns."""
    lens = [len(s) for s in sentences]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    flat = np.concatenate([np.asarray(s, dtype=np.int32) for s in sentences]) if sum(lens) else []
    frame = pd.DataFrame(obs, index=[f"c{i}" for i in range(len(sentences))])
    return CellSentences(flat, offsets, Vocab.from_names(GENES), frame)


def names(idx) -> str:
    return " ".join(GENES[i].upper() for i in idx)


# The released models' canonical formats, written out here independently of the package's JSON.
def compat_cell_type_prediction(n, organism, sentence):
    return (
        f"The following is a list of {n} gene names ordered by descending expression level in a "
        f"{organism} cell. Your task is to give the cell type which this cell belongs to based on "
        f"its gene expression.\nCell sentence: {sentence}.\nThe cell type corresponding to these "
        "genes is:"
    )


def test_compat_cell_type_prediction_byte_for_byte():
    cs = make_cells(
        [[6, 7, 2], [1, 0]], cell_type=["CD14+ Monocyte", "B cell"], organism="Homo sapiens"
    )
    ex = list(Renderer("cell_type_prediction", n_genes=200).examples(cs))
    assert ex[0].prompt == compat_cell_type_prediction(200, "Homo sapiens", "FTL CD74 LYZ")
    assert ex[0].response == "CD14+ Monocyte."
    # num_genes is the requested k even though the cell has fewer genes
    assert "list of 200 gene names" in ex[1].prompt and "Cell sentence: MS4A1 CD3E." in ex[1].prompt
    assert ex[0].text == ex[0].prompt + " " + ex[0].response


def test_compat_cell_type_generation_and_top_k_cut():
    cs = make_cells([[6, 7, 2, 3]], cell_type=["NK cell"], organism="Mus musculus")
    (ex,) = Renderer("cell_type_generation", n_genes=2).examples(cs)
    assert ex.prompt == (
        "Generate a list of 2 genes in order of descending expression which represent a "
        "Mus musculus cell of cell type NK cell.\nCell sentence:"
    )
    assert ex.response == "FTL CD74."


def test_compat_multi_cell_tasks_byte_for_byte():
    cs = make_cells(
        [[0, 1], [2], [3, 4, 5]],
        tissue=["blood"] * 3,
        organism=["Homo sapiens"] * 3,
        abstract=["Immune cells"] * 3,
    )
    r = Renderer("tissue_prediction", n_genes=10, min_cells=3, max_cells=3)
    (ex,) = r.examples(cs)
    order = list(ex.cells)
    block = "".join(f"Cell {i + 1}:\n{names(cs.cell(c))}.\n" for i, c in enumerate(order))
    assert ex.prompt == (
        "The following is a list of 10 gene names ordered by descending expression level for 3 "
        "different Homo sapiens cells. Your task is to give the tissue which these cells belong "
        f"to based on their gene expression.\nCell sentences:\n{block}.\nThe tissue which these "
        "cells belong to is:"
    )
    assert ex.response == "blood."
    assert ".\n.\nThe tissue" in ex.prompt  # the documented double full stop

    (gen,) = Renderer(
        "tissue_conditional_generation", n_genes=10, min_cells=3, max_cells=3
    ).examples(cs)
    assert gen.prompt == (
        "Generate a list of 10 genes in order of descending expression for 3 different "
        "Homo sapiens cells from a blood tissue.\nCell sentences:\n"
    )
    assert gen.response == multi_cell_text([names(cs.cell(c)) for c in gen.cells]) + "."

    (nl,) = Renderer(
        "natural_language_interpretation",
        n_genes=10,
        min_cells=3,
        max_cells=3,
        group_by=["abstract"],
    ).examples(cs)
    assert nl.prompt.endswith(
        f"these cells.\n{multi_cell_text([names(cs.cell(c)) for c in nl.cells])}.\nAbstract summary:"
    )
    assert nl.response == "Immune cells."


def test_compat_perturbation_byte_for_byte_and_pairing():
    cs = make_cells(
        [[0, 1], [2, 3], [4, 5], [6, 7], [1, 2]],
        perturbation=["control", "control", "IFNG", "TNF", "IFNG"],
        cell_type=["T", "B", "T", "B", "B"],
    )
    r = Renderer("perturbation_prediction", n_genes=2, seed=1)
    ex = list(r.examples(cs))
    assert len(ex) == 3
    for e in ex:
        ctrl, cell = e.cells
        assert cs.obs.perturbation.iloc[ctrl] == "control"
        assert cs.obs.cell_type.iloc[ctrl] == cs.obs.cell_type.iloc[cell]  # same context
        assert e.prompt == (
            "Given the following cell sentence of 2 expressed genes representing a cell's basal "
            f"state, predict the cell sentence after applying the perturbation: "
            f"{cs.obs.perturbation.iloc[cell]}.\nControl cell sentence: {names(cs.cell(ctrl))}.\n\n"
            "Perturbed cell sentence:"
        )
        assert e.response == f"{names(cs.cell(cell))}."
    # seeded: same seed, same pairs
    assert [e.cells for e in Renderer("perturbation_prediction", seed=1).examples(cs)] == [
        e.cells for e in ex
    ]


def test_pairing_picks_controls_at_random_within_context():
    n = 200
    pert = ["control"] * 50 + ["KO"] * (n - 50)
    cs = make_cells([[i % 8] for i in range(n)], perturbation=pert, cell_type=["T"] * n)
    chosen = [c for c, _ in Renderer("perturbation_prediction").pairs(cs, np.arange(n))]
    assert len(set(chosen)) > 40  # many different controls, not always the first


def test_grouping_sizes_and_labels():
    n = 103
    cs = make_cells(
        [[i % 8] for i in range(n)],
        tissue=["lung"] * 50 + ["gut"] * 53,
        organism=["Homo sapiens"] * n,
    )
    r = Renderer("tissue_prediction", min_cells=5, max_cells=20, seed=4)
    groups = r.groups(cs, np.arange(n))
    for g in groups:
        assert 5 <= len(g) <= 20
        assert cs.obs.tissue.iloc[g].nunique() == 1
    used = np.concatenate(groups)
    assert len(used) == len(set(used.tolist()))
    assert [list(g) for g in groups] == [
        list(g) for g in Renderer("tissue_prediction", seed=4).groups(cs, np.arange(n))
    ]


def test_paraphrase_profile_is_seeded_and_varied():
    cs = make_cells(
        [[i % 8, (i + 1) % 8] for i in range(40)],
        cell_type=["T"] * 40,
        organism=["Homo sapiens"] * 40,
    )
    a = [
        e.template
        for e in Renderer("cell_type_prediction", profile="paraphrase", seed=3).examples(cs)
    ]
    b = [
        e.template
        for e in Renderer("cell_type_prediction", profile="paraphrase", seed=3).examples(cs)
    ]
    assert a == b and len(set(a)) > 1
    assert len(load_profile("paraphrase")["cell_type_prediction"]) == len(set(a))
    ex = next(Renderer("cell_type_prediction", profile="paraphrase").examples(cs))
    assert ex.response == "T." and "CD3E" in ex.prompt


def test_every_profile_covers_every_task():
    for profile in ("compat", "paraphrase"):
        assert set(load_profile(profile)) == set(list_tasks())


@pytest.mark.parametrize(
    ("task", "answer", "expected"),
    [
        ("cell_type_prediction", " CD14+ Monocyte.\nextra", "CD14+ Monocyte"),
        ("cell_type_prediction", "B cell", "B cell"),
        ("cell_type_generation", "CD3D CD3E NKG7.", ["CD3D", "CD3E", "NKG7"]),
        ("tissue_conditional_generation", "Cell 1:\nA B.\nCell 2:\nC.\n.", [["A", "B"], ["C"]]),
        ("natural_language_interpretation", "These are T cells. ", "These are T cells"),
    ],
)
def test_parse(task, answer, expected):
    assert get_task(task).parse(answer) == expected


def test_unknown_task_lists_known_ones():
    with pytest.raises(C2SError, match="known tasks: cell_type_generation, cell_type_prediction"):
        Renderer("cell_type_annotation")


def test_missing_placeholder_column_is_named():
    cs = make_cells([[0, 1]], cell_type=["T"])
    with pytest.raises(C2SError, match=r"needs \['organism'\]"):
        list(Renderer("cell_type_prediction").examples(cs))
    # a constant fills it
    (ex,) = Renderer("cell_type_prediction", constants={"organism": "Mus musculus"}).examples(cs)
    assert "a Mus musculus cell" in ex.prompt


def test_missing_labels_are_dropped_counted_and_warned():
    cs = make_cells([[0], [1], [2]], cell_type=["T", None, " "], organism=["Homo sapiens"] * 3)
    with pytest.warns(UserWarning, match="2 of 3 cells"):
        ex = list(Renderer("cell_type_prediction").examples(cs))
    assert [e.cells for e in ex] == [(0,)]


def test_empty_input_is_refused():
    cs = make_cells([[0]], cell_type=["T"], organism=["Homo sapiens"])
    with pytest.raises(C2SError, match="no cells"):
        list(Renderer("cell_type_prediction").examples(cs, rows=[]))


def test_user_task_from_template():
    task = task_from_template(
        "test_disease_prediction",
        "Cell sentence: {cell_sentence}.\nThe donor ({donor}) has:",
        "{disease}.",
        register=False,
    )
    assert task.label == "disease" and task.columns() == {"donor", "disease"}
    cs = make_cells([[2, 0]], donor=["d1"], disease=["asthma"])
    (ex,) = Renderer(task, n_genes=1).examples(cs)
    assert ex.prompt == "Cell sentence: LYZ.\nThe donor (d1) has:" and ex.response == "asthma."
    assert task.parse("asthma.") == "asthma"
