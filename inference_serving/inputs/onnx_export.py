"""A decoder ONNX with zero weights written from a model config, in the shapes exporters produce
(for trying the ONNX input path without a real export; `llmservingsim onnx CONFIG OUT.onnx`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .model_config import ModelConfig


class _DecoderWriter:
    """Collects nodes and zero initializers (float16) of one decoder graph.

    naming: "hf" -- initializers named model.layers.<i>.self_attn.q_proj.weight ...; "nodes" --
    initializers onnx::MatMul_<n>, node names /model/layers.<i>/self_attn/q_proj/MatMul; "none" --
    no names that tell roles. reshape: "initializer" (a shape initializer [0, 0, heads, head_dim]),
    "concat" (a Concat of the batch/sequence dims and two Constants) or "none" (no head reshapes).
    """

    def __init__(self, config: ModelConfig, naming: str, reshape: str) -> None:
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.c, self.naming, self.reshape = config, naming, reshape
        self.nodes, self.inits, self.counter = [], [], 0
        if reshape == "concat":
            self.constant_init("zero", [0])
            self.constant_init("two", [2])

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh("t")
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attrs))
        return output

    def constant_init(self, name: str, values: list[int]) -> str:
        self.inits.append(self.numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        if self.naming != "hf":
            name = self.fresh("onnx::MatMul" if len(shape) == 2 else "onnx::Add")
        self.inits.append(self.numpy_helper.from_array(np.zeros(shape, dtype=np.float16), name))
        return name

    def linear(self, x: str, layer: int, module: str, role: str, fan_in: int, fan_out: int) -> str:
        prefix = f"model.layers.{layer}.{module}.{role}"
        node_name = f"/model/layers.{layer}/{module}/{role}/MatMul" if self.naming == "nodes" else self.fresh("MatMul")
        out = self.node("MatMul", [x, self.weight(f"{prefix}.weight", (fan_in, fan_out))], name=node_name)
        if self.c.has_bias:
            out = self.node("Add", [out, self.weight(f"{prefix}.bias", (fan_out,))])
        return out

    def norm(self, x: str, name: str) -> str:
        return self.node("Mul", [x, self.weight(f"{name}.weight", (self.c.hidden_size,))])

    def heads_view(self, x: str, heads: int) -> str:
        if self.reshape == "none":
            return x
        if self.reshape == "initializer":
            shape = self.constant_init(self.fresh("shape"), [0, 0, heads, self.c.head_dim])
        else:
            parts = [self.node("Constant", [], value=self.numpy_helper.from_array(np.array([v], dtype=np.int64)))
                     for v in (heads, self.c.head_dim)]
            dims = self.node("Slice", [self.node("Shape", [x]), "zero", "two"])
            shape = self.node("Concat", [dims, *parts], axis=0)
        return self.node("Transpose", [self.node("Reshape", [x, shape])], perm=[0, 2, 1, 3])

    def embedding(self) -> str:
        c, h = self.c, self.c.hidden_size
        x = self.node("Gather", [self.weight("model.embed_tokens.weight", (c.vocab_size, h)), "input_ids"])
        if c.learned_positions:
            rows = c.max_position_embeddings + c.position_offset
            pos = self.node("Gather", [self.weight("model.embed_positions.weight", (rows, h)), "position_ids"])
            x = self.node("Add", [x, pos])
        return x

    def attention(self, x: str, i: int) -> str:
        c, h = self.c, self.c.hidden_size
        a = self.norm(x, f"model.layers.{i}.input_layernorm")
        q = self.heads_view(self.linear(a, i, "self_attn", "q_proj", h, c.q_size), c.num_heads)
        k = self.heads_view(self.linear(a, i, "self_attn", "k_proj", h, c.kv_size), c.num_kv_heads)
        v = self.heads_view(self.linear(a, i, "self_attn", "v_proj", h, c.kv_size), c.num_kv_heads)
        probs = self.node("Softmax", [self.node("MatMul", [q, k])], axis=-1)
        context = self.node("Identity", [self.node("MatMul", [probs, v])])
        o = self.linear(context, i, "self_attn", "o_proj" if c.gated_mlp else "out_proj", c.q_size, h)
        return self.node("Add", [x, o])

    def mlp(self, x: str, i: int) -> str:
        c, h = self.c, self.c.hidden_size
        m = self.norm(x, f"model.layers.{i}.post_attention_layernorm")
        if c.gated_mlp:
            gate = self.linear(m, i, "mlp", "gate_proj", h, c.intermediate_size)
            up = self.linear(m, i, "mlp", "up_proj", h, c.intermediate_size)
            down = self.linear(self.node("Mul", [self.node("Sigmoid", [gate]), up]), i, "mlp", "down_proj",
                               c.intermediate_size, h)
        else:
            up = self.linear(m, i, "", "fc1", h, c.intermediate_size)
            down = self.linear(self.node("Relu", [up]), i, "", "fc2", c.intermediate_size, h)
        return self.node("Add", [x, down])

    def head(self, x: str) -> None:
        final = self.norm(x, "model.norm")
        if self.c.tie_word_embeddings:
            self.node("Identity", [final], "logits")
        else:
            name = "/lm_head/MatMul" if self.naming == "nodes" else "MatMul_lm_head"
            self.node("MatMul", [final, self.weight("lm_head.weight", (self.c.hidden_size, self.c.vocab_size))],
                      "logits", name=name)

    def model(self, metadata: dict[str, str]):
        from onnx import TensorProto
        helper = self.helper
        inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])]
        if self.c.learned_positions:
            inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT16, ["batch", "sequence", "vocab"])]
        graph = helper.make_graph(self.nodes, "decoder", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="llmservingsim")
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model


def build_decoder_onnx(config: ModelConfig, naming: str = "hf", metadata: dict[str, str] | None = None,
                       reshape: str = "initializer"):
    """The ONNX ModelProto of `config` (see _DecoderWriter for `naming` and `reshape`)."""
    writer = _DecoderWriter(config, naming, reshape)
    x = writer.embedding()
    for layer in range(config.num_layers):
        x = writer.mlp(writer.attention(x, layer), layer)
    writer.head(x)
    return writer.model(metadata or {})


def save_decoder_onnx(config: ModelConfig, out: Path) -> None:
    """Writes `config` as a zero-weight decoder ONNX (node-named, with its context as metadata)."""
    import onnx
    meta = {"max_position_embeddings": str(config.max_position_embeddings)}
    onnx.save(build_decoder_onnx(config, naming="nodes", metadata=meta), str(out))
