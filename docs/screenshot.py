"""Takes docs/serve-page.png, the README's picture of the web page: serves MODEL on a free
localhost port, uploads scanpy's bundled PBMC cells in headless Chromium (Playwright with
the system browser) and captures the page with its results.

    .venv/bin/python docs/screenshot.py MODEL [--out docs/serve-page.png] [--cells 700]

MODEL: e.g. the predictor of ``make quickstart`` (c2s-quickstart/model). The README's picture
serves a model trained on the quickstart's dataset with ``fine_tune(C2SModel.from_scratch(ds,
max_length=1024, seed=0), ds, tasks=["cell_type_prediction:2", "cell_type_generation"],
n_genes=50, epochs=20, seed=0)``, so both halves of the page show. Needs the serve extra,
playwright and Chromium (``.ci/install-browser``).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--out", default=str(Path(__file__).with_name("serve-page.png")))
    ap.add_argument("--cells", type=int, default=700)
    args = ap.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright

    import c2s
    from c2s.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(args.model), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        cells = Path(tmp) / "pbmc68k_reduced.h5ad"
        c2s.datasets.pbmc68k_reduced()[: args.cells].copy().write_h5ad(cells)
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#model-info:not(:empty)")
        page.set_input_files("#file", str(cells))
        page.click("#annotate-button")
        page.wait_for_selector("#results:not([hidden])", timeout=300_000)
        if not page.is_hidden("#generate"):
            page.fill("#gen-n", "3")
            page.click("#generate-button")
            page.wait_for_selector("#generated:not([hidden])", timeout=300_000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    server.should_exit = True
    print(args.out)


if __name__ == "__main__":
    main()
