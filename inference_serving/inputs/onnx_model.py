"""ONNX decoder models: `--model_name path/to/model.onnx` (the paper takes ONNX input).

The architecture numbers are read from the graph; weights are never loaded (external data stays
on disk, only initializer shapes are read). What is recognised (README "ONNX models"):

- Token embedding: a Gather from a 2-D initializer [vocab, hidden] (the one indexed by `input_ids`,
  else one not named like positions, else the largest); another such table of the same width is a
  learned position embedding (OPT/GPT style).
- Projections: MatMul with a 2-D initializer [in, out] as second input, or Gemm (transB honoured);
  a bias is a Gemm's third input or an Add of a 1-D initializer right after the MatMul.
- Roles by name: the weight's or the node's name contains `layers.<i>` (or `layers/<i>`,
  `layers_<i>`) and one of q_proj, k_proj, v_proj, o_proj (out_proj), gate_proj, up_proj,
  down_proj, fc1, fc2 -- as Hugging Face exports name initializers (`model.layers.0.self_attn.q_proj.weight`)
  or nodes (`/model/layers.0/self_attn/q_proj/MatMul`). Without such names, roles come from the
  structure: three projections reading the same tensor are q, k, v of one layer (k and v have
  equal shapes), two reading the same tensor are gate and up, a single one from hidden to a wider
  width is fc1. The LM head is the projection to the vocabulary outside the layers (none: tied).
- Heads, KV heads, head size: model metadata (`num_attention_heads`, `num_key_value_heads`,
  `head_dim`), else `num_heads`/`kv_num_heads` attributes of attention nodes (onnxruntime's
  Attention, MultiHeadAttention, GroupQueryAttention), else the constant target shape
  [.., .., heads, head_dim] of the Reshape that follows the q and k projections (an initializer, a
  Constant, or a Concat whose last two inputs are constants; -1 for the heads is allowed).
- Context length: metadata `max_position_embeddings`, else the rows of a learned position table,
  else DEFAULT_CONTEXT. Other metadata keys: `model_type` (qwen3: per-head q/k norms; opt: a
  position table 2 rows longer than the context).

Not supported (a clear error): fused QKV projections, quantised MatMulNBits weights, encoder or
vision graphs. `llmservingsim onnx CONFIG OUT.onnx` writes a decoder ONNX with zero weights from a
model config, for trying the path out (onnx_export.py).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .model_config import ModelConfig

DEFAULT_CONTEXT = 4096
ROLES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "fc1", "fc2")
_ROLE_ALIASES = {"out_proj": "o_proj"}
_NAMED = re.compile(r"layers[._/](\d+)[._/](?:.*[._/])?(q_proj|k_proj|v_proj|o_proj|out_proj|gate_proj|up_proj|"
                    r"down_proj|fc1|fc2)(?:[._/]|$)")
_PASS_THROUGH = {"Add", "Cast", "Identity", "Mul"}


@dataclass
class Linear:
    weight: str
    node_name: str
    fan_in: int
    fan_out: int
    input: str
    output: str
    bias: bool = False
    layer: int | None = None
    role: str | None = None


class _Graph:
    def __init__(self, path: Path):
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise InputError(f"{path}: reading ONNX models needs the 'onnx' package (pip install onnx)") from None
        self.path = path
        self._numpy_helper = numpy_helper
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as err:  # protobuf decode errors have several types
            raise InputError(f"{path}: not a readable ONNX model ({str(err).splitlines()[0] if str(err) else err})") from None
        self.graph = model.graph
        self.metadata = {p.key: p.value for p in model.metadata_props}
        self.inits = {t.name: t for t in self.graph.initializer}
        self.constants = {}
        for node in self.graph.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = attr.t
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name].append(node)

    def dims(self, name: str) -> tuple[int, ...] | None:
        tensor = self.inits.get(name)
        return tuple(tensor.dims) if tensor is not None else None

    def constant_values(self, name: str) -> list[int] | None:
        """Integer values of a small constant tensor (initializer or Constant node), or None."""
        tensor = self.inits.get(name) or self.constants.get(name)
        if tensor is not None:
            try:
                return [int(v) for v in self._numpy_helper.to_array(tensor).reshape(-1)]
            except Exception:
                return None
        node = self.producer.get(name)
        if node is not None and node.op_type in ("Unsqueeze", "Identity", "Cast"):
            return self.constant_values(node.input[0])
        return None


def _attr(node, name: str):
    for attr in node.attribute:
        if attr.name == name:
            return attr.i if attr.type == attr.INT else None
    return None


def _linears(g: _Graph) -> list[Linear]:
    found = []
    for node in g.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        dims = g.dims(node.input[1])
        if dims is None or len(dims) != 2:
            continue
        fan_in, fan_out = dims
        if node.op_type == "Gemm" and _attr(node, "transB"):
            fan_in, fan_out = fan_out, fan_in
        bias = node.op_type == "Gemm" and len(node.input) > 2 and bool(node.input[2])
        output = node.output[0]
        for consumer in g.consumers.get(output, []):
            other = [i for i in consumer.input if i != output]
            if consumer.op_type == "Add" and len(other) == 1 and g.dims(other[0]) in ((fan_out,), (1, fan_out)):
                bias, output = True, consumer.output[0]
        found.append(Linear(node.input[1], node.name, fan_in, fan_out, node.input[0], output, bias))
    return found


def _assign_named(linears: list[Linear]) -> bool:
    """Roles from HF-style weight or node names; True when every layer's projections were named."""
    for lin in linears:
        for text in (lin.weight, lin.node_name):
            match = _NAMED.search(text)
            if match:
                lin.layer, lin.role = int(match.group(1)), _ROLE_ALIASES.get(match.group(2), match.group(2))
                break
    return any(lin.role == "q_proj" for lin in linears)


