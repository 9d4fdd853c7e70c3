"""The two stdin/stdout protocols driven through a real subprocess: the compat
protocol of reference §1.5.1 (report line, `Waiting`, reply) and our step protocol;
and the two must agree on finish ticks for the same workloads."""
import time

import pytest

from engine_driver import Step, parse_done, run_interactive, run_interactive_policy
from etgen import ALL_REDUCE, coll, comp, recv, send
from engine_formulas import MiB, P, T

RING4 = dict(topology=["Ring"], npus=[4], bandwidth=[100], latency=[500])
FC2 = dict(topology=["FullyConnected"], npus=[2], bandwidth=[256], latency=[0])
ONE_NPU = dict(topology=["FullyConnected"], npus=[1], bandwidth=[256], latency=[0])
IDLE_TICK = 100  # ns added by a pass round while no event is pending (C2)
EXITED = "All Request Has Been Exited"


def report(npu, iteration, cycles, exposed):
    return {"npu": npu, "iteration": iteration, "cycles": cycles, "exposed": exposed}


# ---------------------------------------------------------------- compat protocol

def test_G14_idle_ticks_and_second_iteration(make_case):
    """G14: COMP 1000; three passes advance the idle simulator 100 ns each (exposed grows,
    cumulative); the prefix starts COMP 500 at 1300 → 1800 with E = 1800 − 1500; one more
    pass → 1900, E = 400; exit → banner, status 0."""
    case = make_case(**ONE_NPU)
    case.same_workload([comp(1, 1000)])
    case.same_workload([comp(1, 500)], prefix="next")
    run = run_interactive(case.root, case.argv(), ["pass", "pass", "pass", "next", "pass", "exit"])
    assert run.reports == [
        report(0, 0, 1000, 0),
        report(0, 0, 1000 + IDLE_TICK, IDLE_TICK),
        report(0, 0, 1000 + 2 * IDLE_TICK, 2 * IDLE_TICK),
        report(0, 0, 1000 + 3 * IDLE_TICK, 3 * IDLE_TICK),
        report(0, 1, 1300 + 500, 1800 - (1000 + 500)),
        report(0, 1, 1800 + IDLE_TICK, 1900 - 1500),
    ]
    assert "Checking Non-Exited Systems ..." in run.stdout
    assert (run.banner, run.remaining, run.rc) == (EXITED, {}, 0)


def test_finished_npu_is_reported_after_every_timestamp(make_case):
    """§1.5.1: NPU0 (COMP 100) is asked after t=100, again after t=300 (NPU1's COMP ends),
    and both after the idle tick to 400."""
    case = make_case(**FC2)
    case.workload({0: [comp(1, 100)], 1: [comp(1, 300)]})
    run = run_interactive(case.root, case.argv(), ["pass"] * 4 + ["exit"])
    assert run.reports == [report(0, 0, 100, 0), report(0, 0, 300, 200), report(1, 0, 300, 0),
                           report(0, 0, 400, 300), report(1, 0, 400, 100)]
    assert (run.banner, run.rc) == (EXITED, 0)


def test_empty_workload_is_first_reported_after_next_timestamp(make_case):
    """§1.5.1: NPU1 has no nodes; it is first asked after the first processed timestamp
    (250), with E = 250 since it ran no compute."""
    case = make_case(**FC2)
    case.workload({0: [comp(1, 250)]})
    run = run_interactive(case.root, case.argv(), ["pass", "pass", "pass", "exit"])
    assert run.reports == [report(0, 0, 250, 0), report(1, 0, 250, 250),
                           report(0, 0, 350, 100), report(1, 0, 350, 350)]


def test_prefix_loads_only_the_answered_npu(make_case):
    """A prefix answer makes only that NPU load <prefix>.<i>.et at the current tick: NPU0
    runs COMP 50 from 100 to 150 (iteration 1); NPU1 stays at iteration 0, E = 150 − 100."""
    case = make_case(**FC2)
    case.same_workload([comp(1, 100)])
    case.same_workload([comp(1, 50)], prefix="next")
    run = run_interactive(case.root, case.argv(), ["next", "pass", "pass", "exit"])
    assert run.reports == [report(0, 0, 100, 0), report(1, 0, 100, 0),
                           report(0, 1, 150, 0), report(1, 0, 150, 50)]
    assert (run.banner, run.rc) == (EXITED, 0)


