"""The precision table: what each precision of a case means, in one place (no torch import).

    precision   weights    compute    autocast   output tolerance, inference / training
    fp32        float32    float32    no         1e-3 / 1e-3
    amp-bf16    float32    bfloat16   yes        5e-2 / 0.3
    amp-fp16    float32    float16    yes        1e-2 / 0.08
    bf16        bfloat16   bfloat16   no         8e-2 / 0.3
    fp16        float16    float16    no         2e-2 / 0.08

Weights are held in ``weights`` (a cast model for bf16/fp16; AMP casts per
operator); the output's dtype must be ``compute``. Dtype names are torch's
(``getattr(torch, name)``); ``DTYPE_BYTES`` gives their sizes for the static
analysis and the report without importing torch.

The tolerance is the largest absolute output error allowed against fp32
contiguous eager on the same weights, buffers and input, relative to the
reference's largest magnitude (``bench.prepare.validity``). Training compares
train-mode outputs, and BatchNorm on batch statistics takes away the part of
the output every image of the batch shares (at random initialisation, most of
it), leaving the part that rounding moves: measured on this project's 2-core
CPU at batch 2 and 4, the largest training errors were 1.5e-1 (bf16,
tv.mobilenet_v2), 1.3e-1 (amp-bf16, vgg19_bn), 3.2e-2 (amp-fp16 and fp16,
tv.resnet50) and 5.4e-5 (fp32 channels_last, vgg19_bn), against 3.9e-3, 3.9e-3,
5.7e-4 and 5e-7 in inference. The training tolerances leave twice the worst of
those; a wrong result (a mis-laid tensor, a wrong kernel) is off by the order
of the output itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    weights: str  # dtype the model's parameters are held in
    compute: str  # dtype of the output
    autocast: bool
    tolerance: float  # relative output error allowed against fp32 contiguous eager, in inference
    train_tolerance: float  # the same for the training step's forward


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", "float32", "float32", False, 1e-3, 1e-3),
    Precision("amp-bf16", "float32", "bfloat16", True, 5e-2, 0.3),
    Precision("amp-fp16", "float32", "float16", True, 1e-2, 0.08),
    Precision("bf16", "bfloat16", "bfloat16", False, 8e-2, 0.3),
    Precision("fp16", "float16", "float16", False, 2e-2, 0.08),
)}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def weight_dtype(precision: str) -> str:
    """The dtype the model's weights are held in: cast for bf16/fp16, float32 otherwise (AMP casts per op)."""
    return PRECISIONS[precision].weights


def tolerance(precision: str, mode: str) -> float:
    """The relative output error a variant may show in ``mode`` ("infer" or "train")."""
    row = PRECISIONS[precision]
    return row.train_tolerance if mode == "train" else row.tolerance


def compute_dtype(precision: str) -> str:
    """The dtype the case computes and outputs in."""
    return PRECISIONS[precision].compute
