"""Render bench-out/core.json as the Markdown tables of BENCHMARKS.md.

.venv/bin/python benchmarks/report.py [bench-out/core.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-out/core.json")
    r = json.loads(path.read_text())
    m = r["machine"]
    a = r["args"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}; "
        f"{m['date']}.",
        f"Data: synthetic, {a['cells']:,} cells x {a['genes']:,} genes, about "
        f"{a['genes_per_cell']:,} expressed genes per cell, log10-normalized, float32 CSR.",
        "",
    ]
    c = r.get("convert")
    if c:
        out += [
            "| conversion (AnnData in memory -> dataset on disk) | c2s s | c2s cells/s | "
            "reference s | reference cells/s | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for label, ref, text in (
            ("full", "ref_full", "full length, genes + values"),
            ("full_no_values", "ref_full", "full length, genes only (what the reference stores)"),
            ("top200", "ref_top200", "top 200 genes"),
        ):
            o, rf = c[f"ours_{label}"], c.get(ref)
            if rf is None:
                continue
            out.append(
                f"| {text} | {o['seconds']:.3f} | {o['cells_per_s']:,.0f} | {rf['seconds']:.2f} | "
                f"{rf['cells_per_s']:,.0f} | **{c[f'speedup_{label}']:.1f}x** |"
            )
        out.append("")
    f = r.get("file")
    if f and "ref_full" in f:
        out += [
            "| `c2s convert FILE` against the reference, whole processes (start, imports, read, "
            "convert, write) | c2s s | c2s peak RSS | reference s | reference peak RSS | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for label, text in (("full", "full length, genes + values"), ("top200", "top 200 genes")):
            o, rf = f[f"ours_{label}"], f[f"ref_{label}"]
            out.append(
                f"| {text} | {o['seconds']:.2f} | {o['peak_rss_mb']:,.0f} MB | "
                f"{rf['seconds']:.1f} | {rf['peak_rss_mb']:,.0f} MB | "
                f"**{f[f'speedup_{label}']:.1f}x** |"
            )
        out.append("")
    rec = r.get("reconstruct")
    if rec and "ref" in rec:
        o, rf = rec["ours"], rec["ref"]
        out += [
            f"| reconstruction of {o['n_cells']:,} full-length sentences | s | cells/s | ratio |",
            "|---|---|---|---|",
            f"| reference `reconstruct_expression_from_cell_sentence` (per cell, dense) | "
            f"{rf['seconds']:.2f} | {rf['cells_per_s']:,.0f} | 1.0x |",
            f"| c2s `reconstruct`, linear (sparse AnnData) | {o['linear']['seconds']:.3f} | "
            f"{o['linear']['cells_per_s']:,.0f} | **{rec['speedup_linear']:.0f}x** |",
            f"| c2s `reconstruct`, rank_mean (sparse AnnData) | {o['rank_mean']['seconds']:.3f} | "
            f"{o['rank_mean']['cells_per_s']:,.0f} | "
            f"**{o['rank_mean']['cells_per_s'] / rf['cells_per_s']:.0f}x** |",
            "",
        ]
    q = r.get("inverse_quality")
    if q:
        out += [
            "| held-out inverse fit | model | R^2 | Pearson | Spearman | cells train / held out |",
            "|---|---|---|---|---|---|",
        ]
        for name, d in q.items():
            for model in ("rank_mean", "linear"):
                mm = d["metrics"][model]
                sel = " (selected)" if d["selected"] == model else ""
                out.append(
                    f"| {name} | {model}{sel} | {mm['r2']:.4f} | {mm['pearson']:.4f} | "
                    f"{mm['spearman']:.4f} | {d['n_train']:,} / {d['n_heldout']:,} |"
                )
        out.append("")
    s = r.get("stream")
    if s:
        out += [
            f"Streaming: `c2s convert` on a backed {s['n_cells']:,}-cell .h5ad "
            f"({s['file_gb']:.1f} GB on disk), full length with values.",
            "",
            "| --chunk-size | --workers | s | cells/s | peak RSS (process tree) | output digest |",
            "|---|---|---|---|---|---|",
        ]
        for run in s["runs"]:
            chunk = run["chunk_size"] or "default"
            out.append(
                f"| {chunk} | {run['workers']} | {run['seconds']:.1f} | {run['cells_per_s']:,.0f} | "
                f"{run['peak_rss_mb']:,.0f} MB | `{run['digest']}` |"
            )
        out.append("")
        out.append(f"Identical outputs across all runs: **{s['identical_outputs']}**.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
