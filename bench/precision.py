"""The precision table: what each precision of a case means, in one place (no torch import).

    precision   weights    compute    autocast   output tolerance (relative, against fp32 contiguous eager)
    fp32        float32    float32    no         1e-3
    amp-bf16    float32    bfloat16   yes        5e-2
    amp-fp16    float32    float16    yes        1e-2
    bf16        bfloat16   bfloat16   no         8e-2
    fp16        float16    float16    no         2e-2

Weights are held in ``weights`` (a cast model for bf16/fp16; AMP casts per
operator); the output's dtype must be ``compute``. Dtype names are torch's
(``getattr(torch, name)``); ``DTYPE_BYTES`` gives their sizes for the static
analysis and the report without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    weights: str  # dtype the model's parameters are held in
    compute: str  # dtype of the output
    autocast: bool
    tolerance: float  # relative output error allowed against fp32 contiguous eager


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "float32", "float32", False, 1e-3),
    Precision("amp-bf16", "float32", "bfloat16", True, 5e-2),
    Precision("amp-fp16", "float32", "float16", True, 1e-2),
    Precision("bf16", "bfloat16", "bfloat16", False, 8e-2),
    Precision("fp16", "float16", "float16", False, 2e-2),
)}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def weight_dtype(precision: str) -> str:
    """The dtype the model's weights are held in: cast for bf16/fp16, float32 otherwise (AMP casts per op)."""
    return PRECISIONS[precision].weights


def compute_dtype(precision: str) -> str:
    """The dtype the case computes and outputs in."""
    return PRECISIONS[precision].compute
