"""What the flag builder (:mod:`c2s.cli._flags`) cannot read off the verbs: the shared flag
groups, the definitions every verb shares, and per command the parameters the command line
spells otherwise, keeps an old spelling of, or does not offer (with the reason)."""

from __future__ import annotations

import functools

from c2s.cli._flag_spec import Group, Spec, flag

JSON = "print one JSON object on stdout (and nothing else)"
SPLIT_FRACTIONS = "train,validation,test fractions"

# One definition per name, for every verb with such a parameter.
COMMON = {
    "n_genes": flag(help="genes per sentence (default: the model's)"),
    "organism": flag(help="organism for prompts (default: the model's / obs)"),
    "group_by": flag(metavar="COL", help="multi-cell tasks: obs columns that form the groups"),
    "key_added": flag(help="key of the results in obs / obsm / uns"),
    "perturbation_key": flag(
        help="obs column whose --control-value marks the controls; 'none': every cell is one"
    ),
    "control_value": flag(help="the controls' value"),
    "strict": flag(
        help="fail (instead of warning) on a task the model was not trained for, or labels "
        "(perturbations) it never saw"
    ),
}
# Parameters no command offers.
COMMON_EXCLUDED = {
    "progress_bar": "shown when stderr is a terminal (the verbs' default)",
    "inplace": "the command writes --out instead",
}


def group(name: str) -> Group:
    """A shared group by name."""
    return _split() if name == "split" else GROUPS[name]


@functools.cache
def _split() -> Group:
    """The split names are ``c2s.io``'s, read when a command has the flag (it is not light)."""
    from c2s.io import SPLITS

    return Group({"split": flag(choices=list(SPLITS), help="dataset split")})


GROUPS = {
    "model": Group({"model": flag("model", help="model directory or hub id")}),
    "dataset": Group({"dataset": flag("dataset", help="c2s dataset directory")}),
    "input": Group(
        {
            "data": flag("input", help=".h5ad file, c2s dataset directory or SOMA experiment"),
            "use_raw": flag("--raw", help=".h5ad input: rank adata.raw.X"),
            "layer": flag(help=".h5ad input: rank this layer"),
            "var_names": flag(help=".h5ad input: var column holding the gene names"),
        }
    ),
    "soma": Group(
        {
            "measurement": flag(default="RNA", help="measurement (default RNA)"),
            "x_name": flag(help="X layer (default: raw where it exists, else the only one)"),
            "obs_value_filter": flag(
                "--obs-filter",
                metavar="EXPR",
                help="cells to use, a value filter (e.g. \"tissue_general == 'lung' and "
                'is_primary_data == True")',
            ),
            "var_value_filter": flag(
                "--var-filter", metavar="EXPR", help="genes to use (a value filter)"
            ),
        },
        title="TileDB-SOMA input (cells keep their soma_joinid)",
    ),
    "output": Group(
        {
            "out": flag("--out", required=True, help="output"),
            "overwrite": flag(action="store_true", help="replace an existing --out"),
            "json": flag(cli=True, action="store_true", help=JSON),
        }
    ),
    "sampling": Group(
        {
            "temperature": flag(help="sampling temperature; 0 for greedy decoding"),
            "top_k": flag(help="sample from the K most probable tokens only"),
            "top_p": flag(help="nucleus sampling: from the most probable tokens up to P"),
            "seed": flag(help="seed of the sampling"),
        },
        if_param=("temperature", "top_k", "top_p", "seed"),
    ),
    "device": Group(
        {
            "device": flag(default="auto", help="auto, cpu, cuda, mps"),
            "batch_size": flag(help="cells per model batch"),
        },
        if_param=("batch_size",),
    ),
    # train and align: unset, a --config file may say them
    "load": Group(
        {
            "device": flag(help="auto (default), cpu, cuda, cuda:1, mps"),
            "dtype": flag(help="auto (default), float32, bfloat16, float16"),
        }
    ),
}


MODEL_VERB = ("model", "input", "split", "soma", "output", "device")
# c2s train's size of a new model (C2SModel.from_scratch's own default is the test size, tiny)
NEW_MODEL_PRESET = "small"
NEW_OR_FINE_TUNED = f"model to train (default: a new model, --preset {NEW_MODEL_PRESET})"
PYTHON_ONLY = "Python only: a Python object"

