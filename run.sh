#!/usr/bin/env bash
# Example sweeps; each run writes a per-request CSV to output/.
#   bash run.sh            all three sweeps
#   bash run.sh tp|mem|rate one of them
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python
MODEL=meta-llama/Llama-3.1-8B-Instruct
COMMON=(--model_name "$MODEL" --hardware H100 --remote_bw 64 --fp 16 --block_size 16 --req_num 100)
mkdir -p output

sweep_tp() {   # tensor-parallel degree on 1..8 H100s
    for tp in 1 2 4 8; do
        $PY main.py "${COMMON[@]}" --npu_num "$tp" --npu_group 1 \
            --dataset dataset/sharegpt_like_100.tsv --output "output/tp${tp}.csv" | tail -12
    done
}

sweep_mem() {  # device memory per GPU: less room for KV blocks, more evictions to host memory
    for mem in 17 20 40 80; do
        $PY main.py "${COMMON[@]}" --npu_num 1 --npu_mem "$mem" \
            --dataset dataset/sharegpt_like_100.tsv --output "output/mem${mem}.csv" | tail -12
    done
}

sweep_rate() { # request rate: traces generated on the fly with the workload generator
    for rate in 2 5 10 20; do
        $PY -m inference_serving.workload --num 100 --rate "$rate" --seed 0 \
            --output "output/rate${rate}.tsv" --force
        $PY main.py "${COMMON[@]}" --npu_num 1 \
            --dataset "output/rate${rate}.tsv" --output "output/rate${rate}.csv" | tail -12
    done
}

case "${1:-all}" in
    tp) sweep_tp ;;
    mem) sweep_mem ;;
    rate) sweep_rate ;;
    all) sweep_tp; sweep_mem; sweep_rate ;;
    *) echo "usage: bash run.sh [tp|mem|rate|all]" >&2; exit 2 ;;
esac
