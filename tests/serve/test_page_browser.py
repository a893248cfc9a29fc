"""The web page in a real headless browser: Debian's Chromium driven by Playwright (the
Python package, with the system browser; Playwright's own browser download is never used).

Skipped with the reason when Chromium or Playwright is missing; ``.ci/run`` installs both and
sets C2S_REQUIRE_BROWSER=1, which turns the skip into a failure."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

import c2s

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _chromium() -> str | None:
    for path in (os.environ.get("C2S_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                 shutil.which("chromium-browser"), shutil.which("google-chrome")):  # fmt: skip
        if path and os.path.exists(path):
            return path
    return None


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright; .ci/run installs it)"
    if _chromium() is None:
        return ("Chromium is not installed (apt-get install chromium; .ci/run installs it; "
                "or set C2S_CHROMIUM to a Chrome/Chromium binary)")  # fmt: skip
    return None


def texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("C2S_REQUIRE_BROWSER") == "1":
            pytest.fail(f"C2S_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(trained_model):
    """``c2s serve`` in a thread on a free localhost port; its base URL."""
    import uvicorn

    from c2s.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(str(trained_model), device="cpu", max_cells=100)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_upload_pbmc_cells_see_labels_and_download_the_csv(browser, server, trained_model,
                                                          _pbmc, tmp_path):  # fmt: skip
    a = _pbmc[:40].copy()
    a.write_h5ad(tmp_path / "pbmc.h5ad")
    want = c2s.tl.predict(a, str(trained_model), inplace=False, progress_bar=False)
    labels = set(c2s.model.C2SModel.from_pretrained(trained_model).config.labels["cell_type"])

    page = browser.new_page(accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#gen-label option", state="attached")
    assert "cell_type_prediction" in page.text_content("#model-info")
    page.evaluate("""() => { window.statuses = [];
        new MutationObserver(() => window.statuses.push(document.getElementById("status").textContent))
          .observe(document.getElementById("status"), {childList: true, characterData: true, subtree: true}); }""")

    page.set_input_files("#file", str(tmp_path / "pbmc.h5ad"))
    page.click("#annotate-button")
    page.wait_for_function("document.querySelectorAll('#predictions tbody tr').length === 40",
                           timeout=120_000)  # fmt: skip
    shown = texts(page, "#predictions tbody td.label")
    assert all(label in labels for label in shown)  # every row: a label of the model
    assert shown == list(want["c2s_prediction"])  # the verb's labels, in the upload's order
    ids = texts(page, "#predictions tbody tr td:first-child")
    assert ids == list(a.obs_names)
    seen = page.evaluate("window.statuses")
    assert any(t.startswith("Upload done") for t in seen), seen  # the upload's progress shown
    assert page.get_attribute("#umap", "data-points") == "40"
    assert "UMAP" in page.text_content("#umap-caption")

    with page.expect_download() as dl:
        page.click("#download-csv")
    assert dl.value.suggested_filename == "c2s-predictions.csv"
    csv = pd.read_csv(dl.value.path())
    assert list(csv["cell_id"]) == list(a.obs_names)
    assert list(csv["c2s_prediction"]) == list(want["c2s_prediction"])
    with page.expect_download() as dl:
        page.click("#download-h5ad")
    import anndata as ad

    got = ad.read_h5ad(dl.value.path())
    assert list(got.obs["c2s_prediction"]) == list(want["c2s_prediction"])
    assert got.obsm["X_c2s"].shape[0] == 40
    assert errors == []


def test_paste_genes_generate_cells_and_a_bad_file_is_explained(browser, server, trained_model,
                                                                tmp_path):  # fmt: skip
    genes = set(c2s.model.C2SModel.from_pretrained(trained_model).config.genes)
    page = browser.new_page(accept_downloads=True)
    page.goto(server + "/")
    page.wait_for_selector("#gen-label option", state="attached")

    page.check("input[name=source][value=text]")
    page.fill("#genes", "CD14, LYZ, S100A9, FCN1\n\nCD79A MS4A1 CD74 HLA-DRA\n")
    page.click("#annotate-button")
    page.wait_for_function("document.querySelectorAll('#predictions tbody tr').length === 2")
    assert page.text_content("#status").startswith("Done: 2 cells")

    page.select_option("#gen-label", "CD19+ B")
    page.fill("#gen-n", "3")
    page.click("#generate-button")
    page.wait_for_function("document.querySelectorAll('#generated-table tbody tr').length === 3",
                           timeout=60_000)  # fmt: skip
    rows = texts(page, "#generated-table tbody td.sentence")
    for sentence in rows:
        words = sentence.split()
        assert words and len(words) == len(set(words)) and set(words) <= genes
    assert set(texts(page, "#generated-table td.label")) == {"CD19+ B"}
    with page.expect_download() as dl:
        page.click("#download-generated")
    assert list(pd.read_csv(dl.value.path())["sentence"]) == rows

    (tmp_path / "bad.h5ad").write_text("not an h5ad file")
    page.check("input[name=source][value=file]")
    page.set_input_files("#file", str(tmp_path / "bad.h5ad"))
    page.click("#annotate-button")
    page.wait_for_selector("#status.error")
    assert "Cannot read bad.h5ad as an .h5ad file" in page.text_content("#status")
    assert page.is_enabled("#annotate-button")  # and the page (and server) go on
