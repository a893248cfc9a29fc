// The c2s web page: plain JavaScript against the server's /v1 API (no build step, no
// network beyond this server). Text from the model or the upload is only ever set as
// textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_ROWS = 2000; // rows drawn in the table; the downloads hold every cell
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];
let model = null;
let colors = new Map();
let generatedRows = [];

function token() {
  return sessionStorage.getItem("c2s-token") || "";
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

function detail(body, status) {
  // FastAPI errors: {"detail": "message"} or {"detail": [{"loc": [...], "msg": ...}]}
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => (d.loc || []).slice(1).join(".") + ": " + d.msg).join("; ");
  }
  return "The server answered " + status + ".";
}

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (r.status === 401) $("token-box").hidden = false;
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    throw new Error(detail(body, r.status));
  }
  return r;
}

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function loadModel() {
  try {
    model = await (await api("/v1/model")).json();
  } catch (e) {
    setStatus($("model-info"), e.message, true);
    return;
  }
  const name = model.name || "";
  // a local directory by its own name (the server's path stays in the tooltip); a hub id whole
  $("model-name").textContent = /^[/.~]/.test(name) ? name.replace(/\/+$/, "").split("/").pop() : name;
  $("model-name").title = name;
  $("version").textContent = model.version;
  const labelLists = Object.entries(model.labels || {});
  const parts = [
    "tasks: " + model.tasks.join(", "),
    model.n_genes + " genes per cell",
    model.organism ? "organism: " + model.organism : null,
    "at most " + model.max_cells + " cells per request",
  ];
  $("model-info").textContent = parts.filter(Boolean).join(" · ");
  if (!model.tasks.includes("cell_type_prediction")) {
    $("annotate-form").hidden = true;
    setStatus($("no-annotate"), "This model does not predict cell types (its tasks: " +
      model.tasks.join(", ") + "); the JSON API under /v1 offers what it does.");
  }
  const typeLabels = (model.labels || {}).cell_type || (labelLists[0] || [null, []])[1];
  typeLabels.slice().sort().forEach((l, i) => colors.set(l, PALETTE[i % PALETTE.length]));
  if (model.tasks.includes("cell_type_generation") && typeLabels.length) {
    const select = $("gen-label");
    for (const l of typeLabels) {
      const o = document.createElement("option");
      o.value = l;
      o.textContent = l;
      select.appendChild(o);
    }
    $("generate").hidden = false;
  }
}

function colorOf(label) {
  if (!colors.has(label)) colors.set(label, PALETTE[colors.size % PALETTE.length]);
  return colors.get(label);
}

// ---- annotate: upload with progress (XMLHttpRequest reports upload bytes), then results
function upload(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/annotate");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = "json";
    const bar = $("progress");
    bar.hidden = false;
    bar.value = 0;
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) {
        bar.value = ev.loaded / ev.total;
        setStatus($("status"), "Uploading… " + Math.round((100 * ev.loaded) / ev.total) + "%");
      }
    };
    xhr.upload.onload = () => {
      bar.removeAttribute("value"); // indeterminate while the model runs
      setStatus($("status"), "Upload done; the model is annotating the cells…");
    };
    xhr.onload = () => {
      if (xhr.status === 401) $("token-box").hidden = false;
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new Error(detail(xhr.response, xhr.status)));
    };
    xhr.onerror = () => reject(new Error("The upload failed: the server cannot be reached."));
    xhr.send(form);
  });
}

async function annotate(ev) {
  ev.preventDefault();
  const button = $("annotate-button");
  const source = document.querySelector("input[name=source]:checked").value;
  let result;
  button.disabled = true;
  $("results").hidden = true;
  try {
    if (source === "file") {
      const file = $("file").files[0];
      if (!file) throw new Error("Choose an .h5ad file first.");
      const form = new FormData();
      form.append("file", file);
      if ($("use-raw").checked) form.append("use_raw", "true");
      if ($("layer").value.trim()) form.append("layer", $("layer").value.trim());
      result = await upload(form);
    } else {
      const sentences = $("genes").value.split("\n")
        .map((line) => line.replace(/[,;\t]+/g, " ").trim().split(/\s+/).join(" "))
        .filter((line) => line.length > 0);
      if (!sentences.length) throw new Error("Paste at least one line of gene names.");
      setStatus($("status"), "The model is annotating the cells…");
      $("progress").hidden = false;
      $("progress").removeAttribute("value");
      result = await (await api("/v1/annotate", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sentences }),
      })).json();
    }
    show(result);
    setStatus($("status"), "Done: " + result.cell_ids.length + " cells.");
  } catch (e) {
    setStatus($("status"), e.message, true);
  } finally {
    button.disabled = false;
    $("progress").hidden = true;
  }
}

