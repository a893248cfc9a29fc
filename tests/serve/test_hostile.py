"""The server under hostile or unlucky input, through its test client (or its ASGI interface
where a client must vanish): out-of-range numbers, .h5ad files that declare far more than they
hold, clients whose warnings must not cross, abandoned work, the token before the body, and
``c2s serve`` refusing an address before it loads the model."""

from __future__ import annotations

import asyncio
import glob
import json
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anndata as ad
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("torch")

import h5py
from fastapi.testclient import TestClient

import c2s
from c2s.serve import create_app


@pytest.fixture(scope="module")
def model(trained_model):
    from c2s.model import C2SModel

    return C2SModel.from_pretrained(trained_model, device="cpu")


@pytest.fixture(scope="module")
def sentences(_pbmc):
    """160 PBMC cells as the server ranks them (30 genes, seed 0)."""
    return c2s.sentences.from_anndata(_pbmc[:160], n_genes=30, seed=0).to_text()


def uploads() -> set[str]:
    return set(glob.glob(f"{tempfile.gettempdir()}/c2s-upload-*"))


def slow_batches(monkeypatch, model, seconds: float) -> list:
    """Every forward pass of the model (one per model batch when scoring labels) takes
    ``seconds`` more; the list grows by one per pass."""
    lm = model.model
    real, passes = lm.forward, []

    def slow(*args, **kw):
        passes.append(1)
        time.sleep(seconds)
        return real(*args, **kw)

    monkeypatch.setattr(lm, "forward", slow)
    return passes


def hold_the_model(monkeypatch, seconds: float) -> threading.Event:
    """The next predict call holds the model ``seconds`` (requests queue meanwhile)."""
    real, first = c2s.tl.predict, threading.Event()

    def busy(*args, **kw):
        if not first.is_set():
            first.set()
            time.sleep(seconds)
        return real(*args, **kw)

    monkeypatch.setattr(c2s.tl, "predict", busy)
    return first


# -- numbers out of range ----------------------------------------------------------------------
def test_n_genes_out_of_range_is_a_422_with_the_range_on_every_endpoint(client, cells, tmp_path):
    most = client.app.state.model.model.config.max_position_embeddings
    sentences = cells[0][:2]
    for n in (10**30, 1e30, 0, -1, most + 1):
        for path in ("/v1/predict", "/v1/embed", "/v1/annotate"):
            r = client.post(path, json={"sentences": sentences, "n_genes": n})
            assert r.status_code == 422, (path, n, r.text)
            assert f"n_genes must be a whole number from 1 to {most}" in r.text, r.text
        r = client.post("/v1/generate", json={"labels": ["CD19+ B"], "n_genes": n})
        assert r.status_code == 422 and f"from 1 to {most}" in r.text, (n, r.text)
    raw = {"content-type": "application/json"}
    for body in ('{"sentences": ["CD3D"], "n_genes": Infinity}',
                 '{"sentences": ["CD3D"], "n_genes": NaN}'):  # fmt: skip
        r = client.post("/v1/predict", content=body, headers=raw)
        assert r.status_code == 422 and f"from 1 to {most}" in r.text, r.text
    for field in ("temperature", "top_p"):  # a NaN once made the error itself unanswerable
        r = client.post("/v1/generate", headers=raw,
                        content=f'{{"labels": ["CD19+ B"], "{field}": NaN}}')  # fmt: skip
        assert r.status_code == 422 and "finite number" in r.text, r.text
    cells[2][:2].copy().write_h5ad(tmp_path / "two.h5ad")
    form = {"1e30": f"from 1 to {most}", "inf": f"from 1 to {most}", "nan": f"from 1 to {most}",
            "-1": f"from 1 to {most}", "abc": "valid integer", "2.5": "valid integer"}  # fmt: skip
    for value, msg in form.items():
        with open(tmp_path / "two.h5ad", "rb") as f:
            r = client.post("/v1/predict", files={"file": ("two.h5ad", f)},
                            data={"n_genes": value})  # fmt: skip
        assert r.status_code == 422 and msg in r.text, (value, r.text)
    ok = client.post("/v1/embed", json={"sentences": sentences, "n_genes": most})
    assert ok.status_code == 200, ok.text


# -- .h5ad bombs -------------------------------------------------------------------------------
GENES = ["CD3D", "LYZ", "MS4A1"]


