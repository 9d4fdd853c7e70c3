#!/usr/bin/env bash
# Example sweeps; each run writes a per-request CSV to output/.
#   bash run.sh            the tp, mem, rate and npu sweeps
#   bash run.sh tp|mem|rate|npu|onnx|profile|moe|sessions   one of them (profile needs PyTorch)
#   bash run.sh cluster|pd|moe_dp|cluster_sessions   a cluster (README "Clusters")
#   bash run.sh precision|spec|tiers|energy|pim a what-if (README "What-ifs")
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python
MODEL=meta-llama/Llama-3.1-8B-Instruct
# the shared flags live in an experiment file (configs/llama8b_h100.yaml); command-line flags override it
COMMON=(--config configs/llama8b_h100.yaml)
mkdir -p output

label() {      # the heading of one output block
    printf '\n== %s ==\n' "$*"
}

sweep_tp() {   # tensor-parallel degree on 1..8 H100s
    for tp in 1 2 4 8; do
        label "tp: Llama-3.1-8B on $tp x H100, tensor-parallel $tp"
        $PY main.py "${COMMON[@]}" --npu_num "$tp" --npu_group 1 --output "output/tp${tp}.csv" | tail -12
    done
}

sweep_mem() {  # device memory per GPU: less room for KV blocks, more evictions to host memory
    for mem in 17 20 40 80; do
        label "mem: Llama-3.1-8B on 1 x H100 with $mem GiB"
        $PY main.py "${COMMON[@]}" --npu_num 1 --npu_mem "$mem" --output "output/mem${mem}.csv" | tail -12
    done
}

sweep_rate() { # request rate: traces generated on the fly with the workload generator
    for rate in 2 5 10 20; do
        label "rate: Llama-3.1-8B on 1 x H100, $rate requests/s"
        $PY -m inference_serving workload --num 100 --rate "$rate" --seed 0 \
            --output "output/rate${rate}.tsv" --force
        $PY main.py "${COMMON[@]}" --npu_num 1 \
            --dataset "output/rate${rate}.tsv" --output "output/rate${rate}.csv" | tail -12
    done
}

sweep_npu() {  # the paper's NPU (hardware/NPU.yaml, analytical model) on 1..8 NPUs
    for n in 1 2 4 8; do
        label "npu: Llama-3.1-8B on $n x the paper's NPU"
        $PY main.py --model_name "$MODEL" --hardware NPU --npu_num "$n" --remote_bw 64 --block_size 16 \
            --req_num 50 --dataset dataset/sharegpt_like_100.tsv --output "output/npu${n}.csv" | tail -12
    done
}

example_onnx() { # an ONNX decoder (the tiny test model with zero weights, written on the fly) on 2 NPUs
    label "onnx: the tiny test model as an ONNX decoder on 2 NPUs"
    $PY -m inference_serving onnx tests/data/tiny_model.json output/tiny_model.onnx --force
    $PY main.py --model_name output/tiny_model.onnx --hardware NPU --npu_num 2 --npu_mem 1 --remote_bw 64 \
        --block_size 16 --req_num 20 --dataset dataset/sharegpt_like_100.tsv --output output/onnx_tiny.csv | tail -12
}

example_profile() { # profile a model with PyTorch (GPU if present, else CPU), then simulate with the CSV
    if ! $PY -c "import torch" 2>/dev/null; then echo "profile: PyTorch not installed, skipped" >&2; return 0; fi
    local model=tests/data/tiny_model.json device=cpu
    if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then device=cuda; fi
    label "profile: the tiny test model profiled on $device, then simulated"
    $PY -m inference_serving profile --model "$model" --device "$device" --tp 1 --hardware PROFILED \
        --output output/profiled.csv
    $PY main.py --model_name "$model" --hardware PROFILED --perf-model output/profiled.csv --npu_num 1 \
        --npu_mem 1 --req_num 20 --dataset dataset/sharegpt_like_100.tsv --output output/profiled_run.csv | tail -12
}