def test_unfinished_npu_is_listed_at_exit(make_case):
    """A receive that never matches keeps NPU1 busy; the finished NPU0 is still asked after
    every idle tick; at exit the remaining node is listed and the banner is the ERROR one
    (status 0, as in the reference)."""
    case = make_case(**FC2)
    case.workload({0: [comp(1, 10)], 1: [recv(58, 0, 1, 4096)]})
    run = run_interactive(case.root, case.argv(), ["pass", "pass", "exit"])
    assert run.reports == [report(0, 0, 10, 0), report(0, 0, 110, 100), report(0, 0, 210, 200)]
    assert (run.banner, run.remaining, run.rc) == ("ERROR: Some Requests Remain", {1: [58]}, 0)


# ---------------------------------------------------------------- step protocol

@pytest.fixture
def two_npu_step(make_case):
    """Step session on FC[2]: w = (NPU0 COMP 100, NPU1 COMP 300), w2 = COMP 500 each."""
    case = make_case(**FC2)
    case.workload({0: [comp(1, 100)], 1: [comp(1, 300)]}, prefix="w")
    case.same_workload([comp(1, 500)], prefix="w2")
    with Step(case.root, case.config_args()) as step:
        yield step


def test_step_greets_with_npu_count(make_case):
    case = make_case(**RING4)
    with Step(case.root, case.config_args()) as step:
        assert step.greeting == "ready 4"
        assert step.send("exit") == "bye 0"
        assert step.finish().rc == 0


def test_step_without_work_is_idle(two_npu_step):
    assert two_npu_step.send("step") == "idle 0"


def test_step_reports_collective_completion(make_case):
    """G3 through the step protocol: every NPU done at 6·2941 + 70 + 3·489 = 19183, E = T."""
    case = make_case(**RING4)
    case.same_workload([coll(1, ALL_REDUCE, MiB)])
    expected = 6 * T(262144, 1, 500, 100) + 7 * 10 + 3 * P(262144)
    with Step(case.root, case.config_args()) as step:
        assert step.send("load workload all") == "ok"
        assert parse_done(step.send("step")) == (expected, {i: expected for i in range(4)})
        assert step.send("exit") == f"bye {expected}"
        assert step.finish().rc == 0


def test_step_starts_the_command_line_workload(make_case):
    """With --workload-configuration the NPUs start that workload at tick 0 (G1 chain: 600)."""
    case = make_case(**ONE_NPU)
    case.same_workload([comp(0, 100), comp(1, 200, deps=[0]), comp(2, 300, deps=[1])])
    with Step(case.root, case.argv()) as step:
        assert step.greeting == "ready 1"
        assert step.send("step") == "done 600 0:0"
        assert step.send("step") == "idle 600"


def test_step_limits_advance_and_partial_loads(two_npu_step):
    """`step <limit>` stops at the limit when the next completion is later; `advance`
    moves an idle clock; `load w2 1` starts NPU1 only, at the current tick (1000 + 500)."""
    step = two_npu_step
    script = [
        ("load w all", "ok"),
        ("step 50", "time 50"),
        ("step", "done 100 0:0"),
        ("step 200", "time 200"),
        ("step", "done 300 1:0"),
        ("step", "idle 300"),
        ("advance 1000", "time 1000"),
        ("load w2 1", "ok"),
    ]
    assert [(cmd, step.send(cmd)) for cmd, _ in script] == script
    tick, npus = parse_done(step.send("step 5000"))
    assert (tick, sorted(npus)) == (1000 + 500, [1])
    assert step.send("exit") == "bye 1500"
    assert step.finish().rc == 0


def test_step_empty_workload_completes_at_load_tick(make_case):
    """A workload without nodes completes when it is loaded (here at 500); exposed = 500."""
    case = make_case(**FC2)
    case.workload({}, prefix="empty")
    with Step(case.root, case.config_args()) as step:
        assert [step.send(c) for c in ("advance 500", "load empty all", "step")] == \
            ["time 500", "ok", "done 500 0:500 1:500"]