def small_h5ad(path, sparse: bool = False):
    import scipy.sparse as sp

    X = np.ones((10, 3), dtype=np.float32)
    a = ad.AnnData(X=sp.csr_matrix(X) if sparse else X,
                   obs=pd.DataFrame(index=[f"c{i}" for i in range(10)]),
                   var=pd.DataFrame(index=GENES))  # fmt: skip
    a.write_h5ad(path)
    return h5py.File(path, "r+")


def declare(f, key: str, shape, dtype="f4") -> None:
    """``key`` replaced by an array that is declared but never written: some bytes on disk."""
    attrs = (
        dict(f[key].attrs) if key in f else {"encoding-type": "array", "encoding-version": "0.2.0"}
    )
    if key in f:
        del f[key]
    f.create_dataset(key, shape=shape, dtype=dtype, chunks=True, compression="gzip")
    f[key].attrs.update(attrs)


def bombs(tmp_path) -> list[tuple[str, int, str]]:
    """(file, status, message): each small on disk, each refused before anndata reads it."""
    out = []

    def case(name, status, msg, sparse=False):
        f = small_h5ad(tmp_path / name, sparse)
        out.append((name, status, msg))
        return f

    with case(
        "cells.h5ad", 413, "2000000000 cells in the upload; this server takes at most 50"
    ) as f:
        declare(f, "obs/_index", (2_000_000_000,), h5py.string_dtype())
        declare(f, "X", (2_000_000_000, 3))
    with case("dense.h5ad", 413, "declares 40.0 GB of arrays (X 40.0 GB") as f:
        declare(f, "X", (10, 10**9))
    with case("sparse-shape.h5ad", 413, "2000000000 cells", sparse=True) as f:
        f["X"].attrs["shape"] = (2_000_000_000, 3)
    with case("sparse-data.h5ad", 413, "X/data 40.0 GB", sparse=True) as f:
        declare(f, "X/data", (10**10,))
        declare(f, "X/indices", (10**10,), "i4")
    with case("sparse-parts.h5ad", 422, "its parts disagree", sparse=True) as f:
        f["X"].attrs["shape"] = (20, 3)
    with case("obsm.h5ad", 413, "obsm/X_big 40.0 GB") as f:
        declare(f, "obsm/X_big", (10, 10**9))
    with case("strings.h5ad", 422, "X holds values of type") as f:
        del f["X"]
        f["X"] = np.array([["a"] * 3] * 10, dtype="S1")
    with case("alias.h5ad", 422, "one object under two names") as f:
        f["uns/again"] = f["X"]  # anndata would read it twice (and a group in itself forever)
    with case("soft.h5ad", 422, "links 'uns/x' elsewhere") as f:
        f["uns/x"] = h5py.SoftLink("/X")
    with case("external.h5ad", 422, "links 'uns/x' elsewhere") as f:
        f["uns/x"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
    secret = tmp_path / "server-file.bin"
    secret.write_bytes(b"not for the client" * 10)
    with case("external-data.h5ad", 422, "keeps the data of 'X' in other files") as f:
        del f["X"]
        f.create_dataset("X", shape=(10, 3), dtype="f4", external=[(str(secret), 0, 120)])
    with case("deep.h5ad", 422, "nests groups more than 32 deep") as f:
        f.create_group("uns/" + "/".join(["g"] * 40))
    return out


def test_h5ad_bombs_are_refused_before_anything_is_read(model, tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr(ad, "read_h5ad", lambda *a, **k: read.append(a) or pytest.fail("read"))
    client = TestClient(create_app(model, max_cells=50, max_upload_mb=2))
    before = uploads()
    for name, status, msg in bombs(tmp_path):
        assert (tmp_path / name).stat().st_size < 200_000  # tiny files, huge declarations
        with open(tmp_path / name, "rb") as f:
            r = client.post("/v1/predict", files={"file": (name, f)})
        assert r.status_code == status and msg in r.json()["detail"], (name, r.text)
        assert "c2s-upload-" not in r.text  # the client's name, not the server's path
    assert read == []  # refused from the declarations: nothing allocated
    assert uploads() == before and client.get("/healthz").status_code == 200


# -- warnings stay with their client -----------------------------------------------------------
def test_two_batched_clients_hear_only_about_their_own_cells(model, cells, monkeypatch):
    """A client's cells with genes the model never saw run apart (pre-checked); cells whose
    shared call warns anyway (a prompt past the context) are run again apart. Either way the
    other client hears nothing of them, and every answer is the one it gets alone."""
    app = create_app(model, batch_window_ms=0)
    client, batcher = TestClient(app), app.state.batcher
    sentences = cells[0]
    secret = ["SECRET_GENE_A " + sentences[0], "SECRET_GENE_B " + sentences[1]]
    long = [" ".join(model.config.genes[:500])]  # known genes, a prompt past 512 tokens
    cases = [  # (the other client, what only it is told, n_genes)
        ({"sentences": secret}, "SECRET_GENE_A", 30),
        ({"sentences": long, "n_genes": 500}, "longer than the model's context", 500),
    ]
    for other, told, k in cases:
        clean = {"sentences": sentences[2:5], "n_genes": k}
        alone = {id(b): client.post("/v1/predict", json=b).json() for b in (other, clean)}
        assert told in " ".join(alone[id(other)]["warnings"])
        assert alone[id(clean)]["warnings"] == []
        monkeypatch.undo()
        held = hold_the_model(monkeypatch, 1.0)
        calls = batcher.calls
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(client.post, "/v1/predict", json={"sentences": sentences[5:6]})
            assert held.wait(30)
            got = list(pool.map(lambda b: client.post("/v1/predict", json=b), (other, clean)))
            assert first.result().status_code == 200
        assert batcher.calls - calls == 2  # the two clients shared the second batch
        for body, r in zip((other, clean), got, strict=True):
            assert r.status_code == 200, r.text
            assert r.json() == alone[id(body)]  # predictions and warnings: as alone
        assert "SECRET" not in got[1].text and "longer" not in got[1].text


# -- abandoned work stops at the next batch ----------------------------------------------------
def test_after_a_504_the_next_request_is_served_within_a_batch(model, sentences, monkeypatch):
    passes = slow_batches(monkeypatch, model, 0.15)
    app = create_app(model, timeout=1.0, batch_window_ms=0)
    with TestClient(app) as client:
        r = client.post("/v1/predict", json={"sentences": sentences})  # 20 batches of 8 cells
        assert r.status_code == 504 and "--timeout" in r.json()["detail"]
        t1 = time.monotonic()
        r = client.post("/v1/predict", json={"sentences": sentences[:1]})
        waited = time.monotonic() - t1
        assert r.status_code == 200, r.text
        assert waited < 1.2  # the batch running, then its own: ~0.5 s (the rest took 2.5 s)
        time.sleep(0.5)
        assert len(passes) < 16  # the 160 cells alone take 23
        t2 = time.monotonic()
    assert time.monotonic() - t2 < 2.0  # shutdown waits for no abandoned work


def test_a_timed_out_generation_stops_at_its_next_batch(model, monkeypatch):
    passes = slow_batches(monkeypatch, model, 0.02)  # one per generated token
    app = create_app(model, timeout=1.5, max_cells=200)
    with TestClient(app) as client:
        body = {"labels": {"CD19+ B": 160}, "n_genes": 10}  # 20 batches of 8 cells
        r = client.post("/v1/generate", json=body)
        assert r.status_code == 504
        n = len(passes)
        t1 = time.monotonic()
        r = client.post("/v1/generate", json={"labels": ["CD19+ B"], "n_genes": 10})
        assert r.status_code == 200 and len(r.json()["cells"]) == 1, r.text
        assert time.monotonic() - t1 < 1.5
        time.sleep(0.5)
    assert len(passes) < 3 * n  # it stopped: 20 batches would be ~10 times the first's share


async def disconnecting_post(app, path: str, body: dict, gone_after: float) -> list[dict]:
    """POST ``body`` straight through the ASGI interface; the client goes away after
    ``gone_after`` seconds (as a server sees a closed connection). The messages sent back."""
    raw, start, sent, given = json.dumps(body).encode(), time.monotonic(), [], False

    async def receive():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": raw, "more_body": False}
        while time.monotonic() - start < gone_after:
            await asyncio.sleep(0.02)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode())]}  # fmt: skip
    await app(scope, receive, send)
    return sent


