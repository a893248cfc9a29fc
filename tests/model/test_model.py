"""C2SModel: from-scratch presets per architecture, save/load, pad fix, devices, LoRA targets."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from c2s._errors import C2SError, OutputExistsError  # noqa: E402
from c2s.model import (  # noqa: E402
    ARCHITECTURES,
    CONFIG_FILE,
    C2SConfig,
    C2SModel,
    lora_targets,
    resolve_device,
    resolve_dtype,
    vocab_hash,
)

GENES = ["CD74", "HLA-DRA", "LYZ", "MALAT1", "RP11-34P13.7", "S100A8"]


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_scratch_model_saves_as_plain_hf_directory(arch, tmp_path):
    m = C2SModel.from_scratch(genes=GENES, architecture=arch, max_length=128, device="cpu")
    assert m.model.config.model_type == arch
    assert m.tokenizer.pad_token_id is not None
    ids = m.tokenizer("CD74 LYZ RP11-34P13.7 S100A8.")["input_ids"]
    assert len(ids) == 5  # one token per gene, plus the full stop
    out = m.save(tmp_path / "m")
    plain = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok("CD74 LYZ RP11-34P13.7 S100A8.")["input_ids"] == ids
    torch.testing.assert_close(logits(plain, ids), logits(m.model.eval(), ids))
    # A class name older transformers releases know too (the reference package pins 4.x).
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    cfg = json.loads((out / CONFIG_FILE).read_text())
    assert cfg["genes"] == GENES and cfg["vocab_sha256"] == vocab_hash(GENES)
    assert cfg["profile"] == "compat" and cfg["package_version"]


def test_scratch_from_dataset_knows_labels_and_inverse(pbmc_dataset):
    m = C2SModel.from_scratch(pbmc_dataset, device="cpu", max_length=256)
    unk = m.tokenizer.unk_token_id
    for label in pbmc_dataset.obs()["cell_type"].unique():
        assert unk not in m.tokenizer(f" {label}.")["input_ids"], label
    assert m.config.genes == pbmc_dataset.vocab.display_names.tolist()
    assert m.config.inverse == pbmc_dataset.meta.get("inverse")


def test_from_scratch_takes_its_old_keyword(pbmc_dataset):
    """``data=``, from_scratch's old name for ``dataset``: warned, the same model."""
    with pytest.warns(FutureWarning, match="data= is now called dataset="):
        old = C2SModel.from_scratch(data=pbmc_dataset, device="cpu", max_length=64)
    new = C2SModel.from_scratch(pbmc_dataset, device="cpu", max_length=64)
    assert old.config.genes == new.config.genes and old.config.inverse == new.config.inverse
    assert old.tokenizer.get_vocab() == new.tokenizer.get_vocab()


def test_plain_model_without_pad_token_gets_eos_as_pad(tmp_path):
    m = C2SModel.from_scratch(genes=GENES, architecture="gpt2", max_length=64, device="cpu")
    m.model.config.pad_token_id = None
    m.model.save_pretrained(tmp_path / "plain")
    m.tokenizer.pad_token = None
    m.tokenizer.save_pretrained(tmp_path / "plain")
    assert AutoTokenizer.from_pretrained(tmp_path / "plain").pad_token is None
    loaded = C2SModel.from_pretrained(tmp_path / "plain", device="cpu")
    assert loaded.tokenizer.pad_token_id == loaded.tokenizer.eos_token_id
    assert loaded.model.config.pad_token_id == loaded.tokenizer.eos_token_id
    assert loaded.config == C2SConfig()  # no c2s_config.json: the defaults


