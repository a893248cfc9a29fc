"""Inference verbs on a tiny trained model: exact scoring, batch independence, valid and
unique generated genes, documented outputs, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import c2s  # noqa: E402
from c2s._errors import C2SError  # noqa: E402
from c2s.encoding import encode_text  # noqa: E402
from c2s.model import (  # noqa: E402
    C2SModel,
    GeneTrie,
    generate_genes,
)
from c2s.prompts import Renderer  # noqa: E402


@pytest.fixture(scope="module")
def model(trained_model):
    return C2SModel.from_pretrained(trained_model, device="cpu")


def loglik(m, prompt, answer):
    """Independent reference: one full forward pass, unpadded, sum over the answer tokens."""
    e = encode_text(m.tokenizer, prompt, answer)
    with torch.no_grad():
        lp = m.model(torch.tensor([e["input_ids"]])).logits[0].double().log_softmax(-1)
    ids = e["input_ids"]
    return sum(float(lp[k - 1, ids[k]]) for k in range(1, len(ids)) if e["labels"][k] != -100)


def test_score_is_the_exact_argmax_of_label_likelihoods(model, pbmc):
    cells = pbmc[:12].copy()
    c2s.tl.predict(cells, model, batch_size=5)
    labels = model.config.labels["cell_type"]
    probs = cells.obsm["c2s_prediction_probabilities"]  # columns: uns[...]["labels"]
    assert cells.uns["c2s_prediction"]["labels"] == labels and probs.shape == (12, len(labels))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-9)
    cs = c2s.sentences.from_anndata(cells, n_genes=model.config.n_genes)
    r = Renderer("cell_type_prediction", n_genes=model.config.n_genes)
    for i in range(4):
        prompt = r.prompt(cs, [i])
        ll = np.array([loglik(model, prompt, r.answer(lab)) for lab in labels])
        p = np.exp(ll - ll.max())
        np.testing.assert_allclose(probs[i], p / p.sum(), atol=1e-4)
        assert cells.obs["c2s_prediction"].iloc[i] == labels[int(ll.argmax())]
    assert cells.uns["c2s_prediction"]["mode"] == "score"
    assert cells.obs["c2s_prediction_probability"].between(0, 1).all()


def test_predictions_do_not_depend_on_batch_size(model, pbmc_dataset):
    a = c2s.tl.predict(pbmc_dataset, model, split="test", batch_size=1, inplace=False)
    b = c2s.tl.predict(pbmc_dataset, model, split="test", batch_size=7, inplace=False)
    assert (a.labels == b.labels).all()
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    c = c2s.tl.predict(
        pbmc_dataset, model, split="test", mode="constrained", batch_size=3, inplace=False
    )
    d = c2s.tl.predict(
        pbmc_dataset, model, split="test", mode="constrained", batch_size=8, inplace=False
    )
    assert (c.labels == d.labels).all()
    assert set(c.labels) <= set(model.config.labels["cell_type"])
    f = c2s.tl.predict(pbmc_dataset, model, split="test", mode="free", inplace=False).to_frame()
    assert "c2s_prediction_answer" in f and f["c2s_prediction"].notna().all()


def test_embeddings_do_not_depend_on_batch_mates(model, pbmc):
    cells = pbmc[:9].copy()
    # 300 genes: these cells' sentences differ in length, so batches carry padding
    c2s.tl.embed(cells, model, n_genes=300, batch_size=1, key_added="one")
    c2s.tl.embed(cells, model, n_genes=300, batch_size=4, key_added="four")
    lengths = np.diff(c2s.sentences.from_anndata(cells, n_genes=300).offsets)
    assert len(set(lengths)) > 1
    np.testing.assert_allclose(cells.obsm["one"], cells.obsm["four"], atol=1e-5)
    assert cells.obsm["one"].shape == (9, model.model.config.hidden_size)
    c2s.tl.embed(cells, model, pool="last", key_added="last")
    assert not np.allclose(cells.obsm["last"], cells.obsm["one"])


def test_generated_cells_are_valid_unique_and_exact(model):
    out = c2s.tl.generate(model, ["CD19+ B", "CD14+ Monocyte"], n_per_label=3, n_genes=25, seed=1)
    genes = set(model.config.genes)
    assert out.n_obs == 6 and list(out.obs["cell_type"]) == ["CD19+ B"] * 3 + ["CD14+ Monocyte"] * 3
    for s in out.obs["c2s_sentence"]:
        g = s.split()
        assert len(g) == 25 and len(set(g)) == 25 and set(g) <= genes
    assert (out.X.getnnz(axis=1) <= 25).all() and out.n_vars == len(model.config.genes)
    again = c2s.tl.generate(model, ["CD19+ B", "CD14+ Monocyte"], n_per_label=3, n_genes=25, seed=1)
    assert list(again.obs["c2s_sentence"]) == list(out.obs["c2s_sentence"])
    other = c2s.tl.generate(model, ["CD19+ B", "CD14+ Monocyte"], n_per_label=3, n_genes=25, seed=2)
    assert list(other.obs["c2s_sentence"]) != list(out.obs["c2s_sentence"])
    # each cell draws from its own stream: the batch size changes nothing
    batched = c2s.tl.generate(
        model, ["CD19+ B", "CD14+ Monocyte"], n_per_label=3, n_genes=25, seed=1, batch_size=4
    )
    assert list(batched.obs["c2s_sentence"]) == list(out.obs["c2s_sentence"])
    greedy = c2s.tl.generate(model, {"CD19+ B": 2}, n_genes=10, temperature=0)
    assert greedy.obs["c2s_sentence"].iloc[0] == greedy.obs["c2s_sentence"].iloc[1]


def test_tissue_conditioned_groups_of_cells(model):
    """Multi-cell generation: n_cells cells per prompt, each with exactly n valid genes and no
    repeat inside a cell (a gene may recur in another cell of the group)."""
    out = c2s.tl.generate(
        model, {"blood": 2, "bone marrow": 1}, task="tissue_conditional_generation", n_cells=4,
        n_genes=12, seed=5,
    )  # fmt: skip
    genes = set(model.config.genes)
    assert out.n_obs == 12
    assert list(out.obs["tissue"]) == ["blood"] * 8 + ["bone marrow"] * 4
    assert list(out.obs["c2s_group"]) == [0] * 4 + [1] * 4 + [2] * 4
    assert list(out.obs["c2s_cell"]) == [1, 2, 3, 4] * 3
    for s in out.obs["c2s_sentence"]:
        g = s.split()
        assert len(g) == 12 == len(set(g)) and set(g) <= genes
    assert out.uns["c2s_generate"]["n_cells"] == 4
    again = c2s.tl.generate(
        model, {"blood": 2, "bone marrow": 1}, task="tissue_conditional_generation", n_cells=4,
        n_genes=12, seed=5,
    )  # fmt: skip
    assert list(again.obs["c2s_sentence"]) == list(out.obs["c2s_sentence"])
    with pytest.raises(C2SError, match="does not generate cells"):
        c2s.tl.generate(model, ["blood"], task="tissue_prediction")
    with pytest.raises(C2SError, match="context"):
        c2s.tl.generate(
            model, ["blood"], task="tissue_conditional_generation", n_cells=20, n_genes=300
        )


def test_multi_token_genes_with_shared_prefixes():
    """A byte-level BPE tokenizer (genes span several tokens; CD4 is a prefix of CD44)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    genes = [
        "CD4",
        "CD44",
        "CD40LG",
        "CD8A",
        "HLA-DRA",
        "HLA-DRB1",
        "MT-CO1",
        "LYZ",
        "S100A8",
        "S100A9",
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["Cell sentence: " + " ".join(genes[:4]) + "."] * 3, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    cfg = AutoConfig.for_model(
        "gpt_neox", vocab_size=len(hf_tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256,
    )  # fmt: skip
    torch.manual_seed(0)
    m = C2SModel(AutoModelForCausalLM.from_config(cfg).eval(), hf_tok)
    trie = GeneTrie(hf_tok, genes)
    assert not trie.single_token and trie.n_genes == len(genes)
    prompts = ["Cell sentence:"] * 6
    for temperature in (0.0, 1.5):
        out = generate_genes(
            m, prompts, trie, len(genes), temperature=temperature, seed=3, batch_size=4
        )
        for s in out:
            assert sorted(s) == list(range(len(genes)))  # all genes, each exactly once
        out = generate_genes(m, prompts, trie, 4, temperature=temperature, seed=3)
        assert all(len(s) == 4 and len(set(s)) == 4 for s in out)


def test_bad_inference_input(model, trained_model, tmp_path, pbmc):
    with pytest.raises(C2SError, match="No candidate labels"):
        c2s.tl.predict(pbmc[:3].copy(), model, labels=[], mode="score")
    # A plain model directory (no c2s_config.json): asks for what it cannot know.
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in trained_model.iterdir():
        if f.is_file() and f.name != "c2s_config.json":
            (plain / f.name).write_bytes(f.read_bytes())
    bare = C2SModel.from_pretrained(plain, device="cpu")
    with pytest.raises(C2SError, match="n_genes"):
        c2s.tl.predict(pbmc[:3].copy(), bare)
    cells = pbmc[:3].copy()
    del cells.obs["organism"]
    with pytest.raises(C2SError, match="organism"):
        c2s.tl.predict(cells, bare, n_genes=20, labels=["CD19+ B"])
    c2s.tl.predict(cells, bare, n_genes=20, labels=["CD19+ B", "CD56+ NK"], organism="Homo sapiens")
    assert set(cells.obs["c2s_prediction"]) <= {"CD19+ B", "CD56+ NK"}
    with pytest.raises(C2SError, match="genes"):
        c2s.tl.generate(bare, ["CD19+ B"], n_genes=5, organism="Homo sapiens")
    # Genes the model never saw are counted and warned about.
    odd = pbmc[:4].copy()
    odd.var_names = [f"NEW{i}" if i < 5 else n for i, n in enumerate(odd.var_names)]
    with pytest.warns(UserWarning, match="not in the model's vocabulary"):
        c2s.tl.predict(odd, model, n_genes=765)


def test_prompts_longer_than_the_context_lose_genes(model, pbmc):
    small = C2SModel.from_pretrained(model.name_or_path, device="cpu")
    small.model.config.max_position_embeddings = 120  # pretend the context is short
    cells = pbmc[:3].copy()
    with pytest.warns(UserWarning, match="lost genes"):
        c2s.tl.embed(cells, small, n_genes=300)
    assert np.isfinite(cells.obsm["X_c2s"]).all()


def test_gene_attention_matches_token_attention(model, pbmc):
    """One token per gene: the gene matrix is the token matrix at the genes' positions."""
    cells = pbmc[:2].copy()
    att = c2s.tl.attention(cells, model, n_genes=6, hidden_layer=0)
    frame = next(iter(att.values()))
    genes = list(frame.index)
    assert frame.shape == (6, 6) and list(frame.columns) == genes
    A = frame.to_numpy()
    assert np.allclose(np.triu(A, 1), 0)  # causal: attends backwards only
    r = Renderer("cell_type_prediction", n_genes=6)
    cs = c2s.sentences.from_anndata(cells, n_genes=6)
    prompt = r.prompt(cs, [0])
    enc = model.tokenizer(prompt, return_offsets_mapping=True)
    at, pos = prompt.find(" ".join(genes)), []
    for g in genes:  # the token holding each gene's first character
        pos.append(next(t for t, (s, e) in enumerate(enc["offset_mapping"]) if s <= at < e))
        at += len(g) + 1
    model.model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model.model(torch.tensor([enc["input_ids"]]), output_attentions=True)
    model.model.set_attn_implementation("sdpa")
    tok_att = out.attentions[0][0].mean(0).numpy()
    np.testing.assert_allclose(A, tok_att[np.ix_(pos, pos)], atol=1e-5)
    assert model.model.config._attn_implementation == "sdpa"


def test_perturb_and_describe_outputs(model, pbmc):
    cells = pbmc[:3].copy()
    out = c2s.tl.perturb(cells, model, ["IFNG", "TNF"], n_genes=12, seed=0, perturbation_key=None)
    assert out.n_obs == 6 and list(out.obs["perturbation"]) == ["IFNG", "TNF"] * 3
    assert list(out.obs["control_cell"]) == [c for c in cells.obs_names for _ in range(2)]
    assert list(out.obs["cell_type"]) == [t for t in cells.obs["cell_type"] for _ in range(2)]
    vocab = set(model.config.genes)
    for s in out.obs["c2s_sentence"]:
        g = s.split()
        assert len(g) == 12 and len(set(g)) == 12 and set(g) <= vocab
    d = c2s.tl.describe(pbmc[:6].copy(), model, group_by=["cell_type"], n_genes=5, max_new_tokens=4)
    assert set(d["cell_type"]) == set(pbmc.obs["cell_type"][:6].astype(str))
    assert sum(len(c) for c in d["cells"]) == 6 and d["description"].map(type).eq(str).all()


def test_vllm_backend_is_guarded(model, pbmc):
    if torch.cuda.is_available():
        pytest.skip("a GPU machine may run vLLM for real")
    with pytest.raises(C2SError, match="CUDA GPU and vllm"):
        c2s.tl.describe(pbmc[:3].copy(), model, n_genes=5, backend="vllm")


@pytest.mark.parametrize("attn", ["sdpa", "eager", "cache"])
def test_every_scoring_path_gives_the_same_likelihoods(model, pbmc, attn):
    """Tree-masked scoring (SDPA bool mask or eager float mask) and the repeated-cache path
    agree with the one-at-a-time reference."""
    from c2s.model._score import _score_cached, score_answers, split_candidates

    cs = c2s.sentences.from_anndata(pbmc[:5].copy(), n_genes=model.config.n_genes)
    r = Renderer("cell_type_prediction", n_genes=model.config.n_genes)
    prompts = [r.prompt(cs, [i]) for i in range(5)]
    answers = [r.answer(lab) for lab in model.config.labels["cell_type"]]
    if attn == "cache":
        got = _score_cached(
            model, split_candidates(model.tokenizer, prompts, answers), len(answers), 2, 7, False
        )
    else:
        model.model.set_attn_implementation(attn)
        try:
            got = score_answers(model, prompts, answers, batch_size=3)
        finally:
            model.model.set_attn_implementation("sdpa")
    want = np.array([[loglik(model, p, a) for a in answers] for p in prompts])
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_multi_cell_prediction_labels_every_cell_of_a_group(model, pbmc):
    cells = pbmc[:30].copy()
    cells.obs["donor"] = np.repeat(["d1", "d2", "d3"], 10)
    c2s.tl.predict(
        cells,
        model,
        task="tissue_prediction",
        labels=["blood", "bone marrow"],
        group_by=["donor"],
        n_genes=8,
    )
    pred = cells.obs["c2s_prediction"]
    assert pred.notna().all() and set(pred) <= {"blood", "bone marrow"}
    for _, group in cells.obs.groupby("donor", observed=True):
        assert group["c2s_prediction"].nunique() == 1  # one prompt per donor (10 cells <= 20)
    assert cells.uns["c2s_prediction"]["n_prompts"] == 3


def test_constrained_decoding_matches_a_slow_greedy_walk(model, pbmc):
    """Constrained mode (batched, cached, stopping once one candidate is left) picks what a
    plain greedy walk over the candidates' tokens picks, with full forward passes; labels
    sharing first tokens and one label that is a prefix of others take several steps."""
    labels = ["CD14+ Monocyte", "CD14+ B", "CD14+", "CD19+ B", "Dendritic"]
    cells = pbmc[:10].copy()
    c2s.tl.predict(cells, model, mode="constrained", labels=labels, batch_size=4)
    cs = c2s.sentences.from_anndata(cells, n_genes=model.config.n_genes)
    r = Renderer("cell_type_prediction", n_genes=model.config.n_genes)
    for i in range(cells.n_obs):
        prompt = r.prompt(cs, [i])
        seqs = [encode_text(model.tokenizer, prompt, r.answer(lab))["input_ids"] for lab in labels]
        start = 0  # the tokens every candidate shares: the prompt
        while all(start < len(s) and s[start] == seqs[0][start] for s in seqs):
            start += 1
        alive, cur, t = list(range(len(labels))), list(seqs[0][:start]), start
        while True:
            with torch.no_grad():
                logits = model.model(torch.tensor([cur])).logits[0, -1]
            allowed = sorted({seqs[j][t] for j in alive if t < len(seqs[j])})
            tok = allowed[int(logits[allowed].argmax())]
            alive = [j for j in alive if t < len(seqs[j]) and seqs[j][t] == tok]
            done = [j for j in alive if len(seqs[j]) == t + 1]
            if done:
                break
            cur.append(tok)
            t += 1
        assert cells.obs["c2s_prediction"].iloc[i] == labels[done[0]], i


def test_a_layout_fallback_is_a_warning(model, monkeypatch):
    """A tokenizer whose single-cell answer cannot be read gene by gene falls back to closing
    the last gene with EOS; that changes the tokens generated, so the user is told."""
    import c2s.model

    def refuse(*args, **kwargs):
        raise C2SError("this tokenizer merges genes with the text after them")

    monkeypatch.setattr(c2s.model, "cell_layout", refuse)
    with pytest.warns(UserWarning, match="closed by EOS instead"):
        out = c2s.tl.generate(model, {"CD19+ B": 2}, n_genes=6, seed=0)
    genes = set(model.config.genes)
    for s in out.obs["c2s_sentence"]:
        g = s.split()
        assert len(g) == 6 == len(set(g)) and set(g) <= genes
    with pytest.raises(C2SError, match="merges genes"):  # no fallback for several cells
        c2s.tl.generate(model, {"blood": 1}, task="tissue_conditional_generation", n_genes=4)


def test_probe_mode_is_the_stored_probe_on_the_embeddings(model, pbmc, tmp_path):
    """Training fitted a linear probe on the training cells' embeddings; predict(mode="probe")
    applies it to the same embeddings as embed(), and it survives save and load."""
    from c2s.model import probe_probabilities

    probe = model.config.probe
    assert probe["task"] == "cell_type_prediction" and probe["n_train"] > 100
    cells = pbmc[:20].copy()
    c2s.tl.predict(cells, model, mode="probe", key_added="pr")
    E = c2s.tl.embed(cells, model, inplace=False, pool=probe["pool"])
    want = probe_probabilities(probe, E.to_numpy())
    np.testing.assert_allclose(cells.obsm["pr_probabilities"], want, atol=1e-6)
    assert list(cells.obs["pr"]) == [probe["labels"][j] for j in want.argmax(1)]
    assert cells.uns["pr"]["labels"] == probe["labels"] and cells.uns["pr"]["mode"] == "probe"
    model.save(tmp_path / "again")
    again = C2SModel.from_pretrained(tmp_path / "again", device="cpu")
    back = c2s.tl.predict(pbmc[:20].copy(), again, mode="probe", inplace=False)
    assert list(back.labels) == list(cells.obs["pr"])
    two = c2s.tl.predict(
        pbmc[:20].copy(), model, mode="probe", labels=probe["labels"][:2], inplace=False
    )
    assert set(two.labels) <= set(probe["labels"][:2]) and two.candidates == probe["labels"][:2]
    np.testing.assert_allclose(two.probabilities.sum(1), 1.0)


def test_fit_probe_separates_separable_cells():
    from c2s.model import fit_probe, probe_probabilities

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 5, (3, 8))
    y = np.repeat(["a", "b", "c"], 40)
    X = centers[np.repeat(np.arange(3), 40)] + rng.normal(0, 1, (120, 8))
    probe = fit_probe(X, y, ["a", "b", "c"])
    p = probe_probabilities(probe, X)
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert (
        probe["train_accuracy"] == 1.0
        and np.mean(np.array(["a", "b", "c"])[p.argmax(1)] == y) == 1.0
    )
    with pytest.raises(C2SError, match="dimensional"):
        probe_probabilities(probe, X[:, :4])


def test_calibrated_scores_equal_hand_computed_values(model, pbmc):
    """Content-free calibration subtracts each label's log-likelihood after the prompt with
    an empty sentence; length normalization divides by the answer's tokens; the validation
    calibration adds its biases. All against the slow one-sequence reference."""
    from c2s.model import softmax

    cells = pbmc[:4].copy()
    labels = model.config.labels["cell_type"]
    cs = c2s.sentences.from_anndata(cells, n_genes=model.config.n_genes)
    r = Renderer("cell_type_prediction", n_genes=model.config.n_genes)
    raw = np.array(
        [[loglik(model, r.prompt(cs, [i]), r.answer(x)) for x in labels] for i in range(4)]
    )
    empty = r.prompt(cs, [0]).replace(cs.to_text(model.config.n_genes)[0], "")
    assert empty == r.content_free_prompt(cs, [0]) and empty != r.prompt(cs, [0])
    cf = np.array([loglik(model, empty, r.answer(x)) for x in labels])
    ntok = np.array(
        [sum(v != -100 for v in encode_text(model.tokenizer, empty, r.answer(x))["labels"])
         for x in labels]
    )  # fmt: skip
    bias = np.linspace(-1, 1, len(labels))
    model.config.calibration = {
        "task": "cell_type_prediction", "labels": labels, "bias": bias.tolist()
    }  # fmt: skip
    try:
        cases = {
            ("content_free", False): raw - cf,
            ("none", True): raw / ntok,
            ("content_free", True): raw / ntok - cf / ntok,
            ("validation", False): raw + bias,
        }
        for (cal, norm), want in cases.items():
            f = c2s.tl.predict(
                cells, model, calibration=cal, length_norm=norm, top_labels=3, inplace=False
            ).to_frame()
            got = f[["p_" + x for x in labels]].to_numpy()
            np.testing.assert_allclose(got, softmax(want), atol=1e-4, err_msg=str((cal, norm)))
            assert list(f["c2s_prediction"]) == [labels[j] for j in want.argmax(1)]
            assert list(f["c2s_prediction_top1"]) == list(f["c2s_prediction"])
            second = [labels[j] for j in np.argsort(-want, 1)[:, 1]]
            assert list(f["c2s_prediction_top2"]) == second
            np.testing.assert_allclose(
                f["c2s_prediction_top3_probability"], np.sort(softmax(want), 1)[:, -3], atol=1e-4
            )
            assert f.attrs["c2s"]["calibration"] == cal
    finally:
        model.config.calibration = None
    with pytest.raises(C2SError, match="no validation calibration"):
        c2s.tl.predict(cells, model, calibration="validation")
    with pytest.raises(C2SError, match="label scoring"):
        c2s.tl.predict(cells, model, mode="constrained", top_labels=2)
    with pytest.raises(C2SError, match="calibration must be"):
        c2s.tl.predict(cells, model, calibration="prior")


def test_fit_label_bias_recovers_a_known_shift():
    """Scores with a constant per-label offset: the fitted biases remove it (up to the
    penalty), and accuracy returns to that of the unshifted scores."""
    from c2s.model import fit_label_bias

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    clean = rng.normal(0, 1, (3000, 3))
    clean[np.arange(3000), y] += 2.0
    shift = np.array([3.0, 0.0, -1.0])
    fit = fit_label_bias(clean + shift, np.array(list("abc"))[y], list("abc"), l2=1e-3)
    np.testing.assert_allclose(np.asarray(fit["bias"]), -(shift - shift.mean()), atol=0.15)
    assert fit["accuracy_after"] > fit["accuracy_before"] + 0.2
    assert fit["accuracy_after"] == pytest.approx(float((clean.argmax(1) == y).mean()), abs=0.02)