def test_a_client_that_goes_away_abandons_its_work_not_its_batch_mates(model, sentences,
                                                                       monkeypatch):  # fmt: skip
    app = create_app(model, batch_window_ms=0)
    client, batcher = TestClient(app), app.state.batcher
    mate = {"sentences": sentences[:3]}
    alone = client.post("/v1/predict", json=mate).json()
    passes = slow_batches(monkeypatch, model, 0.15)
    held = hold_the_model(monkeypatch, 0.5)
    calls = batcher.calls
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(client.post, "/v1/predict", json={"sentences": sentences[3:4]})
        assert held.wait(30)  # the model is busy: the next two queue and share a batch
        t0 = time.monotonic()
        gone = pool.submit(asyncio.run, disconnecting_post(app, "/v1/predict",
                                                           {"sentences": sentences}, 1.0))  # fmt: skip
        time.sleep(0.2)  # the 160 cells queue first, the mate behind them
        r = client.post("/v1/predict", json=mate)
        sent = gone.result(timeout=30)
        assert first.result().status_code == 200
    assert r.status_code == 200 and r.json() == alone  # the live batch-mate gets its answer
    assert sent[0]["status"] == 499 and time.monotonic() - t0 < 3.0
    assert batcher.calls - calls == 2
    time.sleep(0.5)
    assert len(passes) < 16  # the 160 cells alone take 23


