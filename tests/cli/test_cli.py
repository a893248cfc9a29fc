"""The command line, driven through ``c2s.cli.main(argv)`` as a user would."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from _helpers import assert_no_output

import c2s
from c2s.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one JSON object, got: {out!r}"
    return json.loads(lines[0])


@pytest.fixture
def h5ad(tmp_path, lognorm_adata):
    path = tmp_path / "cells.h5ad"
    lognorm_adata.copy().write_h5ad(path)
    return path


def test_convert_info_inverse_reconstruct(capsys, tmp_path, h5ad, lognorm_adata):
    out = tmp_path / "ds"
    info = run_json(
        capsys, "convert", h5ad, out, "--obs", "cell_type", "--stratify", "cell_type", "--seed", "3"
    )
    assert info["n_cells"] == lognorm_adata.n_obs
    assert info["obs_columns"] == ["cell_type"]
    assert info["cells_per_s"] > 0
    # The CLI output equals the Python API's on the same input.
    ref = c2s.sentences.from_anndata(lognorm_adata, seed=3)
    got = c2s.io.read_dataset(out).sentences()
    np.testing.assert_array_equal(got.genes, ref.genes)
    np.testing.assert_array_equal(got.offsets, ref.offsets)

    info = run_json(capsys, "info", out)
    assert info["inverse"] is None and info["split"]["train"] > 0

    fit = run_json(capsys, "inverse", "fit", out, "--plot-dir", tmp_path / "plots")
    assert fit["selected"] in ("rank_mean", "linear")
    assert (tmp_path / "plots" / "inverse_fit.png").stat().st_size > 1000
    stored = c2s.io.read_dataset(out).meta["inverse"]
    assert stored["selected"] == fit["selected"]

    ev = run_json(capsys, "inverse", "eval", out)
    assert set(ev["metrics"]) == {"rank_mean", "linear"}
    for m in ev["metrics"].values():
        assert -1 <= m["pearson"] <= 1 and m["n"] > 0
    assert ev["metrics"]["rank_mean"]["r2"] > ev["metrics"]["linear"]["r2"]

    rec = run_json(capsys, "inverse", "reconstruct", out, tmp_path / "rec.h5ad", "--split", "test")
    import anndata as ad

    a = ad.read_h5ad(tmp_path / "rec.h5ad")
    assert a.n_obs == rec["n_cells"] == info["split"]["test"]
    assert a.n_vars == lognorm_adata.n_vars


def test_n_genes_and_human_output(capsys, tmp_path, h5ad):
    code, out, _ = run(capsys, "convert", h5ad, tmp_path / "top", "--n-genes", "7")
    assert code == 0 and "wrote 400 cells" in out
    cs = c2s.io.read_dataset(tmp_path / "top").sentences()
    assert cs.lengths.max() == 7
    code, out, _ = run(capsys, "info", tmp_path / "top")
    assert code == 0 and "top_k 7" in out and "not fitted" in out


def test_export_and_import_reference_round_trip(capsys, tmp_path, lognorm_adata):
    ds = c2s.io.convert(lognorm_adata, tmp_path / "ds", obs_keys=["cell_type", "tissue"])
    run_json(capsys, "export", "--format", "reference", tmp_path / "ds", tmp_path / "arrow")
    ref = datasets.load_from_disk(str(tmp_path / "arrow"))
    assert ref.column_names == ["cell_name", "cell_sentence", "cell_type", "tissue"]
    assert ref[0]["cell_sentence"] == ds.texts()[0]
    info = run_json(capsys, "import-reference", tmp_path / "arrow", tmp_path / "back")
    assert info["n_cells"] == ds.n_cells and info["has_values"] is False
    a, b = ds.sentences(), c2s.io.read_dataset(tmp_path / "back").sentences()
    np.testing.assert_array_equal(a.genes, b.genes)
    np.testing.assert_array_equal(b.vocab.display_names, a.vocab.display_names)
    # No values came back, so no inverse model can be fitted: a clear error, exit 2.
    code, _, err = run(capsys, "inverse", "fit", tmp_path / "back")
    assert code == 2 and "no expression values" in err


def test_errors_exit_2_and_leave_nothing(capsys, tmp_path, h5ad):
    out = tmp_path / "ds"
    assert run(capsys, "convert", h5ad, out)[0] == 0
    before = sorted(p.name for p in out.iterdir())
    code, _, err = run(capsys, "convert", h5ad, out)
    assert code == 2 and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == before
    code, _, err = run(capsys, "convert", tmp_path / "missing.h5ad", tmp_path / "x")
    assert code == 2 and "does not exist" in err
    assert_no_output(tmp_path / "x")
    code, _, err = run(capsys, "convert", h5ad, tmp_path / "y", "--layer", "nope")
    assert code == 2 and "layers['nope']" in err
    assert_no_output(tmp_path / "y")
    code, _, err = run(capsys, "convert", h5ad, tmp_path / "z", "--normalize")
    assert code == 2 and "raw counts" in err
    assert_no_output(tmp_path / "z")
    code, _, err = run(capsys, "info", tmp_path)
    assert code == 2 and "not a c2s dataset" in err
    code, _, err = run(capsys, "inverse", "reconstruct", out, tmp_path / "r.h5ad")
    assert code == 2 and "inverse fit" in err


def test_scaled_input_points_at_raw(capsys, tmp_path, scaled_adata):
    path = tmp_path / "scaled.h5ad"
    scaled_adata.write_h5ad(path)
    code, _, err = run(capsys, "convert", path, tmp_path / "ds")
    assert code == 2 and "--raw" in err and "scaled" in err
    assert_no_output(tmp_path / "ds")
    assert run(capsys, "convert", path, tmp_path / "ds", "--raw")[0] == 0


def test_quickstart_writes_report(capsys, tmp_path):
    # A tiny model and a short run: the full recipe is what `make quickstart` runs.
    m = run_json(
        capsys, "quickstart", "--out", tmp_path / "qs", "--preset", "tiny", "--epochs", 0.3
    )
    qs = tmp_path / "qs"
    for name in (
        "report.md",
        "metrics.json",
        "inverse_fit.png",
        "reconstruction.png",
        "loss_curve.png",
        "confusion_matrix.png",
        "umap_generated.png",
        "umap_embeddings.png",
        "predictions.csv",
        "generated.h5ad",
    ):
        assert (qs / name).exists(), name
    t = m["training"]
    assert t["steps"] > 0 and t["train_loss"] < t["first_loss"]
    assert "## Training two small models" in (qs / "report.md").read_text()
    model = c2s.model.C2SModel.from_pretrained(qs / "model", device="cpu")
    assert model.config.tasks == ["cell_type_prediction"]
    generator = c2s.model.C2SModel.from_pretrained(qs / "generator", device="cpu")
    assert generator.config.tasks == ["cell_type_generation"]
    assert not (qs / "model" / "checkpoints").exists()
    assert m["training_generator"]["steps"] > 0
    saved = json.loads((qs / "metrics.json").read_text())
    assert saved["data"]["n_cells"] == 700 and saved["data"]["n_cell_types"] == 10
    assert m["inverse"]["selected"] == saved["inverse"]["selected"]
    assert set(saved["inverse"]["heldout"]) == {"rank_mean", "linear"}
    assert "| rank_mean" in (qs / "report.md").read_text()
    assert c2s.io.read_dataset(qs / "dataset").meta["inverse"] is not None
    # the evaluation part has the keys (and, seeded, the numbers) of `c2s evaluate`
    assert "| logistic regression (CellTypist-style)" in (qs / "report.md").read_text()
    ev = c2s.evaluate(qs / "model", qs / "dataset", batch_size=16)
    for key in ("annotation", "embedding", "reconstruction"):
        assert set(ev[key]) == set(saved[key]), key
    assert ev["annotation"]["c2s"]["accuracy"] == saved["annotation"]["c2s"]["accuracy"]
    ev = c2s.evaluate(qs / "generator", qs / "dataset", parts=["generation"])
    assert set(ev) >= {"generation"} and "annotation" not in ev and "embedding" not in ev
    assert set(ev["generation"]) == set(saved["generation"])
    assert ev["generation"]["c2s"]["mmd"] == pytest.approx(saved["generation"]["c2s"]["mmd"])
    # A second run without --overwrite refuses and keeps the report.
    code, _, err = run(capsys, "quickstart", "--out", qs)
    assert code == 2 and "--overwrite" in err and (qs / "report.md").exists()


def test_prompt_prints_what_the_model_sees(capsys, tmp_path, lognorm_adata):
    c2s.io.convert(lognorm_adata, tmp_path / "ds", obs_keys=["cell_type", "organism"])
    out = run_json(
        capsys,
        "prompt",
        tmp_path / "ds",
        "--task",
        "cell_type_prediction",
        "--n",
        "2",
        "--n-genes",
        "5",
    )
    assert len(out["examples"]) == 2
    first = out["examples"][0]
    assert first["prompt"].startswith("The following is a list of 5 gene names")
    assert first["response"].endswith(".")
    code, _, err = run(capsys, "prompt", tmp_path / "ds", "--task", "nope")
    assert code == 2 and "known tasks" in err


def test_train_from_config_file_and_flags(capsys, tmp_path, pbmc_dataset):
    pytest.importorskip("torch")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "tasks: [cell_type_prediction, 'cell_type_generation:0.5']\n"
        "n-genes: 16\nmax_steps: 50\nbatch_size: 8\npreset: tiny\nmax_eval_examples: 16\n"
    )
    out = tmp_path / "model"
    res = run_json(
        capsys, "train", pbmc_dataset.path, "--out", out, "--config", cfg, "--max-steps", 3
    )
    assert res["steps"] == 3  # the flag overrides the file
    saved = json.loads((out / "c2s_config.json").read_text())
    assert saved["tasks"] == ["cell_type_prediction", "cell_type_generation"]
    assert saved["n_genes"] == 16 and saved["training"]["options"]["max_steps"] == 3
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2  # tiny
    code, _, err = run(capsys, "train", pbmc_dataset.path, "--out", out, "--max-steps", 1)
    assert code == 2 and "--overwrite" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 3\n")
    code, _, err = run(
        capsys, "train", pbmc_dataset.path, "--out", tmp_path / "m2", "--config", bad
    )
    assert code == 2 and "epochz" in err
    assert_no_output(tmp_path / "m2")


def test_inference_verbs(capsys, tmp_path, trained_model, pbmc_dataset, pbmc):
    pytest.importorskip("torch")
    import anndata as ad
    import pandas as pd

    res = run_json(
        capsys,
        "predict",
        trained_model,
        pbmc_dataset.path,
        "--split",
        "test",
        "--out",
        tmp_path / "p.csv",
    )
    table = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert res["cells"] == len(table) == len(pbmc_dataset.split_indices()["test"])
    assert 0 <= res["accuracy"] <= 1 and "c2s_prediction" in table
    h5 = tmp_path / "cells.h5ad"
    pbmc[:20].copy().write_h5ad(h5)
    res = run_json(
        capsys, "embed", trained_model, h5, "--out", tmp_path / "e.h5ad", "--batch-size", 3
    )
    emb = ad.read_h5ad(tmp_path / "e.h5ad")
    assert res["cells"] == 20 and emb.obsm["X_c2s"].shape[0] == 20 and emb.n_vars == pbmc.n_vars
    res = run_json(
        capsys, "generate", trained_model, "--labels", "CD19+ B", "--n-per-label", 3,
        "--n-genes", 15, "--out", tmp_path / "g.h5ad",
    )  # fmt: skip
    assert res["cells"] == 3 and res["valid_gene_rate"] == 1.0 and res["unique_gene_rate"] == 1.0
    assert list(ad.read_h5ad(tmp_path / "g.h5ad").obs["cell_type"]) == ["CD19+ B"] * 3
    res = run_json(
        capsys, "generate", trained_model, "--task", "tissue_conditional_generation",
        "--labels", "blood", "--n-per-label", 2, "--n-cells", 3, "--n-genes", 6,
        "--out", tmp_path / "t.csv",
    )  # fmt: skip
    table = pd.read_csv(tmp_path / "t.csv", index_col=0)
    assert res["cells"] == 6 == len(table) and res["unique_gene_rate"] == 1.0
    assert list(table["c2s_group"]) == [0, 0, 0, 1, 1, 1] and set(table["tissue"]) == {"blood"}
    code, _, err = run(capsys, "generate", trained_model, "--out", tmp_path / "g.h5ad")
    assert code == 2 and "--overwrite" in err
    code, _, err = run(capsys, "predict", trained_model, h5, "--out", tmp_path / "p.txt")
    assert code == 2 and ".csv" in err
    assert_no_output(tmp_path / "p.txt")
