"""The HTTP API through FastAPI's test client: each endpoint against the c2s.tl verbs, the
token, the limits, and bad requests answered with 4xx while the server stays up."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("torch")

from fastapi.testclient import TestClient

import c2s
from c2s.serve import create_app


def test_health_and_model(client, trained_model):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert "cell_type_prediction" in info["tasks"] and info["n_genes"] == 30
    assert "CD14+ Monocyte" in info["labels"]["cell_type"]
    assert info["max_cells"] == 50
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_from_sentences_and_records_matches_the_verb(client, cells, trained_model):
    sentences, records, a = cells
    want = c2s.tl.predict(a, str(trained_model), inplace=False, progress_bar=False)
    for body in ({"sentences": sentences}, {"cells": records}):
        r = client.post("/v1/predict", json=body)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["label"] for p in preds] == list(want.labels)  # input order
        for p in preds:
            assert p["label"] in p["probabilities"]
            assert p["probability"] == pytest.approx(max(p["probabilities"].values()))
            assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_embed_matches_the_verb(client, cells, trained_model):
    sentences, _, a = cells
    want = c2s.tl.embed(a, str(trained_model), inplace=False, progress_bar=False)
    r = client.post("/v1/embed", json={"sentences": sentences})
    assert r.status_code == 200
    got = np.array(r.json()["embeddings"])
    assert got.shape == want.X.shape and r.json()["dimensions"] == want.X.shape[1]
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-4, atol=1e-5)


def test_bad_requests_get_4xx_and_the_server_stays_up(client, cells):
    sentences, records, _ = cells
    bad = [
        ({"sentences": sentences, "cells": records}, 422, "either"),
        ({}, 422, "either"),
        ({"sentences": []}, 422, "No cells"),
        ({"sentences": sentences * 7}, 413, "at most 50"),
        ({"sentences": sentences, "task": "cell_typing"}, 422, "cell_typing"),
        ({"cells": [{"CD3D": -1.0}]}, 422, "negative"),
    ]
    for body, status, msg in bad:
        r = client.post("/v1/predict", json=body)
        assert r.status_code == status, (body, r.text)
        assert msg in r.text, r.text
    assert client.post("/v1/predict", json={"sentences": sentences[:1]}).status_code == 200


def test_a_token_guards_the_api(trained_model, cells):
    guarded = TestClient(create_app(str(trained_model), device="cpu", token="s3cret"))
    assert guarded.get("/healthz").status_code == 200  # health checks need no token
    assert guarded.get("/v1/model").status_code == 401
    assert "Bearer" in guarded.get("/v1/model", headers={"Authorization": "Bearer x"}).text
    ok = guarded.post("/v1/predict", json={"sentences": cells[0][:2]},
                      headers={"Authorization": "Bearer s3cret"})  # fmt: skip
    assert ok.status_code == 200


def test_generate_returns_sentences_and_expression_as_the_verb(client, trained_model):
    body = {"labels": {"CD14+ Monocyte": 2, "CD19+ B": 1}, "seed": 3}
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 200, r.text
    cells = r.json()["cells"]
    want = c2s.tl.generate(str(trained_model), body["labels"], seed=3, progress_bar=False)
    assert [c["label"] for c in cells] == ["CD14+ Monocyte"] * 2 + ["CD19+ B"]
    assert [c["sentence"] for c in cells] == list(want.obs["c2s_sentence"])
    genes = set(c2s.model.C2SModel.from_pretrained(trained_model).config.genes)
    for c in cells:
        words = c["sentence"].split()
        assert len(words) == len(set(words)) and set(words) <= genes
        assert set(c["expression"]) <= set(words) and c["expression"]
    assert (
        client.post("/v1/generate", json={"labels": ["CD19+ B"], "n_per_label": 51}).status_code
        == 413
    )
    r = client.post("/v1/generate", json={"labels": {"CD19+ B": 1}, "task": "cell_type_prediction"})
    assert r.status_code == 422


def test_an_uploaded_h5ad_is_annotated_and_bad_uploads_get_4xx(trained_model, tmp_path, _pbmc):
    import glob
    import tempfile

    app = create_app(str(trained_model), device="cpu", max_cells=50, max_upload_mb=2)
    client = TestClient(app)
    a = _pbmc[:20].copy()
    a.write_h5ad(tmp_path / "cells.h5ad")
    before = set(glob.glob(f"{tempfile.gettempdir()}/c2s-upload-*"))
    with open(tmp_path / "cells.h5ad", "rb") as f:
        r = client.post("/v1/predict", files={"file": ("cells.h5ad", f)},
                        data={"task": "cell_type_prediction"})  # fmt: skip
    assert r.status_code == 200, r.text
    want = c2s.tl.predict(a, str(trained_model), inplace=False, progress_bar=False)
    assert r.json()["cell_ids"] == list(a.obs_names)
    assert [p["label"] for p in r.json()["predictions"]] == list(want.labels)
    with open(tmp_path / "cells.h5ad", "rb") as f:
        emb = client.post("/v1/embed", files={"file": ("cells.h5ad", f)})
    assert emb.status_code == 200 and len(emb.json()["embeddings"]) == 20
    (tmp_path / "bad.h5ad").write_text("not an h5ad file")
    big = _pbmc[:60].copy()
    big.write_h5ad(tmp_path / "big.h5ad")
    huge = tmp_path / "huge.h5ad"
    huge.write_bytes(b"\0" * 3_000_000)
    for name, status, msg in [("bad.h5ad", 422, "Cannot read bad.h5ad as an .h5ad file"),
                              ("big.h5ad", 413, "at most 50"),
                              ("huge.h5ad", 413, "over this server's limit of 2 MB")]:  # fmt: skip
        with open(tmp_path / name, "rb") as f:
            r = client.post("/v1/predict", files={"file": (name, f)})
        assert r.status_code == status and msg in r.text, (name, r.text)
    r = client.post("/v1/predict", data={"task": "cell_type_prediction"},
                    files={"other": ("x", b"1")})  # fmt: skip
    assert r.status_code == 422 and "form field 'file'" in r.text
    assert set(glob.glob(f"{tempfile.gettempdir()}/c2s-upload-*")) == before  # all removed
    assert client.get("/healthz").status_code == 200
    body = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "multipart/form-data"}


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(trained_model, cells,
                                                                     monkeypatch):  # fmt: skip
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    sentences = cells[0]
    app = create_app(str(trained_model), device="cpu", batch_window_ms=0)
    client = TestClient(app)
    bodies = [{"sentences": sentences[i : i + 3]} for i in range(6)]
    alone = [client.post("/v1/predict", json=b).json()["predictions"] for b in bodies]
    batcher = app.state.batcher
    calls, requests = batcher.calls, batcher.requests
    real, first = c2s.tl.predict, threading.Event()

    def busy(*args, **kw):  # the first call holds the model while the others queue
        if not first.is_set():
            first.set()
            time.sleep(1.0)
        return real(*args, **kw)

    monkeypatch.setattr(c2s.tl, "predict", busy)
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda b: client.post("/v1/predict", json=b).json(), bodies))
    assert [t["predictions"] for t in together] == alone
    assert batcher.requests - requests == 6
    assert batcher.calls - calls == 2  # one request, then the five that queued meanwhile


def test_the_batch_window_gathers_requests_under_load(trained_model, cells):
    from concurrent.futures import ThreadPoolExecutor

    sentences = cells[0]
    app = create_app(str(trained_model), device="cpu", batch_window_ms=500)
    client = TestClient(app)
    batcher = app.state.batcher
    assert client.post("/v1/predict", json={"sentences": sentences[:1]}).status_code == 200
    assert not batcher._shared  # a lone client: no waiting for company
    batcher._shared = True  # as after a shared batch
    calls = batcher.calls
    bodies = [{"sentences": sentences[i : i + 2]} for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda b: client.post("/v1/predict", json=b).status_code, bodies))
    assert codes == [200] * 4
    assert batcher.calls - calls == 1  # the first waited 0.5 s and the others joined it


def test_cells_without_genes_are_named_by_the_request_s_own_ids(client, cells):
    records = cells[1]
    r = client.post("/v1/predict", json={"cells": [records[0], {"CD3D": 0.0}, records[1]]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert preds[1] == {"label": None, "probability": None, "probabilities": {}}
    assert preds[0]["label"] and preds[2]["label"]
    assert any("1 cells express no gene" in w and w.endswith(": 1.") for w in r.json()["warnings"])
    assert not any(":" in w.split(": ")[-1] for w in r.json()["warnings"])  # no batch keys
    r = client.post("/v1/embed", json={"cells": [{"CD3D": 0.0}]})
    assert r.status_code == 422 and "No cell of the request expresses any gene" in r.text


def test_an_upload_with_repeated_cell_ids_keeps_its_rows_in_order(client, cells, tmp_path):
    import warnings

    a = cells[2][:4].copy()
    a.obs_names = ["x", "x", "y", "y"]
    a.X = a.X.toarray()
    a.X[1] = 0  # the second "x" expresses nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's note on repeated names
        a.write_h5ad(tmp_path / "dup.h5ad")
        alone = [client.post("/v1/predict", files={"file": ("one.h5ad", _h5ad(a[[i]], tmp_path))})
                 .json()["predictions"][0]["label"] for i in (0, 2, 3)]  # fmt: skip
        with open(tmp_path / "dup.h5ad", "rb") as f:
            r = client.post("/v1/predict", files={"file": ("dup.h5ad", f)})
    assert r.status_code == 200, r.text
    got = [p["label"] for p in r.json()["predictions"]]
    assert got == [alone[0], None, alone[1], alone[2]] and r.json()["cell_ids"] == list(a.obs_names)


def _h5ad(a, tmp_path) -> bytes:
    a.write_h5ad(tmp_path / "one.h5ad")
    return (tmp_path / "one.h5ad").read_bytes()


def test_the_batcher_joins_integer_sentences_as_their_text_would_read(cells):
    """A shared call's cells under one vocabulary of display names, in order of first
    appearance, as parsing the requests' sentences would give (no text in between)."""
    import pandas as pd

    from c2s.sentences import CellSentences
    from c2s.serve._batch import Ticket, joined

    sentences, _, a = cells
    ranked = c2s.sentences.from_anndata(a, n_genes=30, seed=0)  # an upload's vocabulary
    pasted = CellSentences.from_text(["cd3d " + sentences[0], sentences[1]])  # another's
    tickets = [Ticket(None, {}, cs, cs.obs.index, list(range(cs.n_cells)), False, []) for cs in
               (ranked, pasted)]  # fmt: skip
    parts = [(tickets[0], 2, 5), (tickets[1], 0, 2)]
    keys = [f"k{i}" for i in range(5)]
    got = joined(parts, keys)
    texts = ranked.to_text()[2:5] + pasted.to_text()
    want = CellSentences.from_text(texts, obs=pd.DataFrame(index=pd.Index(keys)))
    np.testing.assert_array_equal(got.genes, want.genes)
    np.testing.assert_array_equal(got.offsets, want.offsets)
    assert list(got.vocab.genes) == list(want.vocab.genes)
    assert list(got.vocab.display_names) == list(want.vocab.display_names)
    np.testing.assert_array_equal(got.vocab.n_cells_expressed, want.vocab.n_cells_expressed)
    assert list(got.obs.index) == keys and got.to_text() == texts


def test_requests_reach_the_verb_without_text_in_between(client, cells, monkeypatch):
    from c2s.sentences import CellSentences

    records = cells[1]
    want = client.post("/v1/predict", json={"cells": records[:3]}).json()

    def no_text(*args, **kwargs):
        raise AssertionError("cells turned into text")

    monkeypatch.setattr(CellSentences, "to_text", no_text)
    monkeypatch.setattr(CellSentences, "from_text", no_text)
    assert client.post("/v1/predict", json={"cells": records[:3]}).json() == want
    r = client.post("/v1/embed", json={"cells": records[:2]})
    assert r.status_code == 200 and len(r.json()["embeddings"]) == 2
