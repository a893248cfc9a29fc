"""Training: fine-tuning with the Hugging Face Trainer (tasks mixed by weight, LoRA, resume,
DDP), its options, the examples it trains on and the collator that batches them; the label
heads fitted around it (checkpoint selection, linear probe, validation calibration:
``_heads.py``, one set of label prompts for all three); alignment with GRPO (``align``).

Token encoding (prompt + response with response-only labels) is in :mod:`c2s.encoding`,
which inference shares.
"""

from c2s.train._align import AlignResult, align
from c2s.train._align_config import AlignConfig
from c2s.train._align_data import alignment_prompts, gene_generation_kwargs
from c2s.train._collate import CountingCollator, PromptCollator
from c2s.train._config import TrainConfig, read_yaml, task_weights
from c2s.train._examples import build_examples
from c2s.train._rundir import check_run_dir, is_main_process
from c2s.train._trainer import TrainResult, fine_tune

__all__ = [
    "AlignConfig",
    "AlignResult",
    "CountingCollator",
    "PromptCollator",
    "TrainConfig",
    "TrainResult",
    "align",
    "alignment_prompts",
    "build_examples",
    "check_run_dir",
    "fine_tune",
    "gene_generation_kwargs",
    "is_main_process",
    "read_yaml",
    "task_weights",
]
