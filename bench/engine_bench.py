#!/usr/bin/env python3
"""Speed benchmark of the engine (astra-sim/build/bin/astra-analytical).

Run with the repository's virtual environment (it needs mlc-chakra to write .et files):

    .venv/bin/python bench/engine_bench.py [--bin PATH] [--iterations N] [--nodes N] [--splits N]

(a) batch:    64 NPUs (8 x 8, two dimensions), 10,000 nodes per NPU: a chain of compute nodes with a
              1 MiB all-reduce every 10th node;
(b) compat:   N small iterations on 2 NPUs driven through the ASTRA-sim interactive protocol;
(c) step:     the same N iterations through `--protocol=step`.
Prints wall time and rate of each, and checks that (b) and (c) give the same finish ticks.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from chakra.schema.protobuf.et_def_pb2 import COMM_COLL_NODE, COMP_NODE, GlobalMetadata, Node
from chakra.src.third_party.utils.protolib import encodeMessage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(REPO, 'astra-sim', 'build', 'bin', 'astra-analytical')
ALL_REDUCE = 0


def compute_node(node_id, duration, deps):
    node = Node(id=node_id, name=f'comp_{node_id}', type=COMP_NODE, duration_micros=duration)
    node.data_deps.extend(deps)
    return node


def all_reduce_node(node_id, size, deps):
    node = Node(id=node_id, name=f'allreduce_{node_id}', type=COMM_COLL_NODE)
    node.data_deps.extend(deps)
    for name, value in (('comm_type', ALL_REDUCE), ('comm_size', size)):
        attr = node.attr.add()
        attr.name = name
        attr.int64_val = value
    return node


def layer_chain(num_nodes, allreduce_every, allreduce_bytes):
    """A dependency chain of compute nodes with an all-reduce every `allreduce_every` nodes."""
    nodes = []
    for i in range(num_nodes):
        deps = [i - 1] if i else []
        if allreduce_every and i % allreduce_every == allreduce_every - 1:
            nodes.append(all_reduce_node(i, allreduce_bytes, deps))
        else:
            nodes.append(compute_node(i, 1000 + (i % 7) * 100, deps))
    return nodes


def write_workload(prefix, num_npus, nodes):
    for npu in range(num_npus):
        with open(f'{prefix}.{npu}.et', 'wb') as f:
            encodeMessage(f, GlobalMetadata(version='0.0.4'))
            for node in nodes:
                encodeMessage(f, node)


def write_configs(folder, npus_count, splits):
    dims = len(npus_count)
    system = {
        'scheduling-policy': 'LIFO', 'endpoint-delay': 10, 'active-chunks-per-dimension': 1,
        'preferred-dataset-splits': splits, 'collective-optimization': 'localBWAware', 'local-mem-bw': 1600,
        'all-reduce-implementation': ['ring'] * dims, 'reduce-scatter-implementation': ['ring'] * dims,
        'all-gather-implementation': ['ring'] * dims, 'all-to-all-implementation': ['ring'] * dims,
    }
    with open(os.path.join(folder, 'system.json'), 'w') as f:
        json.dump(system, f)
    with open(os.path.join(folder, 'network.yml'), 'w') as f:
        f.write(f"topology: [{', '.join(['FullyConnected'] * dims)}]\n")
        f.write(f'npus_count: {list(npus_count)}\n')
        f.write(f'bandwidth: {[256.0] * dims}\n')
        f.write(f'latency: {[100.0] * dims}\n')
    with open(os.path.join(folder, 'memory.json'), 'w') as f:
        json.dump({'memory-type': 'PER_NPU_MEMORY_EXPANSION', 'remote-mem-latency': 0, 'remote-mem-bw': 512}, f)


def base_args(binary, folder):
    return [binary, f'--system-configuration={folder}/system.json', f'--network-configuration={folder}/network.yml',
            f'--remote-memory-configuration={folder}/memory.json']


def report(name, seconds, count, unit):
    print(f'{name:<8} {seconds:8.3f} s   {count / seconds:12,.0f} {unit}/s   ({count:,} {unit})')


def bench_batch(binary, folder, nodes_per_npu, splits):
    write_configs(folder, [8, 8], splits)
    write_workload(os.path.join(folder, 'batch'), 64, layer_chain(nodes_per_npu, 10, 1 << 20))
    start = time.perf_counter()
    out = subprocess.run(base_args(binary, folder) + [f'--workload-configuration={folder}/batch', '--batch'],
                         capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    finished = [line for line in out.splitlines() if 'finished' in line]
    assert len(finished) == 64, out[-500:]
    report('batch', seconds, 64 * nodes_per_npu, 'nodes')
    print(f'         last: {finished[-1]}')


def bench_compat(binary, folder, iterations):
    """Every NPU gets the next iteration as soon as it reports the previous one."""
    proc = subprocess.Popen(base_args(binary, folder) + [f'--workload-configuration={folder}/iter'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    finish_ticks = []
    started = {0: 1, 1: 1}  # iterations started per NPU (the initial workload counts)
    last_report = None
    start = time.perf_counter()
    for line in proc.stdout:
        if 'iteration' in line and 'finished' in line:
            last_report = line
            continue
        if not line.rstrip().endswith('Waiting'):
            continue
        npu = int(last_report.split('sys[')[1].split(']')[0])
        iteration = int(last_report.split('iteration ')[1].split()[0])
        if iteration + 1 < started[npu]:
            reply = 'pass'
        elif started[npu] < iterations:
            started[npu] += 1
            if npu == 0:
                finish_ticks.append(int(last_report.split('finished, ')[1].split()[0]))
            reply = f'{folder}/iter'
        else:
            if npu == 0:
                finish_ticks.append(int(last_report.split('finished, ')[1].split()[0]))
            reply = 'exit'
        proc.stdin.write(reply + '\n')
        if reply == 'exit':
            break
    proc.stdin.close()
    proc.wait()
    seconds = time.perf_counter() - start
    report('compat', seconds, iterations, 'iterations')
    return finish_ticks


def bench_step(binary, folder, iterations):
    proc = subprocess.Popen(base_args(binary, folder) + ['--protocol=step'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout.readline().startswith('ready')
    finish_ticks = []
    start = time.perf_counter()
    for _ in range(iterations):
        # commands may be pipelined: each gets exactly one reply line, in order
        proc.stdin.write(f'load {folder}/iter all\nstep\n')
        assert proc.stdout.readline().strip() == 'ok'
        reply = proc.stdout.readline().split()
        assert reply[0] == 'done' and len(reply) == 4, reply
        finish_ticks.append(int(reply[1]))
    proc.stdin.write('exit\n')
    proc.stdin.flush()
    proc.stdout.readline()
    proc.wait()
    seconds = time.perf_counter() - start
    report('step', seconds, iterations, 'iterations')
    return finish_ticks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bin', default=DEFAULT_BIN)
    parser.add_argument('--iterations', type=int, default=10000)
    parser.add_argument('--nodes', type=int, default=10000, help='nodes per NPU in the batch run')
    parser.add_argument('--splits', type=int, default=1,
                        help='preferred-dataset-splits (1 as in LLMServingSim main, 4 as in v0.2.1)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_batch(args.bin, folder, args.nodes, args.splits)
        write_configs(folder, [2], args.splits)
        write_workload(os.path.join(folder, 'iter'), 2, layer_chain(6, 3, 65536))
        compat_ticks = bench_compat(args.bin, folder, args.iterations)
        step_ticks = bench_step(args.bin, folder, args.iterations)
    same = compat_ticks == step_ticks
    print(f'compat and step finish ticks identical: {same} (last {step_ticks[-1]} ns)')
    sys.exit(0 if same else 1)


if __name__ == '__main__':
    main()
