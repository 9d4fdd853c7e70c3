"""Run the engine binary as a real subprocess: batch mode, the interactive (compat)
protocol of reference §1.5.1, and our step protocol. Every wait has a timeout; a
process that outlives it is killed and the test fails with "engine hung"."""
import os
import queue
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# ENGINE_BIN overrides the binary under test (e.g. another build of the engine)
ENGINE = Path(os.environ.get("ENGINE_BIN", REPO_ROOT / "astra-sim" / "build" / "bin" / "astra-analytical"))
BUILD_HINT = "build the engine: bash astra-sim/build.sh"

TIMEOUT_S = 10.0

BATCH_RE = re.compile(r"sys\[(\d+)\] finished, (\d+) cycles, exposed communication (-?\d+) cycles\.")
REPORT_RE = re.compile(
    r"sys\[(\d+)\] iteration (\d+) finished, (\d+) cycles, exposed communication (-?\d+) cycles\.")
BANNERS = ("All Request Has Been Exited", "ERROR: Some Requests Remain")


class EngineHung(AssertionError):
    pass


def _spawn(cwd, args):
    return subprocess.Popen([str(ENGINE)] + list(args), cwd=cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def _pump(stream, sink):
    for line in iter(stream.readline, ""):
        sink.put(line.rstrip("\n"))
    sink.put(None)


@dataclass
class Finished:
    """What a process left behind once it exited."""
    rc: int
    stdout: list
    stderr: str

    @property
    def stderr_lines(self):
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


class Process:
    """An engine subprocess whose stdout is read line by line with timeouts."""

    def __init__(self, cwd, args):
        self.proc = _spawn(cwd, args)
        self.lines = queue.Queue()
        self.stdout = []
        self._err = []
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        self._err_reader = threading.Thread(
            target=lambda: self._err.extend(self.proc.stderr.readlines()), daemon=True)
        self._err_reader.start()

    def readline(self, timeout=TIMEOUT_S):
        """Next stdout line, or None at EOF."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise EngineHung(f"engine hung: no output for {timeout}s; last lines {self.stdout[-5:]}")
        if line is None:
            self.lines.put(None)  # stay at EOF
        else:
            self.stdout.append(line)
        return line

    def write(self, line):
        """Send one line; False if the engine already closed its stdin."""
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def finish(self, timeout=TIMEOUT_S):
        """Read stdout to EOF and wait for exit."""
        while self.readline(timeout) is not None:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise EngineHung(f"engine hung: did not exit within {timeout}s")
        self._err_reader.join(timeout)
        return Finished(rc, self.stdout, "".join(self._err))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


# ---------------------------------------------------------------- batch mode

@dataclass
class BatchResult(Finished):
    finishes: dict = field(default_factory=dict)  # npu -> (T, E)

    def ticks(self):
        return {npu: t for npu, (t, _) in self.finishes.items()}


def run_batch(cwd, argv, timeout=TIMEOUT_S):
    """`--batch` run; parses the per-NPU `sys[i] finished, T cycles, exposed ... E` lines."""
    with Process(cwd, ["--batch"] + list(argv)) as p:
        p.close_stdin()
        done = p.finish(timeout)
    finishes = {}
    for line in done.stdout:
        m = BATCH_RE.search(line)
        if m:
            finishes[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return BatchResult(done.rc, done.stdout, done.stderr, finishes)


# ---------------------------------------------------------------- interactive (compat) mode

def parse_report(line):
    m = REPORT_RE.search(line or "")
    if not m:
        return None
    npu, it, cyc, exp = map(int, m.groups())
    return {"npu": npu, "iteration": it, "cycles": cyc, "exposed": exp}


@dataclass
class Transcript(Finished):
    reports: list = field(default_factory=list)
    banner: str = None
    remaining: dict = field(default_factory=dict)  # npu -> [node ids]


def _parse_remaining(lines):
    """Node ids listed after `Checking Non-Exited Systems ...` per `sys[i]` header."""
    remaining, current, checking = {}, None, False
    for line in lines:
        s = line.strip()
        if s == "Checking Non-Exited Systems ...":
            checking = True
        elif checking and re.fullmatch(r"sys\[(\d+)\]", s):
            current = int(s[4:-1])
            remaining[current] = []
        elif checking and current is not None and re.fullmatch(r"\{(\d+): .*\}", s):
            remaining[current].append(int(s[1:s.index(":")]))
    return {npu: sorted(ids) for npu, ids in remaining.items()}


class Interactive(Process):
    """Compat protocol: a report line, then `Waiting`, then one reply per prompt."""

    def __init__(self, cwd, argv):
        super().__init__(cwd, argv)
        self.reports = []

    def prompt(self, timeout=TIMEOUT_S):
        """Read up to the next `Waiting`; return the report line right before it,
        or None if the output ended first."""
        previous = None
        while True:
            line = self.readline(timeout)
            if line is None:
                return None
            if line.rstrip().endswith("Waiting"):
                report = parse_report(previous)
                assert report is not None, f"line before Waiting is not a report: {previous!r}"
                self.reports.append(report)
                return report
            previous = line

    def transcript(self, timeout=TIMEOUT_S):
        done = self.finish(timeout)
        banner = next((ln.strip() for ln in done.stdout if ln.strip() in BANNERS), None)
        return Transcript(done.rc, done.stdout, done.stderr, list(self.reports), banner,
                          _parse_remaining(done.stdout))


def run_interactive(cwd, argv, replies, timeout=TIMEOUT_S):
    """Answer the k-th `Waiting` with replies[k] (never writing ahead of a prompt); stdin
    is closed once the replies are used up."""
    with Interactive(cwd, argv) as p:
        for reply in replies:
            if p.prompt(timeout) is None:
                break
            p.write(reply)
        p.close_stdin()
        return p.transcript(timeout)


def run_interactive_policy(cwd, argv, decide, max_prompts=5000, timeout=TIMEOUT_S):
    """Answer each prompt with decide(report) until it returns "exit"."""
    with Interactive(cwd, argv) as p:
        for _ in range(max_prompts):
            report = p.prompt(timeout)
            if report is None:
                break
            reply = decide(report)
            p.write(reply)
            if reply == "exit":
                break
        else:
            raise AssertionError(f"no exit after {max_prompts} prompts; last {p.reports[-3:]}")
        return p.transcript(timeout)


# ---------------------------------------------------------------- step protocol (ours)

class Step(Process):
    """`--protocol=step`: one reply line per command; starts with `ready <n>`."""

    def __init__(self, cwd, args):
        super().__init__(cwd, ["--protocol=step"] + list(args))
        self.greeting = self.readline()

    def send(self, command, timeout=TIMEOUT_S):
        """Reply line to `command`, or None if the engine ended instead."""
        if not self.write(command):
            return None
        return self.readline(timeout)

    def chain(self, npus, data, fold=False, timeout=TIMEOUT_S):
        """`chain <npus> <len> [fold | fold after]` (fold: False, True or "after") followed by the chain's
        bytes; the reply line."""
        flag = {False: "", True: " fold", "after": " fold after"}[fold]
        self.proc.stdin.write(f"chain {npus} {len(data)}{flag}\n")
        self.proc.stdin.flush()
        self.proc.stdin.buffer.write(data)
        self.proc.stdin.buffer.flush()
        return self.readline(timeout)


def parse_done(reply):
    """`done <T> <npu>:<E> ...` -> (T, {npu: E})."""
    words = reply.split()
    assert words[0] == "done", reply
    return int(words[1]), {int(a): int(b) for a, b in (w.split(":") for w in words[2:])}
