"""The layer names of the trace, by role; every provider answers for these names.

embedding, input_layernorm, q_proj, k_proj, v_proj, rope, attn, o_proj, post_layernorm, gate_proj,
up_proj, act_fn, down_proj (fc1/fc2 for OPT-style MLPs), final_layernorm, lm_head.
"""
COLUMN_PARALLEL = frozenset({"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "fc1"})  # split output features
ROW_PARALLEL = frozenset({"o_proj", "down_proj", "fc2"})                                     # split input features
PROJECTIONS = COLUMN_PARALLEL | ROW_PARALLEL | {"lm_head"}
NORMS = frozenset({"input_layernorm", "post_layernorm", "final_layernorm"})
ATTENTION = frozenset({"rope", "attn"})
LAYERS = PROJECTIONS | NORMS | ATTENTION | {"embedding", "act_fn"}
# Layers whose work one tensor-parallel rank divides (norms and the embedding see every feature).
SHARDED = PROJECTIONS | ATTENTION | {"act_fn"}