def _assign_structural(linears: list[Linear], hidden: int) -> None:
    """Roles from which projections share an input tensor, in graph order (module docstring)."""
    groups: dict[str, list[Linear]] = defaultdict(list)
    for lin in linears:
        groups[lin.input].append(lin)
    layer, roles = -1, set()
    for lin in linears:
        group = groups[lin.input]
        if lin is not group[0]:
            continue
        if len(group) == 3:
            layer, roles = layer + 1, {"q_proj"}
            shapes = [g.fan_out for g in group]
            q_index = next((i for i in range(3) if shapes.count(shapes[i]) == 1), 0)
            kv = [g for i, g in enumerate(group) if i != q_index]
            for member, role in zip([group[q_index], *kv], ("q_proj", "k_proj", "v_proj")):
                member.layer, member.role = layer, role
        elif layer < 0:
            continue
        elif len(group) == 2:
            for member, role in zip(group, ("gate_proj", "up_proj")):
                member.layer, member.role = layer, role
            roles.add("gate_proj")
        elif len(group) == 1 and lin.fan_in == hidden and lin.fan_out != hidden and roles == {"q_proj"}:
            lin.layer, lin.role = layer, "fc1"  # the LM head after a layer's MLP is not taken for fc1
            roles.add("fc1")


def _reshape_heads(g: _Graph, lin: Linear) -> tuple[int, int] | None:
    """(heads, head_dim) from the constant target shape of the Reshape after a projection."""
    frontier, seen = [lin.output], set()
    for _ in range(4):
        following = []
        for tensor in frontier:
            for node in g.consumers.get(tensor, []):
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if node.op_type == "Reshape" and node.input[0] == tensor:
                    shape = _shape_values(g, node.input[1])
                    if shape and len(shape) >= 3 and shape[-1] > 0:
                        heads = shape[-2] if shape[-2] > 0 else lin.fan_out // shape[-1]
                        if heads * shape[-1] == lin.fan_out:
                            return heads, shape[-1]
                elif node.op_type in _PASS_THROUGH:
                    following.extend(node.output)
        frontier = following
    return None


def _shape_values(g: _Graph, name: str) -> list[int] | None:
    values = g.constant_values(name)
    if values is not None:
        return values
    node = g.producer.get(name)
    if node is not None and node.op_type == "Concat" and len(node.input) >= 2:
        tail = [g.constant_values(i) for i in node.input[-2:]]
        if all(t is not None and len(t) == 1 for t in tail):
            return [0] * (len(node.input) - 2) + [tail[0][0], tail[1][0]]
    return None


def _metadata_int(g: _Graph, key: str) -> int | None:
    value = g.metadata.get(key)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise InputError(f"{g.path}: metadata '{key}' must be a positive integer, got {value!r}")
    return number


