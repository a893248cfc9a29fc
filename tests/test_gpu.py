"""CUDA paths (skipped without a GPU; benchmarks/gpu_check.sh runs them on one): seeded
sampling beside the logits, bf16 training with float32 master weights, inference in bf16."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.gpu

import c2s  # noqa: E402
from c2s.model import C2SModel  # noqa: E402
from c2s.train import fine_tune  # noqa: E402


@pytest.fixture(scope="module")
def cuda_model(tmp_path_factory):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    adata = c2s.datasets.synthetic(300, 500, n_cell_types=3, genes_per_cell=150, seed=0)
    ds = c2s.io.convert(
        adata, tmp_path_factory.mktemp("gpu") / "ds", obs_keys=["cell_type"], normalize=True
    )
    ds.update_meta(inverse=c2s.inverse.fit_inverse(ds.sentences(split="train")).to_dict())
    m = C2SModel.from_scratch(ds, device="cuda", max_length=256)
    m.model.to(torch.bfloat16)
    return m, ds


def test_bf16_training_keeps_fp32_masters_on_cuda(cuda_model):
    m, ds = cuda_model
    r = fine_tune(
        m, ds, tasks=["cell_type_prediction", "cell_type_generation"], n_genes=20,
        max_steps=20, batch_size=16, learning_rate=3e-3, eval_split=None, probe=False,
        organism="Homo sapiens",
    )  # fmt: skip
    losses = r.loss_curve()[1]
    assert losses[-1] < losses[0]
    assert {p.dtype for p in m.model.parameters()} == {torch.bfloat16}
    assert next(m.model.parameters()).device.type == "cuda"


def test_seeded_sampling_on_cuda(cuda_model):
    m, _ = cuda_model
    kw = {"n_per_label": 3, "n_genes": 10, "seed": 4, "organism": "Homo sapiens"}
    a = c2s.tl.generate(m, ["type_0"], **kw)
    b = c2s.tl.generate(m, ["type_0"], **kw)
    assert list(a.obs["c2s_sentence"]) == list(b.obs["c2s_sentence"])
    for s in a.obs["c2s_sentence"]:
        g = s.split()
        assert len(g) == 10 == len(set(g)) and set(g) <= set(m.config.genes)


def test_scoring_in_bf16_on_cuda(cuda_model):
    m, ds = cuda_model
    f = c2s.tl.predict(ds, m, split="test", inplace=False, n_genes=20, organism="Homo sapiens")
    probs = f.filter(like="p_").to_numpy()
    assert probs.shape[1] == 3 and abs(probs.sum(1) - 1).max() < 1e-6