example_moe() { # Qwen3-30B-A3B on 2 H100s: experts split over the TP group (TP2), whole experts per GPU (EP2),
                # and EP2 with Zipf-skewed routing (README "Mixture of experts")
    local name flags
    for name in tp2 ep2 ep2_zipf1; do
        case $name in
            tp2) flags=() ;;
            ep2) flags=(--enable-expert-parallel) ;;
            ep2_zipf1) flags=(--enable-expert-parallel --expert-load zipf:1) ;;
        esac
        $PY main.py --model_name Qwen/Qwen3-30B-A3B --hardware H100 --npu_num 2 --scheduler vllm \
            --dataset dataset/sharegpt_like_100.tsv --output "output/moe_${name}.csv" "${flags[@]}" | tail -12
    done
}

example_sessions() { # 50 four-turn sessions on one H100 (vLLM), prefix caching on and off (--no-prefix-caching)
    $PY -m inference_serving workload --num 50 --rate 1 --turns 4 --think 5 --max-tokens 8192 --seed 0 --force \
        --output output/sessions.jsonl
    local name flags
    for name in caching no_caching; do
        flags=()
        [ "$name" = no_caching ] && flags=(--no-prefix-caching)
        $PY main.py --model_name "$MODEL" --hardware H100 --npu_num 1 --scheduler vllm --req_num 200 --verbose \
            --dataset output/sessions.jsonl --output "output/sessions_${name}.csv" "${flags[@]}" | grep -v '^\[' | tail -13
    done
}

summary() {    # a run's summary and its per-instance part, without the per-step log lines
    grep -v '^\[' | sed -n '/Simulation summary/,$p'
}

example_cluster() { # two Llama-3.1-8B replicas behind a router: round-robin against least outstanding requests
    local router
    for router in round-robin least-outstanding; do
        label "cluster: 2 x (Llama-3.1-8B on 1 H100), router $router"
        $PY main.py --cluster configs/cluster/two_instances.yaml --router "$router" --req_num 200 \
            --dataset dataset/sharegpt_like_1000.tsv --output "output/cluster_${router}.csv" --force | summary
    done
}

example_pd() { # prefill/decode disaggregation, 1P:1D and 2P:1D, then both as a sweep over the ratio
    local ratio
    for ratio in 1p1d 2p1d; do
        label "pd: Llama-3.1-8B, disaggregated $ratio"
        $PY main.py --cluster "configs/cluster/pd_${ratio}.yaml" --req_num 200 \
            --dataset dataset/sharegpt_like_1000.tsv --output "output/pd_${ratio}.csv" --force | summary
    done
    label "pd: the ratio sweep (configs/sweep_pd_ratio.yaml)"
    $PY -m inference_serving sweep configs/sweep_pd_ratio.yaml --output output/sweep_pd_ratio.csv --force
}

example_moe_dp() { # Qwen3-30B-A3B with data-parallel attention (DP2) and expert parallelism (EP2) on 2 H100s
    label "moe_dp: Qwen3-30B-A3B, DP2 x EP2 on 2 H100s"
    $PY main.py --cluster configs/cluster/moe_dp2_ep2.yaml --req_num 100 --dataset dataset/sharegpt_like_100.tsv \
        --output output/moe_dp2_ep2.csv --force | summary
}

example_cluster_sessions() { # multi-turn sessions on 2 replicas, with and without session affinity
    $PY -m inference_serving workload --num 50 --rate 2 --turns 4 --think 5 --max-tokens 8192 --seed 0 --force \
        --output output/sessions.jsonl
    local router
    for router in round-robin session-affinity; do
        label "cluster_sessions: 50 four-turn sessions on 2 H100 replicas, router $router"
        $PY main.py --cluster configs/cluster/sessions_2x.yaml --router "$router" --req_num 200 --verbose \
            --dataset output/sessions.jsonl --output "output/cluster_sessions_${router}.csv" --force \
            | grep -v '^\[' | sed -n '/Simulation summary/,$p'
    done
}

whatif_precision() { # FP8 KV cache and FP8 weights on one H100 with 24 GiB: more KV blocks, FP8 tables
    for formats in "--kv-dtype bf16" "--kv-dtype fp8" "--kv-dtype fp8 --weight-dtype fp8"; do
        # shellcheck disable=SC2086
        $PY main.py "${COMMON[@]}" --npu_num 1 --npu_mem 24 $formats --output "output/precision_${formats//[- ]/}.csv" | tail -12
    done
}

