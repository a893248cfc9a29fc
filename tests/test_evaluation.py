"""c2s evaluate: the model's tasks next to the baselines, the same numbers recomputed from
the files it writes, clear refusals."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

import c2s
from c2s._errors import C2SError
from c2s.cli import main


def test_evaluate_cli_writes_report_with_baselines(trained_model, pbmc_dataset, tmp_path, capsys):
    out = tmp_path / "ev"
    code = main(
        ["evaluate", str(trained_model), str(pbmc_dataset.path), "--out", str(out), "--json"]
    )
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res == json.loads((out / "metrics.json").read_text())
    a, g = res["annotation"], res["generation"]
    assert set(a) >= {"c2s", "logistic_regression", "knn_pca"}
    assert set(g) >= {"c2s", "class_mean", "resampled_real"}
    # the model's accuracy, recomputed from predictions.csv and the dataset's labels
    pred = pd.read_csv(out / "predictions.csv", index_col="cell_id")
    truth = pbmc_dataset.obs(["cell_type"]).loc[pred.index.astype(str), "cell_type"].astype(str)
    assert a["c2s"]["accuracy"] == pytest.approx(
        np.mean(pred["c2s_prediction"].to_numpy() == truth.to_numpy())
    )
    assert a["n_eval"] == len(pred) == len(pbmc_dataset.split_indices()["test"])
    assert a["logistic_regression"]["accuracy"] > 0.7
    # generation: as many cells per type as the test split, valid and unique genes
    test_counts = (
        pbmc_dataset.obs(["cell_type", "split"])
        .query("split == 'test'")["cell_type"]
        .value_counts()
    )
    assert g["n_cells"] == int(test_counts.sum())
    assert g["c2s"]["valid_gene_rate"] == 1.0 and g["c2s"]["unique_gene_rate"] == 1.0
    # resampled real cells are closer to the held-out cells than the class-mean cell is
    assert g["resampled_real"]["mmd"] < g["class_mean"]["mmd"]
    assert set(g["c2s"]["knn_accuracy"]) == {"3", "5", "10", "25"}
    assert 0 < res["reconstruction"]["r2"] <= 1 and "knn10_accuracy" in res["embedding"]
    for name in res["plots"].values():
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "logistic regression" in report and "resampled real" in report
    # an existing report is kept without --overwrite
    assert main(["evaluate", str(trained_model), str(pbmc_dataset.path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_evaluate_refuses_a_missing_split(trained_model, pbmc_dataset):
    with pytest.raises(C2SError, match="no 'holdout' cells"):
        c2s.evaluate(trained_model, pbmc_dataset, split="holdout")


def test_every_trained_task_is_scored(trained_model, pbmc, tmp_path):
    """Label tasks on single cells (raw and calibrated scoring) and on groups of cells
    (tissue), descriptions by text overlap, and the model-space Frechet distance; an unknown
    task is an error."""
    cells = pbmc.copy()
    ct = cells.obs["cell_type"].astype(str)
    cells.obs["tissue"] = np.where(ct.str.contains("CD4|CD8"), "blood", "bone marrow")
    cells.obs["abstract"] = "A sample of " + ct + " cells."
    ds = c2s.io.convert(
        cells,
        tmp_path / "ds",
        obs_keys=["cell_type", "organism", "tissue", "abstract"],
        seed=0,
        stratify="cell_type",
    )
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    tasks = [
        "tissue_prediction",
        "cell_type_prediction",
        "cell_type_generation",
        "natural_language_interpretation",
    ]
    with pytest.warns(UserWarning):  # tasks the model was not trained for
        res = c2s.evaluate(
            trained_model, ds, tasks=tasks, model_frechet=True, temperature=0.5, top_p=0.9
        )
    a = res["annotation"]
    assert a["task"] == "cell_type_prediction"  # single-cell label tasks first
    assert {"c2s", "c2s_content_free", "c2s_length_norm", "logistic_regression"} <= set(a)
    for name in ("c2s", "c2s_content_free", "c2s_length_norm"):
        assert 0 <= a[name]["accuracy"] <= 1 and "ci95" in a[name]
    t = res["other_label_tasks"]["tissue_prediction"]
    assert t["multi_cell"] and t["labels"] == ["blood", "bone marrow"]
    assert t["n_eval"] == len(ds.split_indices()["test"]) and 0 <= t["c2s"]["accuracy"] <= 1
    assert t["logistic_regression"]["accuracy"] > 0.8  # the tissue follows the cell type
    d = res["description"]
    n_texts = ds.obs(["abstract", "split"]).query("split == 'test'")["abstract"].nunique()
    assert d["n_groups"] >= n_texts  # groups of at most 20 cells, one text each
    assert 0 <= d["token_f1"] <= 1 and "text_similarity" in d
    g = res["generation"]["c2s"]
    assert g["sampling"]["temperature"] == 0.5 and g["sampling"]["top_p"] == 0.9
    assert g["frechet_model"] > 0 and res["generation"]["resampled_real"]["frechet_model"] > 0
    assert not res["skipped"]
    report = c2s.evaluation.headline_table(res)
    assert "tissue_prediction, groups of cells" in report and "content-free" in report
    with pytest.raises(C2SError, match="Cannot evaluate task 'cell_typing'"):
        c2s.evaluate(trained_model, ds, tasks=["cell_typing"])


def test_a_capped_evaluation_uses_a_stratified_sample(trained_model, pbmc_dataset):
    """max_cells / max_train_cells bound the cells every part uses; the report says so."""
    res = c2s.evaluate(
        trained_model,
        pbmc_dataset,
        max_cells=30,
        max_train_cells=120,
        parts=["annotation", "embedding", "generation"],
    )
    idx = pbmc_dataset.split_indices()
    a, g = res["annotation"], res["generation"]
    assert 25 <= a["n_eval"] <= 40 and 110 <= a["n_train"] <= 130
    assert g["n_cells"] == a["n_eval"]  # as many generated cells as evaluated ones
    used = res["dataset"]["cells_used"]
    assert used["test"] == f"{a['n_eval']} of {len(idx['test'])}"
    assert used["train"] == f"{a['n_train']} of {len(idx['train'])}"
    from c2s.evaluation import report_sections

    assert "Cells used (a seeded sample" in report_sections(res)
    again = c2s.evaluate(
        trained_model, pbmc_dataset, max_cells=30, max_train_cells=120, parts=["annotation"]
    )
    same, first = again["annotation"]["c2s"], a["c2s"]  # the same seeded sample
    assert same["accuracy"] == first["accuracy"] and same["per_class"] == first["per_class"]


def test_the_keywords_of_evaluate_are_the_options_fields():
    """One source for the settings: every field of EvalOptions is a keyword of evaluate with
    the same default (and a flag's help in its metadata); an options object works too."""
    from c2s.evaluation import EvalOptions, evaluate
    from c2s.evaluation._options import PARTS

    params = inspect.signature(evaluate).parameters
    for f in dataclasses.fields(EvalOptions):
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY, f.name
        assert params[f.name].default == f.default, f.name
        assert f.metadata["help"], f.name
    assert list(params)[:3] == ["model", "dataset", "out"]
    assert dataclasses.fields(EvalOptions)[-1].name == "n_samples"
    assert {"options", "overwrite", "plot_dir", "verbose", "stopwatch"} <= set(params)
    assert EvalOptions.__dataclass_fields__["parts"].metadata["choices"] == PARTS
    # keywords replace an options object's fields; the rest stay
    base = EvalOptions(split="validation", seed=3)
    o = EvalOptions.from_keywords(base, seed=4, parts=["generation"])
    assert (o.split, o.seed, o.parts) == ("validation", 4, ("generation",))
    assert EvalOptions.from_keywords(base) is base and base.seed == 3
    assert EvalOptions.from_keywords(None, n_samples=2) == EvalOptions(n_samples=2)


def test_evaluate_refuses_bad_settings_before_loading_anything(tmp_path):
    """An unknown keyword is a TypeError and an unknown part a C2SError, both before the
    model (here a path that does not exist) is loaded."""
    missing = tmp_path / "no-model"
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_genes'"):
        c2s.evaluate(missing, missing, max_genes=3)
    with pytest.raises(C2SError, match=r"Unknown evaluation part\(s\) \['plots'\]"):
        c2s.evaluate(missing, missing, parts=["annotation", "plots"])
    with pytest.raises(C2SError, match="not both"):
        c2s.evaluate(missing, missing, tmp_path / "ev", plot_dir=tmp_path)


def test_evaluate_takes_an_options_object(trained_model, pbmc_dataset):
    from c2s.evaluation import EvalOptions

    opts = EvalOptions(max_cells=30, max_train_cells=120, parts=["annotation"])
    res = c2s.evaluate(trained_model, pbmc_dataset, options=opts)
    again = c2s.evaluate(
        trained_model, pbmc_dataset, max_cells=30, max_train_cells=120, parts=["annotation"]
    )
    assert res["annotation"]["c2s"]["accuracy"] == again["annotation"]["c2s"]["accuracy"]
    assert res["dataset"]["cells_used"] == again["dataset"]["cells_used"]


def test_quickstart_takes_out_and_its_old_name(tmp_path):
    """``out`` is the quickstart's directory; ``out_dir=`` still works, warned (the options
    are checked before any work, so a bad one stops both at once)."""
    from c2s.quickstart import run_quickstart

    assert next(iter(inspect.signature(run_quickstart).parameters)) == "out"
    with pytest.raises(C2SError, match="epochs must be 0"):
        run_quickstart(out=tmp_path / "q", epochs=-1, verbose=False)
    with (
        pytest.warns(FutureWarning, match="out_dir= is now called out="),
        pytest.raises(C2SError, match="epochs must be 0"),
    ):
        run_quickstart(out_dir=tmp_path / "q", epochs=-1, verbose=False)
    assert not (tmp_path / "q").exists()


def test_umap_of_more_cells_than_scanpy_handles_by_default():
    """Above 4,096 cells the map takes exact neighbours from scikit-learn (umap-learn would
    switch to NN-descent); the embedding plots of an atlas-sized evaluation go through it."""
    pytest.importorskip("umap")
    from c2s.tl import layout_2d

    X = np.random.default_rng(0).normal(size=(4200, 6))
    X[:2100] += 6.0  # two groups
    Y, method = layout_2d(X, 0)
    assert method == "umap"
    assert Y.shape == (4200, 2) and np.isfinite(Y).all()
    inside = np.linalg.norm(Y[:2100] - Y[:2100].mean(0), axis=1).mean()
    assert np.linalg.norm(Y[:2100].mean(0) - Y[2100:].mean(0)) > 2 * inside
