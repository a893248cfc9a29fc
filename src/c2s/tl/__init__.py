"""AnnData verbs (scanpy style) running a C2S model: predict, embed, attention, generate,
perturb, describe, screen.

One contract for all of them: ``data`` is an AnnData (``layer``, ``use_raw`` and
``var_names`` choose its expression) or a c2s dataset (``split`` picks one split);
``hidden_layer`` names a layer of the model; everything after the data and the model is
keyword-only. ``predict`` and ``embed`` annotate cells: with ``inplace=True`` (the default)
they write into the AnnData and return None, with ``inplace=False`` they return the results
and write nothing. The other verbs return new objects and never write into ``data``. Each
docstring's Returns section lists every field written.
"""

from c2s.tl._describe import describe
from c2s.tl._embed import attention, embed
from c2s.tl._generate import generate, perturb
from c2s.tl._predict import predict
from c2s.tl._screen import screen

__all__ = ["attention", "describe", "embed", "generate", "perturb", "predict", "screen"]