COMMANDS: dict[str, Spec] = {
    "predict": Spec(
        groups=MODEL_VERB,
        flags={
            "out": flag(help="output .h5ad or .csv"),
            "task": flag(help="prompt task"),
            "labels": flag(help="candidate labels (default: the model's)"),
            "calibration": flag(
                help="score mode: subtract the labels' scores after an empty cell "
                "(content_free) or add the per-label biases fitted on validation cells in "
                "training (validation)"
            ),
            "length_norm": flag(help="score mode: mean log-probability per token"),
            "top_labels": flag(
                aliases=("--top-k",), help="also write the K most probable labels (score, probe)"
            ),
            "max_new_tokens": flag(help="free mode: token budget"),
        },
    ),
    "embed": Spec(
        groups=MODEL_VERB,
        docs=("c2s.tl.predict",),
        flags={
            "out": flag(help="output .h5ad or .csv"),
            "task": flag(help="single-cell prompt task"),
            "pool": flag(
                help="genes: the mean over the cell sentence's tokens; prompt: over the whole "
                "prompt; last: the last token"
            ),
            "hidden_layer": flag(help="model layer (-1: the last)"),
        },
    ),
    "generate": Spec(
        groups=("model", "output", "device", "sampling"),
        docs=("c2s.tl.predict",),
        flags={
            "out": flag(help="output .h5ad or .csv"),
            "labels": flag(
                "--labels",
                default=None,
                required=False,
                help="labels to condition on (default: the model's)",
            ),
            "task": flag(
                help="cell_type_generation, or tissue_conditional_generation (--n-cells per prompt)"
            ),
            "n_per_label": flag(help="cells (or groups) per label"),
            "n_cells": flag(help="multi-cell tasks: cells per group"),
        },
        exclude={"genes": "Python only: the genes decoding may use", "inverse": PYTHON_ONLY},
    ),
    "perturb": Spec(
        groups=(*MODEL_VERB, "sampling"),
        docs=("c2s.tl.predict",),
        flags={
            "out": flag(help="output .h5ad or .csv"),
            "perturbations": flag("--perturbations", required=True),
            "n_samples": flag(help="predicted cells per control and perturbation"),
        },
        exclude={"genes": "Python only: the genes decoding may use", "inverse": PYTHON_ONLY},
    ),
    "describe": Spec(
        groups=(*MODEL_VERB, "sampling"),
        docs=("c2s.tl.predict",),
        flags={
            "out": flag(help="output .csv (or .h5ad)"),
            "max_cells": flag(help="cells per description at most"),
            "max_new_tokens": flag(help="token budget of a description"),
            "backend": flag(help="vllm: CUDA only"),
        },
    ),
    "screen": Spec(
        groups=MODEL_VERB,
        flags={
            "data": flag(
                help=".h5ad file, c2s dataset directory or SOMA experiment with control cells"
            ),
            "out": flag(help="directory to create"),
            "perturbations": flag(
                "--perturbations",
                exclusive="perturbations",
                required=False,
                default=None,
                help="perturbation names",
            ),
            "perturbations_file": flag(
                cli=True, exclusive="perturbations", help="a file with one perturbation per line"
            ),
            "program": flag(
                exclusive="program",
                required=False,
                default=None,
                metavar="GENE",
                help="the programme's genes",
            ),
            "program_file": flag(
                cli=True, exclusive="program", help="a file with one programme gene per line"
            ),
            "context_key": flag(help="obs column holding the context"),
            "contexts": flag(help="contexts to compare (split: first - second)"),
            "n_samples": flag(help="predicted cells per control"),
            "seed": flag(help="seed of the predictions and the bootstrap"),
            "top": flag(cli=True, type=int, default=8, help="hits labelled in the plot and report"),
            "strict": flag(
                help="fail (instead of warning) on a model not trained for perturbations or a "
                "perturbation it never saw"
            ),
        },
        exclusive={"perturbations": True, "program": True},
        exclude={"inverse": PYTHON_ONLY},
    ),
    "convert": Spec(
        groups=("input", "soma", "output"),
        flags={
            "data": flag(
                nargs="+",
                help="input .h5ad file(s) (several make one dataset), or a SOMA experiment "
                "directory / URI",
            ),
            "out": flag("out_dir", help="dataset directory to create"),
            "overwrite": flag(help="replace an existing OUT_DIR"),
            "layer": flag(exclusive="matrix", help="rank adata.layers[LAYER] instead of adata.X"),
            "use_raw": flag(exclusive="matrix", help="rank adata.raw.X instead of adata.X"),
            "var_names": flag(
                metavar="COLUMN",
                help="var column holding gene symbols (SOMA default: feature_name where it exists)",
            ),
            # unset: given with one input, they are said to do nothing
            "genes": flag(
                unset=True,
                group="several input files",
                help="genes aligned by name: same (default; differing sets are refused), union "
                "(a gene a file lacks is not expressed there) or intersection",
            ),
            "source_key": flag(
                unset=True,
                group="several input files",
                help="obs column naming each cell's file (default source_file)",
            ),
            "obs_keys": flag("--obs", metavar="COL", help="obs columns to carry (default: all)"),
            "n_genes": flag(
                aliases=("--top-k",), metavar="N", help="keep only the top N genes per cell"
            ),
            "seed": flag(help="seed for ties and the split (default 0)"),
            "normalize": flag(help="input is raw counts: store log10(1 + cp10k)"),
            "with_values": flag(
                "--no-values", action="store_false", help="store gene order only, no values"
            ),
            "split_fractions": flag(aliases=("--split",), type=str, help=SPLIT_FRACTIONS),
            "stratify": flag(metavar="COL", help="split each label of this obs column separately"),
            "split_by": flag(
                metavar="COL",
                help="hold out whole values of this obs column (e.g. perturbation): each value "
                "to one split, or with --holdout the named ones to test",
            ),
            "holdout": flag(
                nargs="+",
                metavar="VALUE",
                help="values of --split-by whose cells all go to test (the rest split by "
                "--split-fractions)",
            ),
            "chunk_size": flag(
                help="cells read at a time per worker (bounds memory; default 2048 / workers)"
            ),
            "shard_size": flag(help="cells per Parquet shard"),
            "workers": flag(help="shards written in parallel"),
            "scheduler": flag(
                cli=True,
                metavar="ADDRESS",
                help="run the shards on a Dask cluster (tcp://host:8786); workers must see the "
                "input and the output's file system",
            ),
        },
        exclusive={"matrix": False},
        exclude={"client": "made from --scheduler (and closed) by the command"},
    ),
    "evaluate": Spec(
        groups=("model", "dataset", "output", "sampling"),
        docs=("c2s.evaluation.EvalOptions",),
        flags={
            "dataset": flag(help="c2s dataset directory (with a split)"),
            "out": flag(help="report directory to create"),
            "overwrite": flag(help="replace an existing report directory"),
            "parts": flag(metavar="PART"),
        },
        exclude={
            "options": "the flags are its fields",
            "plot_dir": "the command writes the whole report to --out",
            "progress_bar": "shown unless --json",
            "verbose": "on unless --json",
            "stopwatch": PYTHON_ONLY,
        },
    ),
    "export": Spec(
        groups=("dataset", "output"),
        flags={
            "format": flag(
                cli=True,
                default="reference",
                choices=["reference"],
                help="reference: the cell2sentence package's Arrow layout",
            ),
            "out": flag("out", help="output directory"),
            "overwrite": flag(help="replace an existing output directory"),
            "obs_keys": flag("--obs", metavar="COL", help="label columns to include"),
        },
    ),
    "import-reference": Spec(
        groups=("output",),
        flags={
            "arrow_dir": flag(help="directory saved by the reference package (save_to_disk)"),
            "out": flag("out_dir", help="c2s dataset directory to create"),
            "overwrite": flag(help="replace an existing OUT_DIR"),
            "vocabulary": flag(help="JSON gene -> count mapping giving the vocabulary order"),
            "split_fractions": flag(aliases=("--split",), type=str, help=SPLIT_FRACTIONS),
        },
        positionals=("arrow_dir", "out_dir"),
    ),
    "info": Spec(
        groups=("dataset", "output"),
        drop=("out", "overwrite"),
        flags={
            "check": flag(
                cli=True,
                action="store_true",
                help="read every file and verify it against the metadata (exit 2 if damaged)",
            )
        },
    ),
    "inverse fit": Spec(
        groups=("dataset", "output"),
        drop=("out", "overwrite"),
        flags={
            "plot_dir": flag(cli=True, help="also write fit and reconstruction plots (PNG) here"),
        },
        exclude={
            "sentences": "the dataset's cells",
            "heldout": "the dataset's validation and test cells",
        },
    ),
    "inverse eval": Spec(
        groups=("dataset", "output"),
        drop=("out", "overwrite"),
        exclude={
            "sentences": "the dataset's cells",
            "heldout": "the dataset's validation and test cells",
            "model": "every model is scored",
        },
    ),
    "inverse reconstruct": Spec(
        groups=("dataset", "output", "split"),
        flags={
            "out": flag("out", help="output .h5ad"),
            "overwrite": flag(help="replace an existing output"),
            "clip_negative": flag(help="set negative predictions to 0"),
        },
        exclude={"sentences": "the dataset's cells", "model": "the dataset's inverse model"},
    ),
    "prompt": Spec(
        groups=("dataset", "split", "output"),
        drop=("out", "overwrite"),
        flags={
            "task": flag("--task", help="task name (see the error for the list)"),
            "n_genes": flag(help="genes per cell sentence"),
            "n": flag(cli=True, type=int, default=3, help="examples to print"),
            "organism": flag(cli=True, help="value for {organism} when obs has no such column"),
            "perturbation_key": flag(help="paired tasks: obs column of the perturbation"),
            "context_keys": flag("--context", help="pairing context columns"),
        },
        exclude={"constants": "from --organism"},
    ),
    "quickstart": Spec(
        groups=("output",),
        flags={
            "out": flag(default="c2s-quickstart", required=False, help="report directory"),
            "overwrite": flag(help="replace an existing report directory"),
            "seed": flag(help="seed of the data split, the models and the evaluation"),
            "preset": flag(help="model size"),
            "epochs": flag(help="training epochs of both models (default: their recipes; 0 skips)"),
        },
        exclude={"verbose": "on unless --json"},
    ),
    "train": Spec(
        groups=("dataset", "output", "load"),
        config="training options",
        flags={
            "out": flag(help="run / model directory to create"),
            "overwrite": flag(help="replace a finished run in --out"),
            "device": flag(group=NEW_OR_FINE_TUNED),
            "dtype": flag(group=NEW_OR_FINE_TUNED),
            "model": flag(
                cli=True,
                group=NEW_OR_FINE_TUNED,
                help="hub id or directory of a causal LM to fine-tune",
            ),
            "preset": flag(
                cli=True,
                group=NEW_OR_FINE_TUNED,
                help="from-scratch size",
            ),
            "architecture": flag(
                cli=True,
                group=NEW_OR_FINE_TUNED,
                help="from-scratch architecture (default gpt_neox, as the released models)",
            ),
            "dropout": flag(
                cli=True,
                group=NEW_OR_FINE_TUNED,
                type=float,
                help="from-scratch dropout probability (default: none)",
            ),
            "load_in_4bit": flag(
                cli=True,
                group=NEW_OR_FINE_TUNED,
                action="store_true",
                help="QLoRA: load the model in 4 bits (CUDA only)",
            ),
            "config": flag(cli=True, help="YAML file of training options (flags override it)"),
        },
    ),
    "align": Spec(
        groups=("model", "dataset", "output", "load"),
        config="alignment options",
        flags={
            "model": flag(help="c2s model directory or hub id (usually after c2s train)"),
            "out": flag(help="run / model directory to create"),
            "overwrite": flag(help="replace a finished run in --out"),
            "config": flag(cli=True, help="YAML file of alignment options (flags override it)"),
        },
    ),
}


def serve_spec() -> Spec:
    """``c2s serve``'s entry (its help names the server's constants: not light)."""
    from c2s.cli._serve import TOKEN_ENV
    from c2s.serve import MEMORY_FACTOR

    return Spec(
        groups=("model", "device"),
        flags={
            "host": flag(cli=True, default="127.0.0.1", help="address to bind"),
            "port": flag(cli=True, type=int, default=8000, help="port to listen on"),
            "token": flag(
                help=f"require 'Authorization: Bearer TOKEN' on /v1 (default: ${TOKEN_ENV} if set)"
            ),
            "max_cells": flag(help="cells per request"),
            "max_upload_mb": flag(
                help="largest request body, an .h5ad upload or JSON; an upload may declare at "
                f"most {MEMORY_FACTOR} times this in memory"
            ),
            "timeout": flag(help="seconds a /v1 request may take before it gets 504"),
            "batch_window_ms": flag(
                help="under concurrent load, how long the first request of a batch waits for "
                "others (0 never waits; requests that queue while the model is busy always "
                "join the next batch)"
            ),
            "device": flag(help="auto (GPU when there is one), cpu, cuda"),
        },
    )