# -- the token, then the body ------------------------------------------------------------------
def test_the_token_is_checked_before_the_body_is_read(model, cells, tmp_path):
    app = create_app(model, token="s3cret", max_upload_mb=1)
    client = TestClient(app)
    raw = {"content-type": "application/json"}
    requests = [
        ("post", "/v1/predict", {"content": b"{not json", "headers": raw}),
        ("post", "/v1/embed", {"content": b"\xff" * 10, "headers": raw}),
        ("post", "/v1/annotate", {"files": {"file": ("x.h5ad", b"garbage")}}),
        ("post", "/v1/generate", {"content": b"{not json", "headers": raw}),
        ("post", "/v1/generate", {"json": {"labels": 7}}),
        ("post", "/v1/predict", {"content": b"x" * 2_000_000, "headers": raw}),  # over 1 MB
        ("get", "/v1/model", {}),
        ("get", "/v1/results/0/annotated.h5ad", {}),
        ("get", "/v1/nothing", {}),
    ]
    for token in (None, "Bearer wrong", "s3cret", "Bearer s3cre"):
        auth = {} if token is None else {"authorization": token}
        for method, path, kw in requests:
            headers = {**kw.get("headers", {}), **auth}
            r = getattr(client, method)(path, **{**kw, "headers": headers})
            assert r.status_code == 401 and "Bearer TOKEN" in r.text, (token, path, r.text)
    auth = {"authorization": "Bearer s3cret"}
    assert client.post("/v1/generate", content=b"{x", headers={**raw, **auth}).status_code == 422
    big = client.post("/v1/predict", content=b"x" * 2_000_000, headers={**raw, **auth})
    assert big.status_code == 413 and "over this server's limit of 1 MB" in big.text


def test_bodies_over_the_limit_are_refused_while_they_stream(model, cells):
    client = TestClient(create_app(model, max_upload_mb=1))
    before = uploads()

    def chunks(n):  # no Content-Length: the size shows only while reading
        for _ in range(n):
            yield b" " * 100_000

    for path in ("/v1/predict", "/v1/generate"):
        r = client.post(path, content=chunks(30), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "over this server's limit of 1 MB" in r.text, r.text
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.h5ad"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip

    def form():
        yield head
        yield from chunks(30)

    r = client.post("/v1/predict", content=form(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    assert r.status_code == 413 and "over this server's limit" in r.text, r.text
    r = client.post(
        "/v1/predict", content="[" * 100_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "not JSON" in r.text
    assert uploads() == before
    assert client.post("/v1/predict", json={"sentences": cells[0][:1]}).status_code == 200


# -- c2s serve: the address before the model ---------------------------------------------------
def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_serve_refuses_a_bad_address_before_loading_the_model(trained_model, capsys,
                                                              monkeypatch):  # fmt: skip
    import uvicorn

    from c2s.cli import main
    from c2s.model import C2SModel

    def never(*args, **kw):
        raise AssertionError("the model was loaded before the address was checked")

    monkeypatch.setattr(C2SModel, "from_pretrained", never)
    monkeypatch.setattr(uvicorn, "run", never)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    cases = [
        (["--port", "-1"], "--port must be from 0 (any free port) to 65535, not -1"),
        (["--port", "99999"], "--port must be from 0 (any free port) to 65535, not 99999"),
        (["--port", str(busy)], f"Cannot listen on 127.0.0.1:{busy}: the port is in use"),
        (["--host", "nosuch.invalid"], "Cannot resolve --host 'nosuch.invalid'"),
    ]
    try:
        for flags, msg in cases:
            code = main(["serve", str(trained_model), *flags])
            line = one_error_line(capsys.readouterr().err)
            assert code == 2 and msg in line, (flags, line)
    finally:
        taken.close()
