"""``--reward NAME[:WEIGHT][:KEY=VALUE,...]``: a spec parses to what it says or is refused
before anything runs, with a message that says what to write instead."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from c2s._errors import C2SError
from c2s.rewards import REWARDS, get, parse_spec
from c2s.rewards._registry import OPTIONS


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("label", ("label", 1.0, {})),
        (" label : 2 ", ("label", 2.0, {})),
        ("label:partial=tokens:0.5", ("label", 0.5, {"partial": "tokens"})),
        ("gene_validity:n_genes=30", ("gene_validity", 1.0, {"n_genes": 30})),
        # a list value runs on over commas, and another option may follow it
        ("perturbation_program:program=HLA-A,HLA-B,B2M",
         ("perturbation_program", 1.0, {"program": ["HLA-A", "HLA-B", "B2M"]})),
        ("perturbation_program:2:program=HLA-A, B2M,method=pearson",
         ("perturbation_program", 2.0, {"program": ["HLA-A", "B2M"], "method": "pearson"})),
        ("text_similarity:model=/models/minilm", ("text_similarity", 1.0, {"model": "/models/minilm"})),
    ],
)  # fmt: skip
def test_a_spec_parses_to_what_it_says(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("label:0", "weight must be a positive number, got '0' (a weight of 0 trains nothing"),
        ("label:nan", "got 'nan' (it is not a finite number)"),
        ("label:inf", "got 'inf' (it is not a finite number)"),
        ("label:-1", "a negative weight would train toward worse ones"),
        ("label:1:2", "has two weights (1 and '2')"),
        ("label:heavy", "'heavy' is neither a weight nor key=value"),
        ("label:partail=tokens", "label has no option 'partail'; it takes: partial=tokens."),
        ("label:partial=edit", "partial must be one of tokens, got 'edit'"),
        ("perturbation_program:methd=pearson",
         "it takes: method=kendall|pearson, program=GENE,GENE,..."),
        ("perturbation_program:method=pearson,kendall", "'method' takes one value"),
        ("perturbation_program:program=A,B:program=C", "sets 'program' twice"),
        ("perturbation_program:program=A,,B", "'program' has an empty value"),
        ("perturbation_program:program=B2M,b2m", "repeats ['B2M', 'b2m']"),
        ("gene_validity:genes=FOO", "'genes' is the model's gene list, which c2s supplies"),
        ("expression_similarity:inverse=x.json", "'inverse' is the inverse transform"),
        ("gene_validity:n_genes=ten", "n_genes' must be a positive whole number, got 'ten'"),
        ("label:=tokens", "an option has no name"),
        (":2", "names no reward"),
        ("labell:2", "Unknown reward 'labell'; known: ["),
    ],
)  # fmt: skip
def test_a_bad_spec_is_refused_with_what_to_write(spec, message):
    with pytest.raises(C2SError) as e:
        parse_spec(spec)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_get_refuses_options_a_reward_does_not_take():
    with pytest.raises(C2SError, match="no option\\(s\\) \\['partail'\\]; it takes: partial"):
        get("label", partail="tokens")
    with pytest.raises(C2SError, match="method must be one of kendall\\|pearson"):
        get("perturbation_program", inverse={"model": "linear"}, method="spearman")
    with pytest.raises(C2SError, match="n_genes must be a positive whole number"):
        get("gene_validity", genes=["A"], n_genes="30")
    # what c2s supplies is a plain keyword in Python, where there is no model to take it from
    fn = get("gene_validity", genes=["A", "B"], n_genes=2)
    assert fn(["A B."]) == [1.0]


def test_a_programme_must_name_genes_of_the_model():
    pytest.importorskip("trl")
    from c2s.train._align import check_program

    m = SimpleNamespace(config=SimpleNamespace(genes=["HLA-A", "B2M", "CD74"]))
    check_program(m, ["hla-a", "B2M"], "--program")  # case as the reward compares them
    with pytest.warns(UserWarning, match=r"names 1 gene\(s\) the model does not know \(HLA-Z\)"):
        check_program(m, ["HLA-A", "HLA-Z"], "--program")
    with pytest.raises(C2SError, match="None of the programme's genes in --program"):
        check_program(m, ["HLA-Y", "HLA-Z"], "--program")


# -- the grammar, drawn ------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

WEIGHTS = ["1", "2.5", "1e-3", " 3 ", "1_0", "0", "-0", "nan", "inf", "-inf", "-1", "heavy"]
KEYS = sorted({k for opts in OPTIONS.values() for k in opts} | {"partail", "genes", "inverse"})
VALUES = ["tokens", "pearson", "kendall", "spearman", "30", "0", "HLA-A", "B2M", "b2m", "x"]


def _expected(name, weights, options):
    """What the spec says, from its parts: (name, weight, options), or None for a refusal."""
    if name not in REWARDS or len(weights) > 1:
        return None
    weight = 1.0
    if weights:
        try:
            weight = float(weights[0])
        except ValueError:
            return None
        if not (math.isfinite(weight) and weight > 0):
            return None
    keys = [k for k, _ in options]
    if len(set(keys)) < len(keys):
        return None
    out = {}
    for key, values in options:
        kind = OPTIONS[name].get(key)
        if kind is None:
            return None
        if kind is list:
            if len({v.upper() for v in values}) < len(values):
                return None
            out[key] = list(values)
        elif len(values) > 1:
            return None
        elif kind is int:
            if not values[0].isdigit() or int(values[0]) < 1:
                return None
            out[key] = int(values[0])
        elif isinstance(kind, tuple) and values[0] not in kind:
            return None
        else:
            out[key] = values[0]
    return name, weight, out


def _option(data, name):
    """A key, half the time one the reward takes, and values, mostly of its kind."""
    own = list(OPTIONS.get(name, {}))
    key = data.draw(
        st.sampled_from(own) if own and data.draw(st.booleans()) else st.sampled_from(KEYS)
    )
    kind = OPTIONS.get(name, {}).get(key)
    fits = {int: ["30", "8"], list: ["HLA-A", "B2M", "CD74"], str: ["/models/minilm"]}
    pool = list(kind) if isinstance(kind, tuple) else fits.get(kind, VALUES)
    size = 3 if kind is list else 1
    if data.draw(st.integers(0, 3)) == 0:
        pool, size = VALUES, 3
    return key, data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=size))


@hypothesis.settings(max_examples=500, deadline=None, derandomize=True)
@hypothesis.given(
    name=st.sampled_from([*REWARDS, "labell", "Label"]),
    weights=st.one_of(st.just([]), st.lists(st.sampled_from(WEIGHTS), max_size=2)),
    n_options=st.integers(0, 2),
    together=st.booleans(),
    order=st.randoms(use_true_random=False),
    data=st.data(),
)
def test_a_drawn_spec_parses_to_what_it_says_or_is_refused(
    name, weights, n_options, together, order, data
):
    options = [_option(data, name) for _ in range(n_options)]
    opts = [f"{k}={','.join(v)}" for k, v in options]
    parts = [*weights, *([",".join(opts)] if together and opts else opts)]
    order.shuffle(parts)
    spec = ":".join([name, *parts])
    expected = _expected(name, weights, options)
    try:
        got = parse_spec(spec)
    except C2SError as e:
        assert expected is None, (spec, str(e))
        assert spec in str(e) or name in str(e)
        return
    assert got == expected, spec


# -- through c2s align -------------------------------------------------------------------------
def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("rewards", "message"),
    [
        (["label:0"], "a weight of 0 trains nothing"),
        (["label:nan"], "not a finite number"),
        (["label:1:2"], "two weights"),
        (["label:partail=tokens"], "label has no option 'partail'; it takes: partial=tokens"),
        (["gene_validity:genes=CD74"], "'genes' is the model's gene list"),
        (["label", "label:2"], "Reward(s) ['label'] given more than once"),
    ],
)
def test_align_refuses_a_bad_reward_before_anything_runs(
    capsys, tmp_path, trained_model, pbmc_dataset, rewards, message
):
    pytest.importorskip("trl")
    from c2s.cli import main

    before = _digest(trained_model), _digest(pbmc_dataset.path)
    out = tmp_path / "aligned"
    argv = ["align", trained_model, pbmc_dataset.path, "--out", out, "--max-steps", "1"]
    code = main([str(a) for a in [*argv, *(x for r in rewards for x in ("--reward", r))]])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert (_digest(trained_model), _digest(pbmc_dataset.path)) == before


def test_align_refuses_a_programme_the_model_does_not_know(
    capsys, tmp_path, trained_model, pbmc_dataset
):
    pytest.importorskip("trl")
    from c2s.cli import main

    out = tmp_path / "aligned"
    argv = ["align", trained_model, pbmc_dataset.path, "--out", out, "--max-steps", "1",
            "--program", "NOTAGENE,ALSONOT"]  # fmt: skip
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "None of the programme's genes in --program" in err
    assert "NOTAGENE, ALSONOT" in err  # both genes of the comma-separated programme
    assert not out.exists() and list(tmp_path.iterdir()) == []
