"""`llmservingsim onnx MODEL OUT.onnx`: a zero-weight decoder ONNX of a model config, to try the ONNX path."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from ..inputs.model import load_model
from ..inputs.moe_config import dense_only
from ..inputs.onnx_export import save_decoder_onnx
from ..report.output_paths import check_file
from .command import Command

PROTOBUF_LIMIT = 2**31  # bytes of one serialized ONNX model


@click.command("onnx", cls=Command)
@click.argument("model_name")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing file.")
def onnx(model_name: str, out: Path, force: bool) -> None:
    """Write MODEL_NAME (a model under model_configs/ or a config .json) as a decoder ONNX with zero weights."""
    config = load_model(model_name)
    dense_only(config, "onnx")
    check_file("OUT", out, lambda path: False, force)
    weight_bytes = config.total_parameters() * 2  # float16 initializers
    if weight_bytes >= PROTOBUF_LIMIT:
        raise InputError(f"MODEL_NAME {model_name}: {weight_bytes / 2**30:.1f} GiB of float16 weights; an ONNX file "
                         f"holds less than 2 GiB (protobuf's limit), so choose a smaller model config")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_decoder_onnx(config, out)
    except OSError as err:
        raise InputError(f"OUT {out}: cannot write ({err.strerror or err})") from None
    click.echo(f"wrote {out}: {config.num_layers} layers, hidden {config.hidden_size}, {config.num_heads} heads")
