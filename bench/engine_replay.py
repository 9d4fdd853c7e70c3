#!/usr/bin/env python3
"""The engine alone on a recorded step-protocol session: commands per second, before/after.

Record once (runs main.py in this process, copying what is written to the engine's stdin, its
argument list and its configuration files into DIR; the simulation itself is unchanged):

    .venv/bin/python bench/engine_replay.py record DIR -- --scheduler orca \\
        --model_name meta-llama/Llama-3.1-70B --hardware H100 --npu_num 64 --npu_group 8 --req_num 30

Replay it into one or more engine binaries (the first is the baseline), best and median of N runs:

    .venv/bin/python bench/engine_replay.py replay DIR --bin OLD --bin NEW [--repeat 5]

Prints each binary's wall and CPU time (user + system: steadier on a shared machine) and rate
(commands, chain listings and listing lines per second, at the best time), the rate ratio against the
first binary, and whether every binary's replies equal the first binary's.
It reports times; it never asserts them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(REPO, 'astra-sim', 'build', 'bin', 'astra-analytical')


def record(folder: str, main_args: list[str]) -> None:
    sys.path.insert(0, REPO)
    from inference_serving.backend import process as engine_process

    os.makedirs(folder, exist_ok=True)
    sessions: list[dict] = []
    files = []
    original_init, original_write = engine_process.EngineProcess.__init__, engine_process.EngineProcess.write

    def init(self, argv, cwd, timeout_s, spin_us=0):
        index = len(sessions)
        configs = os.path.join(folder, f'session{index}')
        os.makedirs(configs, exist_ok=True)
        replay_argv = []
        for arg in argv[1:]:
            name, sep, value = arg.partition('=')
            if sep and os.path.isfile(value):
                source = os.path.dirname(value)
                for entry in os.listdir(source):  # the folder: relative names (a collective table) too
                    if os.path.isfile(os.path.join(source, entry)):
                        shutil.copy(os.path.join(source, entry), configs)
                arg = f'{name}=' + os.path.join(f'session{index}', os.path.basename(value))
            replay_argv.append(arg)
        self._record = open(os.path.join(configs, 'stdin'), 'wb')
        files.append(self._record)
        sessions.append({'argv': replay_argv, 'stdin': os.path.join(f'session{index}', 'stdin')})
        original_init(self, argv, cwd, timeout_s, spin_us)

    def write(self, data):
        self._record.write(data)
        original_write(self, data)

    engine_process.EngineProcess.__init__, engine_process.EngineProcess.write = init, write
    from inference_serving.cli import main_py
    try:
        main_py(args=main_args, prog_name='main.py', standalone_mode=False)
    finally:
        for f in files:
            f.close()
        with open(os.path.join(folder, 'sessions.json'), 'w') as f:
            json.dump({'main_args': main_args, 'sessions': sessions}, f, indent=1)
    print(f'recorded {len(sessions)} engine session(s) into {folder}', file=sys.stderr)


def count(stdin_path: str) -> tuple[int, int, int]:
    """(commands, chain listings, listing lines) of a recorded stdin."""
    commands = chains = lines = 0
    with open(stdin_path, 'rb') as f:
        data = f.read()
    at = 0
    while at < len(data):
        end = data.find(b'\n', at)
        end = len(data) if end < 0 else end
        words = data[at:end].split()
        at = end + 1
        if not words:
            continue
        commands += 1
        if words[0] == b'chain':
            chains += 1
            size = int(words[2])
            lines += data.count(b'\n', at, at + size)
            at += size
    return commands, chains, lines


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(binary: str, folder: str, session: dict) -> tuple[float, float, bytes]:
    """(wall seconds, CPU seconds, stdout) of one replay."""
    with open(os.path.join(folder, session['stdin']), 'rb') as stdin:
        cpu, start = child_cpu(), time.perf_counter()
        done = subprocess.run([binary, *session['argv']], cwd=folder, stdin=stdin, capture_output=True)
        seconds, cpu = time.perf_counter() - start, child_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f'{binary}: exit status {done.returncode}: {done.stderr.decode(errors="replace").strip()[-500:]}')
    return seconds, cpu, done.stdout


def replay(folder: str, binaries: list[str], repeat: int) -> None:
    with open(os.path.join(folder, 'sessions.json')) as f:
        sessions = json.load(f)['sessions']
    if not sessions:
        sys.exit(f'{folder}: no engine session was recorded (did the recorded run fail? run main.py with its arguments)')
    totals = [count(os.path.join(folder, s['stdin'])) for s in sessions]
    commands, chains, lines = (sum(t[i] for t in totals) for i in range(3))
    print(f'{len(sessions)} session(s): {commands:,} commands, {chains:,} chain listings, {lines:,} listing lines')
    times: dict[str, list[float]] = {b: [] for b in binaries}
    cpus: dict[str, list[float]] = {b: [] for b in binaries}
    outputs: dict[str, list[bytes]] = {}
    for _ in range(repeat):  # interleaved, so that the binaries share the machine's load
        for binary in binaries:
            wall, cpu, outs = 0.0, 0.0, []
            for session in sessions:
                seconds, used, out = run_once(binary, folder, session)
                wall += seconds
                cpu += used
                outs.append(out)
            times[binary].append(wall)
            cpus[binary].append(cpu)
            outputs.setdefault(binary, outs)
            if outputs[binary] != outs:
                print(f'{binary}: replies differ between runs')
    base = binaries[0]
    for binary in binaries:
        same = 'replies identical to the first binary' if outputs[binary] == outputs[base] else \
            'REPLIES DIFFER from the first binary'
        print(f'{binary}  ({repeat} runs; {same})')
        for what, table in (('wall', times), ('cpu ', cpus)):
            best, median = min(table[binary]), statistics.median(table[binary])
            print(f'  {what} best {best:7.3f} s  median {median:7.3f} s  {commands / best:10,.0f} commands/s'
                  f'  {chains / best:9,.0f} chains/s  {lines / best:11,.0f} lines/s  ratio vs first:'
                  f' best {min(table[base]) / best:5.2f}x  median {statistics.median(table[base]) / median:5.2f}x')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    rec = sub.add_parser('record', help='run main.py, recording the engine sessions')
    rec.add_argument('folder')
    rec.add_argument('main_args', nargs=argparse.REMAINDER, help='main.py arguments (after --)')
    rep = sub.add_parser('replay', help='replay a recording into engine binaries')
    rep.add_argument('folder')
    rep.add_argument('--bin', action='append', help=f'engine binary (repeatable; default {DEFAULT_BIN})')
    rep.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    if args.command == 'record':
        main_args = args.main_args[1:] if args.main_args[:1] == ['--'] else args.main_args
        record(os.path.abspath(args.folder), main_args)
    else:
        replay(os.path.abspath(args.folder), [os.path.abspath(b) for b in args.bin or [DEFAULT_BIN]], args.repeat)


if __name__ == '__main__':
    main()
