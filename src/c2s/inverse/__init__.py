"""Rank -> expression: fitted inverse models and vectorized reconstruction."""

from c2s.inverse._fit import InverseFit, evaluate, fit_inverse, make_model, reconstruct
from c2s.inverse._load import load_inverse
from c2s.inverse._models import InverseModel, LinearInverse, RankMeanInverse

__all__ = [
    "InverseFit",
    "InverseModel",
    "LinearInverse",
    "RankMeanInverse",
    "evaluate",
    "fit_inverse",
    "load_inverse",
    "make_model",
    "reconstruct",
]
