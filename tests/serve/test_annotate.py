"""What the web page stands on: /v1/annotate (predictions, embeddings laid out in 2-D, files
to download), the downloads themselves, the page and its assets, and request timeouts."""

from __future__ import annotations

import io

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("torch")

from fastapi.testclient import TestClient

import c2s
from c2s.serve import create_app
from c2s.tl import layout_2d


def _upload(client, path, **data):
    with open(path, "rb") as f:
        return client.post("/v1/annotate", files={"file": (path.name, f)}, data=data)


def test_annotate_an_upload_and_download_its_files(trained_model, tmp_path, _pbmc):
    a = _pbmc[:30].copy()
    a.write_h5ad(tmp_path / "cells.h5ad")
    app = create_app(str(trained_model), device="cpu", max_cells=50)
    with TestClient(app) as client:
        r = _upload(client, tmp_path / "cells.h5ad")
        assert r.status_code == 200, r.text
        res = r.json()
        want = c2s.tl.predict(a, str(trained_model), inplace=False, progress_bar=False)
        labels = list(want.labels)
        assert res["cell_ids"] == list(a.obs_names)
        assert [p["label"] for p in res["predictions"]] == labels
        assert res["layout"]["method"] == "umap" and len(res["layout"]["coords"]) == 30
        coords = np.array(res["layout"]["coords"])
        assert np.isfinite(coords).all() and coords.std(axis=0).min() > 0

        h5 = client.get(res["downloads"]["h5ad"])
        assert h5.status_code == 200
        assert "c2s-annotated.h5ad" in h5.headers["content-disposition"]
        (tmp_path / "got.h5ad").write_bytes(h5.content)
        got = ad.read_h5ad(tmp_path / "got.h5ad")
        assert list(got.obs_names) == list(a.obs_names)
        np.testing.assert_array_equal(got.X.toarray(), a.X.toarray())  # the cells, unchanged
        assert list(got.obs["c2s_prediction"]) == labels
        assert list(got.obs["cell_type"]) == list(a.obs["cell_type"])  # the upload's own obs
        emb = c2s.tl.embed(a, str(trained_model), inplace=False, progress_bar=False)
        np.testing.assert_allclose(got.obsm["X_c2s"], emb.to_numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.obsm["X_c2s_umap"], coords, rtol=1e-5)
        probs = got.obsm["c2s_prediction_probabilities"]
        cols = [f"p_{lab}" for lab in got.uns["c2s_prediction"]["labels"]]
        np.testing.assert_allclose(probs, want.to_frame()[cols].to_numpy(), rtol=1e-4, atol=1e-6)

        csv = pd.read_csv(io.StringIO(client.get(res["downloads"]["csv"]).text))
        assert list(csv["cell_id"]) == list(a.obs_names)
        assert list(csv["c2s_prediction"]) == labels
        np.testing.assert_allclose(csv[["umap_1", "umap_2"]].to_numpy(), coords, rtol=1e-5)

        rid = res["id"]
        for path in (f"/v1/results/{'0' * 32}/annotated.h5ad", f"/v1/results/{rid}/other.txt",
                     f"/v1/results/{rid}/..%2F..%2Fetc%2Fpasswd", "/v1/results/../annotated.h5ad"):  # fmt: skip
            assert client.get(path).status_code == 404, path
        store = app.state.results.dir
        assert store.is_dir()
    assert not store.exists()  # the server's own files go when it stops


def test_annotate_pasted_sentences_and_results_are_not_kept_forever(client, cells):
    sentences = cells[0]
    r = client.post("/v1/annotate", json={"sentences": sentences[:3]})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["layout"]["method"] == "pca"  # too few cells for UMAP
    alone = client.post("/v1/predict", json={"sentences": sentences[:3]}).json()
    assert res["predictions"] == alone["predictions"]
    results = client.app.state.results
    results.keep = 2
    first = res["downloads"]["h5ad"]
    assert client.get(first).status_code == 200
    for i in range(2):
        assert (
            client.post("/v1/annotate", json={"sentences": sentences[i : i + 2]}).status_code == 200
        )
    assert client.get(first).status_code == 404  # two newer results pushed it out
    assert len(list(results.dir.iterdir())) == 2
    assert client.post("/v1/annotate", json={"sentences": []}).status_code == 422


def test_the_page_and_its_assets_are_served(trained_model):
    client = TestClient(create_app(str(trained_model), device="cpu", token="t0k"))
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="annotate-form"' in page.text and "/static/app.js" in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert client.get("/static/../_app.py").status_code == 404
    assert client.post("/v1/annotate", json={"sentences": ["CD3D"]}).status_code == 401


def test_a_slow_request_gets_504_and_the_server_goes_on(trained_model, cells, monkeypatch):
    import time

    real = c2s.tl.predict
    client = TestClient(create_app(str(trained_model), device="cpu", timeout=0.5))

    def slow(*args, **kw):
        time.sleep(1.5)
        return real(*args, **kw)

    monkeypatch.setattr(c2s.tl, "predict", slow)
    r = client.post("/v1/predict", json={"sentences": cells[0][:2]})
    assert r.status_code == 504 and "--timeout" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200
    time.sleep(1.2)  # the model ends the one (slow) batch it was in; the rest is dropped
    r = client.post("/v1/embed", json={"sentences": cells[0][:2]})
    assert r.status_code == 200 and len(r.json()["embeddings"]) == 2


def test_layout_keeps_groups_apart_and_missing_cells_missing():
    rng = np.random.default_rng(0)
    X = np.vstack(
        [rng.normal(0, 1, (25, 16)), rng.normal(8, 1, (25, 16)), np.full((2, 16), np.nan)]
    )
    coords, method = layout_2d(X)
    assert method == "umap" and np.isnan(coords[50:]).all()
    a, b = coords[:25], coords[25:50]
    gap = np.linalg.norm(a.mean(axis=0) - b.mean(axis=0))
    assert gap > 3 * max(a.std(axis=0).max(), b.std(axis=0).max())
    small, method = layout_2d(X[[0, 1, 30, 31]])
    assert method == "pca" and np.isfinite(small).all()
    assert np.linalg.norm(small[0] - small[1]) < np.linalg.norm(small[0] - small[2])


def test_serve_command_passes_its_flags_and_refuses_bad_limits(trained_model, capsys, monkeypatch):
    import uvicorn

    from c2s.cli import main

    code = main(["serve", str(trained_model), "--timeout", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "timeout (--timeout) must be more than 0, not 0.0" in err and len(err.splitlines()) == 1
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("C2S_TOKEN", "from-env")
    argv = ["serve", str(trained_model), "--port", "8123", "--max-cells", "7", "--device", "cpu",
            "--timeout", "9", "--batch-window-ms", "0"]  # fmt: skip
    assert main(argv) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123  # localhost unless told
    assert "open http://127.0.0.1:8123/ for the page" in capsys.readouterr().err
    client = TestClient(seen["app"])
    assert client.get("/v1/model").status_code == 401
    info = client.get("/v1/model", headers={"Authorization": "Bearer from-env"}).json()
    assert info["max_cells"] == 7
    assert seen["app"].state.batcher.window == 0
