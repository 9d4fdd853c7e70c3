"""Model configs: parameter counts and KV sizes against hand derivations, and bad-config errors.

The expected counts are written out term by term below, independently of model.py, so a wrong
config number or a wrong formula in the loader both show up here.
"""
import json

import pytest

from inference_serving.errors import InputError
from inference_serving.inputs.model import available_models, load_model
from inference_serving.paths import MODEL_CONFIG_DIR


def llama_style_parameters(vocab, hidden, layers, heads, kv_heads, head_dim, inter, qk_norm=False):
    """Untied embedding + lm_head, no biases, RMSNorms (one weight vector each)."""
    attention = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    mlp = 3 * hidden * inter                      # gate, up, down
    norms = 2 * hidden                            # input and post-attention RMSNorm
    qk_norms = 2 * head_dim if qk_norm else 0     # Qwen3 q_norm, k_norm
    per_layer = attention + mlp + norms + qk_norms
    return vocab * hidden + layers * per_layer + hidden + vocab * hidden


def opt_gpt_style_parameters(vocab, hidden, layers, inter, positions):
    """Tied embeddings, learned positions, biases everywhere, LayerNorms (weight + bias)."""
    attention = 4 * (hidden * hidden + hidden)    # q, k, v, o with biases
    mlp = hidden * inter + inter + inter * hidden + hidden   # fc1, fc2 with biases
    norms = 2 * 2 * hidden
    return vocab * hidden + positions * hidden + layers * (attention + mlp + norms) + 2 * hidden


def moe_style_parameters(vocab, hidden, layers, heads, kv_heads, head_dim, experts, expert_inter, shared_inter=0,
                         dense_layers=0, dense_inter=0, qk_norm=False):
    """Llama-style attention; every layer after `dense_layers` dense ones has a router (hidden x experts),
    `experts` gated experts of `expert_inter` features and a shared MLP of `shared_inter` features."""
    attention = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    per_layer = attention + 2 * hidden + (2 * head_dim if qk_norm else 0)
    moe = hidden * experts + experts * 3 * hidden * expert_inter + 3 * hidden * shared_inter
    dense = 3 * hidden * dense_inter
    return (2 * vocab * hidden + hidden + layers * per_layer + dense_layers * dense
            + (layers - dense_layers) * moe)


EXPECTED_PARAMETERS = {
    "meta-llama/Llama-3.1-8B": llama_style_parameters(128256, 4096, 32, 32, 8, 128, 14336),
    "meta-llama/Llama-3.1-8B-Instruct": llama_style_parameters(128256, 4096, 32, 32, 8, 128, 14336),
    "meta-llama/Llama-3.1-70B": llama_style_parameters(128256, 8192, 80, 64, 8, 128, 28672),
    "meta-llama/Llama-3.1-70B-Instruct": llama_style_parameters(128256, 8192, 80, 64, 8, 128, 28672),
    "Qwen/Qwen3-8B": llama_style_parameters(151936, 4096, 36, 32, 8, 128, 12288, qk_norm=True),
    "Qwen/Qwen3-32B": llama_style_parameters(151936, 5120, 64, 64, 8, 128, 25600, qk_norm=True),
    # OPT's learned position table has max_position_embeddings + 2 rows (HF's offset of 2).
    "facebook/opt-6.7b": opt_gpt_style_parameters(50272, 4096, 32, 16384, 2048 + 2),
    "facebook/opt-13b": opt_gpt_style_parameters(50272, 5120, 40, 20480, 2048 + 2),
    "facebook/opt-30b": opt_gpt_style_parameters(50272, 7168, 48, 28672, 2048 + 2),
    "openai/gpt3-6.7b": opt_gpt_style_parameters(50257, 4096, 32, 4 * 4096, 2048),
    "openai/gpt3-175b": opt_gpt_style_parameters(50257, 12288, 96, 4 * 12288, 2048),
    "Qwen/Qwen3-30B-A3B": moe_style_parameters(151936, 2048, 48, 32, 4, 128, 128, 768, qk_norm=True),
    "mistralai/Mixtral-8x7B-v0.1": moe_style_parameters(32000, 4096, 32, 32, 8, 128, 8, 14336),
    # two shared experts of 1408 features held as one MLP of 2816; layer 0 dense with 10944 features
    "deepseek-ai/deepseek-moe-16b-base": moe_style_parameters(102400, 2048, 28, 16, 16, 128, 64, 1408, 2 * 1408,
                                                              dense_layers=1, dense_inter=10944),
}

# Published sizes (model cards / papers), to catch a wrong architecture number in both places.
PUBLISHED_BILLIONS = {
    "meta-llama/Llama-3.1-8B": 8.03, "meta-llama/Llama-3.1-70B": 70.55,
    "Qwen/Qwen3-8B": 8.19, "Qwen/Qwen3-32B": 32.76,
    "facebook/opt-6.7b": 6.66, "facebook/opt-13b": 12.85, "facebook/opt-30b": 29.97,
    "openai/gpt3-6.7b": 6.7, "openai/gpt3-175b": 175.0,
    # Qwen3-30B-A3B model card; Mistral AI's Mixtral announcement; the DeepSeekMoE paper (Dai et al., 2024)
    "Qwen/Qwen3-30B-A3B": 30.5, "mistralai/Mixtral-8x7B-v0.1": 46.7, "deepseek-ai/deepseek-moe-16b-base": 16.4,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMETERS))
