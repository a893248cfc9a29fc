"""AnnData verbs (scanpy style) running a C2S model: predict, embed, attention, generate,
perturb, describe, screen; and the 2-D layout of embeddings (``layout_2d``).

One contract for all of them: ``data`` is an AnnData (``layer``, ``use_raw`` and
``var_names`` choose its expression) or a c2s dataset (``split`` picks one split);
``hidden_layer`` names a layer of the model; everything after the data and the model is
keyword-only. ``predict`` and ``embed`` annotate cells: with ``inplace=True`` (the default)
they write into the AnnData and return None, with ``inplace=False`` they return typed results
(:class:`PredictionResult`, :class:`EmbeddingResult`: ``.write(adata)``, ``.to_frame()``) and
write nothing. The other verbs return new objects and never write into ``data``
(``screen`` a :class:`ScreenResult` with its report, plot and files). Each docstring's Returns
section lists every field written.
"""

from c2s.tl._describe import describe
from c2s.tl._embed import attention, embed
from c2s.tl._generate import generate, perturb
from c2s.tl._layout import layout_2d
from c2s.tl._predict import predict
from c2s.tl._results import EmbeddingResult, PredictionResult
from c2s.tl._screen import screen
from c2s.tl._screen_result import ScreenResult

VERBS = ("attention", "describe", "embed", "generate", "perturb", "predict", "screen")

__all__ = [
    "EmbeddingResult",
    "PredictionResult",
    "ScreenResult",
    "attention",
    "describe",
    "embed",
    "generate",
    "layout_2d",
    "perturb",
    "predict",
    "screen",
]
