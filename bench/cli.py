"""The ``cnnbench`` command line: parses, calls, prints. Nothing below imports it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn, Optional, Sequence

from . import analysis, environment
from .errors import BadInput, BadValue, CnnbenchError
from .models import parse_batch_size, parse_input_size, resolve, select
from .table import FORMATS, Column, percent, render_csv, render_json, render_table, scaled, shape, thousands

MIB = 2**20
MACS_NOTE = ("MACs are multiply-accumulates of conv and matmul; FLOPs = 2 x MACs. "
             "torchvision's and timm's \"GFLOPS\" are GMACs.")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", default="table", help=f"output format: {', '.join(FORMATS)} (default: table)")


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise BadValue(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def cmd_list(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    rows = []
    for name in select(args.pattern):
        entry = resolve(name)
        a = analysis.analyse(name, training=False)
        rows.append({
            "model": name, "family": entry.family, "source": entry.source,
            "input_shape": entry.input_shape, "params": a.params, "macs": a.macs, "gmacs": round(a.macs / 1e9, 3),
        })
    if fmt == "json":
        print(render_json(rows))
    elif fmt == "csv":
        print(render_csv(rows))
    else:
        print(render_table(rows, [
            Column("model", "model", align="<"), Column("family", "family", align="<"),
            Column("source", "source", align="<"), Column("input_shape", "input (CxHxW)", shape),
            Column("params", "params", thousands), Column("macs", "GMACs (batch 1)", scaled(1e9, 3)),
        ]))
        print(f"\n{len(rows)} models. {MACS_NOTE}")
    return 0


def _layer_rows(a: analysis.Analysis) -> list[dict[str, Any]]:
    return [
        {
            "layer": layer.path, "type": layer.type, "output_shape": layer.output_shape,
            "params": layer.params, "macs": layer.macs, "activation_bytes": layer.activation_bytes,
            "macs_share": analysis.share(layer.macs, a.macs),
            "activation_share": analysis.share(layer.activation_bytes, a.activation_bytes),
        }
        for layer in a.layers
    ]


def cmd_inspect(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    batch = parse_batch_size(args.batch_size)
    size = parse_input_size(args.input_size) if args.input_size is not None else None
    a = analysis.analyse(args.model, batch_size=batch, input_shape=size, dtype=args.dtype)
    rows = _layer_rows(a)
    if fmt == "json":
        print(render_json({"totals": a.totals(), "layers": rows}))
        return 0
    if fmt == "csv":
        print(render_csv(rows))
        return 0
    print(render_table(rows, [
        Column("layer", "layer", align="<"), Column("type", "type", align="<"),
        Column("output_shape", "output", shape), Column("params", "params", thousands),
        Column("macs", "MMACs", scaled(1e6, 1)), Column("macs_share", "MACs %", percent),
        Column("activation_bytes", "act (MiB)", scaled(MIB, 2)), Column("activation_share", "act %", percent),
    ], footer={"layer": "total", "params": a.params, "macs": a.macs, "activation_bytes": a.activation_bytes}))
    t = a.totals()
    print()
    print(f"model             {a.model}  (input {t['input_shape']}, batch {a.batch_size}, {a.dtype}, built on {a.built_on})")
    print(f"params            {a.params:,} ({a.trainable_params:,} trainable)")
    print("param memory      " + ", ".join(f"{k} {v / MIB:,.1f} MiB" for k, v in a.param_bytes.items()))
    print(f"buffers           {a.buffer_bytes / MIB:,.2f} MiB")
    print(f"MACs              {a.macs:,} ({a.macs / 1e9:,.3f} GMACs)")
    print(f"FLOPs             {a.flops:,} ({a.flops / 1e9:,.3f} GFLOPs)")
    print(f"activations       {a.activation_bytes / MIB:,.1f} MiB written by the forward pass")
    if a.saved_bytes is not None:
        print(f"saved for grad    {a.saved_bytes / MIB:,.1f} MiB kept by autograd for backward (train mode)")
    for note in a.notes:
        print(f"note              {note}")
    print(MACS_NOTE)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    fmt = _check_format(args.format)
    info = environment.collect()
    if fmt == "json":
        print(render_json(info))
    elif fmt == "csv":
        print(render_csv([info]))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnbench", description="Benchmark and profile classic CNNs in PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="registered models with params and GMACs")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'vgg*' or 'tv.res*' (default: all)")
    _format_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("inspect", help="static analysis of one model: per-layer table and totals")
    p.add_argument("model")
    p.add_argument("--batch-size", default="1", help="batch size (default: 1)")
    p.add_argument("--input-size", help="C,H,W without the batch (default: the model's registered input)")
    p.add_argument("--dtype", default="float32", help=f"{', '.join(analysis.DTYPES)} (default: float32)")
    _format_option(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("env", help="versions, CPU, GPU and git commit")
    _format_option(p)
    p.set_defaults(func=cmd_env)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CnnbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `cnnbench list | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "BadInput"]