def test_save_refuses_to_overwrite(tmp_path):
    m = C2SModel.from_scratch(genes=GENES, max_length=64, device="cpu")
    m.save(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        m.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    m.save(tmp_path / "m", overwrite=True)


def test_bad_paths_and_devices(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(C2SError, match="not a model directory"):
        C2SModel.from_pretrained(tmp_path / "empty")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(C2SError, match="is a file"):
        C2SModel.from_pretrained(tmp_path / "f.bin")
    with pytest.raises(C2SError, match="Unknown preset"):
        C2SModel.from_scratch(genes=GENES, preset="huge")
    if not torch.cuda.is_available():
        with pytest.raises(C2SError, match="CUDA"):
            resolve_device("cuda")
        m = C2SModel.from_scratch(genes=GENES, max_length=64, device="cpu")
        m.save(tmp_path / "m")
        with pytest.raises(C2SError, match=r"4-bit.*CUDA"):
            C2SModel.from_pretrained(tmp_path / "m", load_in_4bit=True)
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(C2SError, match="Unknown dtype"):
        resolve_dtype("float7", cpu)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_default_lora_targets_exist_in_each_architecture(arch):
    m = C2SModel.from_scratch(genes=GENES, architecture=arch, max_length=64, device="cpu")
    targets = lora_targets(m.model)
    names = {n.rsplit(".", 1)[-1] for n, _ in m.model.named_modules()}
    assert targets and set(targets) <= names


def test_wrong_lora_target_is_refused_with_the_real_names():
    m = C2SModel.from_scratch(genes=GENES, architecture="gpt_neox", max_length=64, device="cpu")
    # q_proj/v_proj do not exist in GPT-NeoX (its attention is one query_key_value layer).
    with pytest.raises(C2SError, match="query_key_value"):
        lora_targets(m.model, ["q_proj", "v_proj"])


@pytest.mark.parametrize(
    ("error", "warns"),
    [
        ("EntryNotFoundError", False),  # the repo has no c2s_config.json: a plain LM
        ("RepositoryNotFoundError", False),  # loading the model says why
        ("HFValidationError", False),  # not a hub id
        ("LocalEntryNotFoundError", True),  # offline and not cached: could not check
        ("OfflineModeIsEnabled", True),
    ],
)
def test_remote_config_lookup_says_when_it_could_not_check(monkeypatch, error, warns):
    import warnings
    from types import SimpleNamespace

    import huggingface_hub
    import huggingface_hub.errors as hf_errors

    from c2s.model._pretrained import _read_remote_config

    def fail(*args, **kwargs):
        cls = getattr(hf_errors, error)
        if issubclass(cls, hf_errors.HfHubHTTPError):  # needs the HTTP response
            raise cls("no", response=SimpleNamespace(headers={}, status_code=404, request=None))
        raise cls("no")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert _read_remote_config("someone/model", None) is None
    msgs = [str(w.message) for w in seen if "c2s_config.json" in str(w.message)]
    assert bool(msgs) == warns
    if warns:
        assert "someone/model" in msgs[0] and "defaults apply" in msgs[0]


def test_remote_config_lookup_lets_other_errors_through(monkeypatch):
    import huggingface_hub

    from c2s.model._pretrained import _read_remote_config

    def fail(*args, **kwargs):
        raise RuntimeError("a bug, not a missing file")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        _read_remote_config("someone/model", None)


def test_from_scratch_knows_both_organisms():
    """A data set without an organism column still trains prompts naming either organism
    (a mouse run once spent 0.8% of its tokens on <unk>)."""
    m = C2SModel.from_scratch(genes=GENES, device="cpu")
    for organism in ("Homo sapiens", "Mus musculus"):
        ids = m.tokenizer(f"expression level in a {organism} cell.")["input_ids"]
        assert m.tokenizer.unk_token_id not in ids, organism
    other = C2SModel.from_scratch(genes=GENES, device="cpu", texts=["Danio rerio"])
    assert other.tokenizer.unk_token_id not in other.tokenizer("a Danio rerio cell")["input_ids"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_scratch_dropout_reaches_the_modules(arch):
    """dropout= sets the architecture's dropout fields: training-mode outputs vary between
    calls, eval-mode outputs do not; None keeps the default."""
    from c2s.model._scratch import DROPOUT_FIELDS

    m = C2SModel.from_scratch(genes=GENES, architecture=arch, dropout=0.5, device="cpu")
    for name in DROPOUT_FIELDS[arch]:
        assert getattr(m.model.config, name) == 0.5
    ids = m.tokenizer("CD74 LYZ S100A8 MALAT1 HLA-DRA.")["input_ids"]
    m.model.train()
    assert not torch.equal(logits(m.model, ids), logits(m.model, ids))
    m.model.eval()
    torch.testing.assert_close(logits(m.model, ids), logits(m.model, ids))
    with pytest.raises(C2SError, match="dropout"):
        C2SModel.from_scratch(genes=GENES, dropout=1.0, device="cpu")


def test_each_rank_gets_the_gpu_of_its_local_rank(monkeypatch):
    """Under torchrun every process sets LOCAL_RANK; "auto" and a bare "cuda" pick that GPU
    (checked with CUDA faked present: four GPUs)."""
    from c2s.model import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    for rank in ("0", "3"):
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert resolve_device("auto") == torch.device("cuda", int(rank))
        assert resolve_device("cuda") == torch.device("cuda", int(rank))
        assert resolve_device("cuda:1") == torch.device("cuda", 1)  # explicit wins
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device(None) == torch.device("cuda", 0)