whatif_spec() { # speculative decoding: n-gram drafts on Llama-3.1-8B, an 8B draft model for 70B on 4 H100s
    $PY main.py "${COMMON[@]}" --npu_num 1 --scheduler vllm --output output/spec_off.csv | tail -12
    $PY main.py "${COMMON[@]}" --npu_num 1 --scheduler vllm --spec-tokens 3 --spec-acceptance 0.7 \
        --output output/spec_ngram.csv | tail -13
    $PY main.py "${COMMON[@]}" --model_name meta-llama/Llama-3.1-70B-Instruct --npu_num 4 --scheduler vllm \
        --spec-tokens 4 --spec-acceptance 0.9,0.8,0.7,0.6 --spec-draft "$MODEL" --output output/spec_draft.csv | tail -13
}

shared_prefix_trace() { # 200 requests at 10/s, each one of 16 system prompts (2048 tokens) + 64 own tokens
    $PY - "$1" <<'EOF'
import json, random, sys
rng = random.Random(0)
prompts = [[rng.randrange(128000) for _ in range(2048)] for _ in range(16)]
arrival = 0
with open(sys.argv[1], "w") as out:
    for _ in range(200):
        arrival += int(rng.expovariate(10.0) * 1e9)
        ids = prompts[rng.randrange(16)] + [rng.randrange(128000) for _ in range(64)]
        out.write(json.dumps({"input_toks": len(ids), "output_toks": 64, "arrival_time_ns": arrival,
                              "token_ids": ids}) + "\n")
EOF
}

whatif_tiers() { # the prefix cache over memory tiers: 16 shared prompts do not fit a 20 GiB H100's KV cache
    shared_prefix_trace output/shared_prefix.jsonl
    for tiers in none cpu:64 cpu:64:63 cxl:256 ssd:512 cpu:2,ssd:512; do
        local flags=()
        [[ $tiers == none ]] || flags=(--kv-tiers "$tiers")
        $PY main.py "${COMMON[@]}" --npu_num 1 --npu_mem 20 --scheduler vllm --dataset output/shared_prefix.jsonl \
            --req_num 200 "${flags[@]}" --output "output/tiers_${tiers//[:,]/_}.csv" | grep -E "TTFT|KV tier"
    done
}

whatif_energy() { # energy per token and power of the orca and vllm schedulers, with power.png
    for scheduler in orca vllm; do
        $PY main.py "${COMMON[@]}" --npu_num 1 --scheduler "$scheduler" --energy --plot "output/energy_$scheduler" \
            --output "output/energy_$scheduler.csv" | tail -3
    done
}

whatif_pim() { # decode attention on the HBM-PIM units of hardware/NPU-PIM.yaml, alone and interleaved
    for pim in none offload interleave; do
        local flags=()
        [[ $pim == none ]] || flags=(--pim "$pim")
        $PY main.py --model_name "$MODEL" --hardware NPU-PIM --npu_num 1 --block_size 16 --req_num 20 \
            --dataset dataset/sharegpt_like_100.tsv "${flags[@]}" --output "output/pim_$pim.csv" | tail -12
    done
}

case "${1:-all}" in
    tp) sweep_tp ;;
    mem) sweep_mem ;;
    rate) sweep_rate ;;
    npu) sweep_npu ;;
    onnx) example_onnx ;;
    profile) example_profile ;;
    moe) example_moe ;;
    sessions) example_sessions ;;
    cluster) example_cluster ;;
    pd) example_pd ;;
    moe_dp) example_moe_dp ;;
    cluster_sessions) example_cluster_sessions ;;
    precision) whatif_precision ;;
    spec) whatif_spec ;;
    tiers) whatif_tiers ;;
    energy) whatif_energy ;;
    pim) whatif_pim ;;
    all) sweep_tp; sweep_mem; sweep_rate; sweep_npu ;;
    *) echo "usage: bash run.sh [tp|mem|rate|npu|onnx|profile|moe|sessions|cluster|pd|moe_dp|cluster_sessions|precision|spec|tiers|energy|pim|all]" >&2
       exit 2 ;;
esac
