"""The layer names of the trace, by role; every provider answers for these names.

embedding, input_layernorm, q_proj, k_proj, v_proj, rope, attn, o_proj, post_layernorm, gate_proj,
up_proj, act_fn, down_proj (fc1/fc2 for OPT-style MLPs), final_layernorm, lm_head. A mixture-of-experts
layer has router (replicated on every rank, as vLLM's ReplicatedLinear gate), shared_gate_proj,
shared_up_proj, shared_act_fn, shared_down_proj (its shared experts, split like the dense MLP) and one
routed expert's expert_gate_proj, expert_up_proj, expert_act_fn, expert_down_proj (perf/experts.py).
"""
COLUMN_PARALLEL = frozenset({"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "fc1",  # split output features
                             "shared_gate_proj", "shared_up_proj", "expert_gate_proj", "expert_up_proj"})
ROW_PARALLEL = frozenset({"o_proj", "down_proj", "fc2", "shared_down_proj", "expert_down_proj"})  # split input features
PROJECTIONS = COLUMN_PARALLEL | ROW_PARALLEL | {"lm_head", "router"}
NORMS = frozenset({"input_layernorm", "post_layernorm", "final_layernorm"})
ATTENTION = frozenset({"rope", "attn"})
ACTIVATIONS = frozenset({"act_fn", "shared_act_fn", "expert_act_fn"})
LAYERS = PROJECTIONS | NORMS | ATTENTION | ACTIVATIONS | {"embedding"}
# Layers whose work one tensor-parallel rank divides (norms, the embedding and the router see every feature).
SHARDED = COLUMN_PARALLEL | ROW_PARALLEL | {"lm_head"} | ATTENTION | ACTIVATIONS