@pytest.mark.parametrize("pause_s", [0.0, 0.001, 0.05])
def test_polling_stdin_changes_no_reply(make_case, pause_s):
    """--spin-us: a command sent while the engine polls (no pause, 1 ms into a 20 ms poll) or after it gave
    up and sleeps (50 ms) gets the reply it gets without polling: COMP 100 then COMP 300 on one NPU end
    at 100 and 400."""
    case = make_case(**ONE_NPU)
    case.same_workload([comp(1, 100)], prefix="a")
    case.same_workload([comp(1, 300)], prefix="b")
    script = ["load a all", "step", "load b all", "step", "exit"]
    replies = {}
    for spin in ("0", "20000"):
        with Step(case.root, case.config_args() + [f"--spin-us={spin}"]) as step:
            replies[spin] = []
            for command in script:
                time.sleep(pause_s)
                replies[spin].append(step.send(command))
            assert step.finish().rc == 0
    assert replies["20000"] == replies["0"] == ["ok", "done 100 0:0", "ok", "done 400 0:0", "bye 400"]
# ---------------------------------------------------------------- compat == step

ITERATIONS = 4
GAP_PASSES = 3  # idle pass rounds after iteration 0, which ends on every NPU at once


def iteration_nodes(npu, j):
    """Iteration j of NPU npu on Ring[4]: COMP → AR → trailing COMP. Iteration 0 is the same
    on every NPU (so all finish together); later ones have NPU-specific durations, and
    iteration 3 adds a 0 → 3 message after the trailing COMP."""
    symmetric = j == 0
    nodes = [comp(0, 1000 if symmetric else 1000 + 100 * npu + 50 * j),
             coll(1, ALL_REDUCE, 65536 * (j + 1), deps=[0]),
             comp(2, 300 if symmetric else 200 * (npu + 1), deps=[1])]
    if j == 3 and npu == 0:
        nodes.append(send(3, 0, 3, 4096, tag=j, deps=[2]))
    if j == 3 and npu == 3:
        nodes.append(recv(3, 0, 3, 4096, tag=j, deps=[2]))
    return nodes


def write_iterations(case):
    for j in range(ITERATIONS):
        case.workload({i: iteration_nodes(i, j) for i in range(4)}, prefix=f"it{j}")


def gap_after(j):
    return GAP_PASSES if j == 0 else 0


def run_compat(case):
    """Each NPU gets it{j+1} after gap_after(j) passes following its first report of j."""
    finish, passes = {}, {}

    def decide(r):
        key = (r["npu"], r["iteration"])
        finish.setdefault(key, r["cycles"])
        if len(finish) == 4 * ITERATIONS:
            return "exit"
        if r["iteration"] == ITERATIONS - 1:
            return "pass"
        passes[key] = passes.get(key, 0) + 1
        return "pass" if passes[key] <= gap_after(r["iteration"]) else f"it{r['iteration'] + 1}"

    run = run_interactive_policy(case.root, case.argv(prefix="it0"), decide)
    assert (run.banner, run.rc) == (EXITED, 0)
    return finish


def run_step(case):
    """Same schedule in the step protocol; g passes on an all-idle simulator are
    `advance T + g·100`."""
    finish, iteration = {}, {i: 0 for i in range(4)}
    with Step(case.root, case.config_args()) as step:
        assert step.send("load it0 all") == "ok"
        while len(finish) < 4 * ITERATIONS:
            tick, npus = parse_done(step.send("step"))
            for npu in npus:
                finish[(npu, iteration[npu])] = tick
            reload = sorted(n for n in npus if iteration[n] < ITERATIONS - 1)
            for j in sorted({iteration[n] for n in reload}):
                group = [n for n in reload if iteration[n] == j]
                if gap_after(j):
                    assert group == [0, 1, 2, 3], f"iteration {j} should end on all NPUs at once"
                    target = tick + gap_after(j) * 100
                    assert step.send(f"advance {target}") == f"time {target}"
                assert step.send(f"load it{j + 1} {','.join(map(str, group))}") == "ok"
                for npu in group:
                    iteration[npu] = j + 1
        assert step.send("exit").startswith("bye ")
    return finish


def test_compat_and_step_protocols_agree(make_case):
    case = make_case(**RING4)
    write_iterations(case)
    compat, stepped = run_compat(case), run_step(case)
    assert len(compat) == 4 * ITERATIONS
    assert stepped == compat