def test_total_parameters_match_hand_derivation(name):
    assert load_model(name).total_parameters() == EXPECTED_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_BILLIONS))
def test_total_parameters_near_published_size(name):
    billions = load_model(name).total_parameters() / 1e9
    assert billions == pytest.approx(PUBLISHED_BILLIONS[name], rel=0.01)


def test_exact_counts_of_reference_models():
    assert load_model("meta-llama/Llama-3.1-8B").total_parameters() == 8_030_261_248
    assert load_model("meta-llama/Llama-3.1-70B").total_parameters() == 70_553_706_496
    assert load_model("facebook/opt-6.7b").total_parameters() == 6_658_473_984


def test_every_shipped_config_is_tested():
    assert set(available_models()) == set(EXPECTED_PARAMETERS)


@pytest.mark.parametrize("name, fp_bits, expected", [
    ("meta-llama/Llama-3.1-8B-Instruct", 16, 2 * 32 * 8 * 128 * 2),   # 131072: GQA, 8 KV heads
    ("meta-llama/Llama-3.1-70B", 16, 2 * 80 * 8 * 128 * 2),
    ("Qwen/Qwen3-32B", 16, 2 * 64 * 8 * 128 * 2),
    ("facebook/opt-6.7b", 16, 2 * 32 * 4096 * 2),                      # MHA: every head cached
    ("openai/gpt3-175b", 8, 2 * 96 * 12288 * 1),
])
def test_kv_bytes_per_token(name, fp_bits, expected):
    assert load_model(name).kv_bytes_per_token(fp_bits) == expected


def test_llama_8b_kv_is_131072_bytes_in_bf16():
    assert load_model("meta-llama/Llama-3.1-8B").kv_bytes_per_token(16) == 131072


def test_gqa_shapes_shrink_only_k_and_v():
    model = load_model("meta-llama/Llama-3.1-70B")
    shapes = model.linear_shapes()
    assert (model.num_heads, model.num_kv_heads) == (64, 8)
    assert shapes["q_proj"] == (8192, 8192)
    assert shapes["k_proj"] == shapes["v_proj"] == (8192, 1024)
    assert shapes["o_proj"] == (8192, 8192)


def test_qwen3_32b_attention_width_differs_from_hidden():
    shapes = load_model("Qwen/Qwen3-32B").linear_shapes()
    assert shapes["q_proj"] == (5120, 64 * 128)
    assert shapes["o_proj"] == (64 * 128, 5120)


def test_family_features_derived_from_model_type():
    qwen, opt, gpt3 = (load_model(n) for n in ("Qwen/Qwen3-8B", "facebook/opt-13b", "openai/gpt3-6.7b"))
    assert qwen.qk_norm and qwen.gated_mlp and not qwen.has_bias
    assert opt.position_offset == 2 and opt.learned_positions and opt.has_bias and opt.tie_word_embeddings
    assert gpt3.position_offset == 0 and not gpt3.gated_mlp and gpt3.mlp_layers() == ["fc1", "act_fn", "fc2"]


def test_weight_bytes_follow_fp_bits():
    model = load_model("meta-llama/Llama-3.1-8B")
    assert model.total_parameters() == 8_030_261_248


def load_model_file(name):
    return (MODEL_CONFIG_DIR / f"{name}.json").read_text()


def write_config(tmp_path, **overrides):
    """Llama-3.1-8B's config with fields replaced; a None value removes the field."""
    cfg = json.loads(load_model_file("meta-llama/Llama-3.1-8B"))
    cfg.update(overrides)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    return path


def test_missing_field_names_file_and_field(tmp_path):
    path = write_config(tmp_path, num_hidden_layers=None)
    with pytest.raises(InputError, match=r"bad\.json: missing 'num_hidden_layers'"):
        load_model(str(path))


def test_non_dividing_kv_heads_rejected(tmp_path):
    path = write_config(tmp_path, num_key_value_heads=5)
    with pytest.raises(InputError, match=r"bad\.json: num_key_value_heads 5 must divide num_attention_heads 32"):
        load_model(str(path))


@pytest.mark.parametrize("field, value", [("hidden_size", -4096), ("vocab_size", "128256"),
                                          ("num_attention_heads", True), ("head_dim", 0)])
def test_non_positive_integer_field_rejected(tmp_path, field, value):
    path = write_config(tmp_path, **{field: value})
    with pytest.raises(InputError, match=rf"bad\.json: '{field}' must be a positive integer"):
        load_model(str(path))


def test_unknown_name_lists_known_models():
    with pytest.raises(InputError, match=r"unknown model 'nope/Model-1B'.*meta-llama/Llama-3.1-8B"):
        load_model("nope/Model-1B")


def test_invalid_json_names_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: not a readable JSON model config"):
        load_model(str(path))


def test_unsupported_embedding_projection_rejected(tmp_path):
    cfg = json.loads(load_model_file("facebook/opt-6.7b"))
    cfg["word_embed_proj_dim"] = 512
    path = tmp_path / "opt-350m.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"opt-350m\.json: word_embed_proj_dim 512 differs from hidden_size"):
        load_model(str(path))


def test_opt_without_tie_field_defaults_to_tied(tmp_path):
    cfg = json.loads(load_model_file("facebook/opt-6.7b"))
    del cfg["tie_word_embeddings"]
    path = tmp_path / "opt.json"
    path.write_text(json.dumps(cfg))
    assert load_model(str(path)).lm_head_parameters() == 0