function show(result) {
  const preds = result.predictions;
  const counts = new Map();
  for (const p of preds) counts.set(p.label, (counts.get(p.label) || 0) + 1);
  $("summary").textContent = preds.length + " cells, " + counts.size + " cell types predicted." +
    (result.warnings.length ? " Notes: " + result.warnings.join(" ") : "");
  const body = document.querySelector("#predictions tbody");
  body.replaceChildren();
  preds.slice(0, MAX_ROWS).forEach((p, i) => {
    const ranked = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
    const next = ranked.length > 1 ? ranked[1][0] + " (" + ranked[1][1].toFixed(2) + ")" : "";
    const tr = document.createElement("tr");
    const cells = [result.cell_ids[i], p.label === null ? "(no genes)" : p.label,
      p.probability === null ? "" : p.probability.toFixed(3), next];
    cells.forEach((text, j) => {
      const td = document.createElement("td");
      if (j === 1 && p.label !== null) {
        const dot = document.createElement("span");
        dot.className = "swatch";
        dot.style.background = colorOf(p.label);
        td.appendChild(dot);
      }
      td.appendChild(document.createTextNode(text));
      if (j === 2) td.className = "num";
      if (j === 1) td.className = "label";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  });
  $("more-rows").textContent = preds.length > MAX_ROWS
    ? "Showing the first " + MAX_ROWS + " of " + preds.length + " cells; the downloads hold all."
    : "";
  const legend = $("legend");
  legend.replaceChildren();
  [...counts.entries()].sort((a, b) => b[1] - a[1]).forEach(([label, n]) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "swatch";
    dot.style.background = colorOf(label);
    li.append(dot, document.createTextNode((label === null ? "(no genes)" : label) + " (" + n + ")"));
    legend.appendChild(li);
  });
  drawMap(result);
  $("download-csv").onclick = () => download(result.downloads.csv, "c2s-predictions.csv");
  $("download-h5ad").onclick = () => download(result.downloads.h5ad, "c2s-annotated.h5ad");
  $("results").hidden = false;
}

function drawMap(result) {
  const canvas = $("umap");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const pts = result.layout.coords
    .map((c, i) => (c ? { x: c[0], y: c[1], i } : null))
    .filter(Boolean);
  canvas.dataset.points = String(pts.length);
  const method = result.layout.method === "umap" ? "UMAP" : "PCA";
  $("umap-caption").textContent = method + " of the model's cell embeddings, colored by predicted type" +
    (result.layout.method === "pca" ? " (PCA: UMAP needs umap-learn and at least 20 cells)" : "");
  if (!pts.length) return;
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const pad = 14;
  const sx = (canvas.width - 2 * pad) / (x1 - x0 || 1);
  const sy = (canvas.height - 2 * pad) / (y1 - y0 || 1);
  const r = pts.length > 3000 ? 1.5 : 3;
  ctx.globalAlpha = 0.8;
  for (const p of pts) {
    ctx.fillStyle = colorOf(result.predictions[p.i].label);
    ctx.beginPath();
    ctx.arc(pad + (p.x - x0) * sx, canvas.height - pad - (p.y - y0) * sy, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

async function download(path, name) {
  try {
    const blob = await (await api(path)).blob();
    saveBlob(blob, name);
  } catch (e) {
    setStatus($("status"), e.message, true);
  }
}

function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- generate
async function generate(ev) {
  ev.preventDefault();
  const label = $("gen-label").value;
  const n = parseInt($("gen-n").value, 10);
  const status = $("gen-status");
  if (!(n >= 1)) {
    setStatus(status, "Ask for at least one cell.", true);
    return;
  }
  $("generate-button").disabled = true;
  setStatus(status, "Generating " + n + " cells…");
  try {
    const body = { labels: { [label]: n }, temperature: parseFloat($("gen-temperature").value) };
    const result = await (await api("/v1/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    })).json();
    generatedRows = result.cells;
    const tbody = document.querySelector("#generated-table tbody");
    tbody.replaceChildren();
    result.cells.forEach((c, i) => {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[String(i + 1), "num"], [c.label, "label"], [c.sentence, "sentence"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        td.className = cls;
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    });
    $("generated").hidden = false;
    setStatus(status, "Done: " + result.cells.length + " cells.");
  } catch (e) {
    setStatus(status, e.message, true);
  } finally {
    $("generate-button").disabled = false;
  }
}

function csvField(s) {
  return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

$("download-generated").onclick = () => {
  const lines = ["cell,label,sentence"].concat(
    generatedRows.map((c, i) => [String(i), c.label, c.sentence].map(csvField).join(",")));
  saveBlob(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }), "c2s-generated.csv");
};

for (const radio of document.querySelectorAll("input[name=source]")) {
  radio.onchange = () => {
    const file = document.querySelector("input[name=source]:checked").value === "file";
    $("file-input").hidden = !file;
    $("text-input").hidden = file;
  };
}
$("token-box").onsubmit = (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("c2s-token", $("token").value);
  $("token-box").hidden = true;
  loadModel();
};
$("annotate-form").onsubmit = annotate;
$("generate-form").onsubmit = generate;
loadModel();
