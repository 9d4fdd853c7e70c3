"""ONNX decoder models: architecture numbers derived from small graphs built with onnx.helper."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from inference_serving.errors import InputError
from inference_serving.inputs.model import load_model
from inference_serving.inputs.onnx_export import build_decoder_onnx

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = load_model(str(DATA / "tiny_model.json"))  # 2 layers, hidden 64, 4 heads / 2 KV heads of 16, MLP 128, vocab 100
OPT = dataclasses.replace(TINY, num_kv_heads=4, gated_mlp=False, has_bias=True, learned_positions=True,
                          tie_word_embeddings=True, max_position_embeddings=512, position_offset=2)


def save(tmp_path: Path, model: onnx.ModelProto, name: str = "model.onnx") -> str:
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def architecture(config) -> tuple:
    fields = ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "intermediate_size", "vocab_size",
              "gated_mlp", "has_bias", "learned_positions", "tie_word_embeddings")
    return tuple(getattr(config, f) for f in fields)


@pytest.mark.parametrize("naming, reshape", [("hf", "initializer"), ("nodes", "concat"), ("none", "initializer"),
                                             ("none", "concat")])
def test_llama_style_graphs(tmp_path, naming, reshape):
    path = save(tmp_path, build_decoder_onnx(TINY, naming=naming, reshape=reshape))
    config = load_model(path)
    assert architecture(config) == architecture(TINY)
    assert config.name == path and config.max_position_embeddings == 4096  # no metadata: the default
    assert config.total_parameters() == TINY.total_parameters()


def test_opt_style_graph_with_biases_learned_positions_and_tied_head(tmp_path):
    path = save(tmp_path, build_decoder_onnx(OPT, naming="hf", metadata={"model_type": "opt"}))
    config = load_model(path)
    assert architecture(config) == architecture(OPT)
    assert (config.max_position_embeddings, config.position_offset) == (512, 2)  # rows 514 = 512 + 2
    assert config.total_parameters() == OPT.total_parameters()


def test_structure_only_opt_graph(tmp_path):
    config = load_model(save(tmp_path, build_decoder_onnx(OPT, naming="none")))
    assert (config.num_layers, config.intermediate_size, config.gated_mlp, config.has_bias) == (2, 128, False, True)


def test_metadata_gives_heads_when_no_reshape(tmp_path):
    meta = {"num_attention_heads": "4", "num_key_value_heads": "2", "max_position_embeddings": "2048",
            "model_type": "qwen3"}
    config = load_model(save(tmp_path, build_decoder_onnx(TINY, naming="none", reshape="none", metadata=meta)))
    assert (config.num_heads, config.num_kv_heads, config.head_dim, config.max_position_embeddings) == (4, 2, 16, 2048)
    assert config.qk_norm


def test_attention_node_attributes_give_heads(tmp_path):
    model = build_decoder_onnx(TINY, naming="hf", reshape="none")
    model.graph.node.append(helper.make_node("GroupQueryAttention", ["a", "b", "c"], ["d"], domain="com.microsoft",
                                             num_heads=4, kv_num_heads=2))
    path = tmp_path / "gqa.onnx"
    onnx.save(model, str(path))
    config = load_model(str(path))
    assert (config.num_heads, config.num_kv_heads, config.head_dim) == (4, 2, 16)


def test_not_a_decoder(tmp_path):
    weight = numpy_helper.from_array(np.zeros((8, 3, 3, 3), dtype=np.float32), "conv.weight")
    graph = helper.make_graph([helper.make_node("Conv", ["image", "conv.weight"], ["features"])], "cnn",
                              [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["n"])], [weight])
    with pytest.raises(InputError, match="no token embedding.*not a decoder LLM"):
        load_model(save(tmp_path, helper.make_model(graph), "cnn.onnx"))
    # an embedding followed by one projection: no q/k/v
    table = numpy_helper.from_array(np.zeros((100, 64), dtype=np.float32), "embed")
    proj = numpy_helper.from_array(np.zeros((64, 10), dtype=np.float32), "classifier")
    graph = helper.make_graph([helper.make_node("Gather", ["embed", "ids"], ["x"]),
                               helper.make_node("MatMul", ["x", "classifier"], ["y"])], "cls",
                              [helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n"])], [table, proj])
    with pytest.raises(InputError, match="no attention projections"):
        load_model(save(tmp_path, helper.make_model(graph), "cls.onnx"))


def test_unreadable_and_missing_files_and_unknown_heads(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not a protobuf at all\xff" * 10)
    with pytest.raises(InputError, match="junk.onnx"):
        load_model(str(junk))
    with pytest.raises(InputError, match="no such ONNX file"):
        load_model(str(tmp_path / "missing.onnx"))
    with pytest.raises(InputError, match="num_attention_heads"):
        load_model(save(tmp_path, build_decoder_onnx(TINY, naming="none", reshape="none")))
    with pytest.raises(InputError, match="do not match"):
        load_model(save(tmp_path, build_decoder_onnx(TINY, reshape="none", metadata={"num_attention_heads": "5"})))


def test_onnx_model_runs_end_to_end(tmp_path):
    out = tmp_path / "tiny.onnx"
    done = subprocess.run([sys.executable, "-m", "inference_serving", "onnx", str(DATA / "tiny_model.json"),
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "main.py", "--model_name", str(out), "--hardware", "NPU", "--npu_num", "2",
                           "--npu_mem", "1", "--req_num", "3", "--dataset", "dataset/example_10.tsv"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "requests finished:        3" in done.stdout