def _heads(g: _Graph, q: Linear, k: Linear) -> tuple[int, int, int]:
    """(heads, KV heads, head size), from metadata, attention-node attributes or Reshape shapes."""
    heads, kv_heads, head_dim = (_metadata_int(g, "num_attention_heads"), _metadata_int(g, "num_key_value_heads"),
                                 _metadata_int(g, "head_dim"))
    if heads is None:
        for node in g.graph.node:
            if _attr(node, "num_heads"):
                heads, kv_heads = _attr(node, "num_heads"), kv_heads or _attr(node, "kv_num_heads")
                break
    if heads is None:
        q_shape = _reshape_heads(g, q)
        if q_shape is not None:
            heads, head_dim = q_shape[0], head_dim or q_shape[1]
    if heads is None:
        raise InputError(f"{g.path}: cannot tell the number of attention heads; add model metadata "
                         f"'num_attention_heads' (see README 'ONNX models')")
    head_dim = head_dim or q.fan_out // heads
    if kv_heads is None:
        k_shape = _reshape_heads(g, k)
        kv_heads = k_shape[0] if k_shape is not None else k.fan_out // head_dim
    if heads * head_dim != q.fan_out or kv_heads * head_dim != k.fan_out or heads % kv_heads:
        raise InputError(f"{g.path}: {heads} heads and {kv_heads} KV heads of {head_dim} do not match the "
                         f"q and k projections ({q.fan_out} and {k.fan_out} outputs)")
    return heads, kv_heads, head_dim


def load_onnx_model(path: Path, name: str) -> ModelConfig:
    """The ModelConfig of an ONNX decoder LLM (module docstring: what is recognised)."""
    if not path.is_file():
        raise InputError(f"--model_name {name}: no such ONNX file")
    g = _Graph(path)
    tables = []
    for node in g.graph.node:
        if node.op_type == "Gather" and node.input and (dims := g.dims(node.input[0])) is not None and len(dims) == 2:
            tables.append((node.input[0], dims, node.input[1] if len(node.input) > 1 else ""))
    if not tables:
        raise InputError(f"{path}: no token embedding (a Gather from a 2-D initializer); not a decoder LLM")
    # the token table: indexed by input_ids, else not named like positions, else the largest
    embed_name, (vocab, hidden), _ = max(tables, key=lambda t: ("input_ids" in t[2], "pos" not in t[0].lower(),
                                                                  t[1][0]))
    positions = [dims for n, dims, _ in tables if n != embed_name and dims[1] == hidden]
    linears = _linears(g)
    if not _assign_named(linears):
        _assign_structural(linears, hidden)
    layer0 = {lin.role: lin for lin in linears if lin.layer == 0}
    missing = [r for r in ("q_proj", "k_proj", "v_proj") if r not in layer0]
    if missing:
        raise InputError(f"{path}: no attention projections (q/k/v MatMuls reading one tensor, or weights named "
                         f"like model.layers.0.self_attn.q_proj.weight); not a decoder LLM")
    gated = "gate_proj" in layer0 or "up_proj" in layer0
    mlp_in = layer0.get("up_proj") or layer0.get("gate_proj") or layer0.get("fc1")
    if mlp_in is None:
        raise InputError(f"{path}: no MLP projections (gate/up or fc1) in layer 0; not a decoder LLM")
    layers = 1 + max(lin.layer for lin in linears if lin.layer is not None)
    heads, kv_heads, head_dim = _heads(g, layer0["q_proj"], layer0["k_proj"])
    in_layers = {id(lin) for lin in linears if lin.layer is not None}
    heads_out = [lin for lin in linears if id(lin) not in in_layers and lin.fan_in == hidden and lin.fan_out >= vocab]
    lm_head = heads_out[-1] if heads_out else None
    tied = lm_head is None or lm_head.weight == embed_name
    model_type = g.metadata.get("model_type", "")
    offset = 2 if model_type == "opt" and positions else 0
    context = _metadata_int(g, "max_position_embeddings") or (positions[0][0] - offset if positions else DEFAULT_CONTEXT)
    return ModelConfig(
        name=name, num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=head_dim, intermediate_size=mlp_in.fan_out,
        vocab_size=lm_head.fan_out if lm_head is not None else vocab, max_position_embeddings=context,
        gated_mlp=gated, has_bias=any(lin.bias for r, lin in layer0.items() if r not in ("q_proj", "k_proj", "v_proj")),
        learned_positions=bool(positions), tie_word_embeddings=tied,
        qk_norm=model_type == "qwen3" or any(re.search(r"layers[._/]0[._/].*q_norm", n) for n in g.inits),
        position_offset=offset)
