"""Prefill/decode disaggregation: prefill instances compute prompts, decode instances generate.

A request routed to a prefill instance runs there as a request of one output token (its first
token, counted for TTFT when the prefill instance samples it). Then a decode instance is chosen (the
cluster's `decode_router`) and the prompt's KV blocks move to it over the network: every rank of the
prefill group sends the KV it holds of each KV head that a decode rank holds to that rank
(`shard_bytes`), as engine SEND/RECV between the two NPUs' KV ports (backend/engine_config.py: a
port per NPU, so transfers run beside the instances' compute; one port sends or receives one
transfer's ops at a time, in order). The prefill instance frees the blocks when the transfer has
completed (vLLM's prefill side holds them until the decode side has read them); the request then
joins the decode instance with its prompt computed and its first token known, and waits there for
admission (its blocks are allocated when the decode scheduler admits it). Queueing is reported on
both sides: the prefill side's is the request's queuing delay, the decode side's the time from the
transfer's end to its admission there.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from ..errors import InputError
from ..inputs.model_config import ModelConfig
from ..perf.shard import ceil_div
from ..plan.chain import Chain, Op, listing
from ..serving.arrivals import Arrivals, Inbox
from ..serving.instance import Instance
from ..serving.request import RequestState

TAG_LIMIT = 500_000_000  # the engine's workload tags are taken mod 5e8 (reference §3.4)


def kv_heads_held(model: ModelConfig, tp: int, rank: int) -> range:
    """The KV heads rank `rank` of a `tp`-way group holds: its share, or the one it replicates
    (perf/shard.py's rule)."""
    heads = model.num_kv_heads
    if tp <= heads:
        share = heads // tp
        return range(rank * share, (rank + 1) * share)
    replica = rank // (tp // heads)
    return range(replica, replica + 1)


def shard_bytes(model: ModelConfig, tokens: int, head_token_bytes: int, prefill_tp: int,
                decode_tp: int) -> dict[tuple[int, int], int]:
    """(prefill rank, decode rank) -> bytes: each decode rank gets each KV head it holds from the
    first prefill rank holding it, `tokens` tokens of it (every layer, K and V)."""
    moves: dict[tuple[int, int], int] = {}
    for d in range(decode_tp):
        for head in kv_heads_held(model, decode_tp, d):
            p = next(r for r in range(prefill_tp) if head in kv_heads_held(model, prefill_tp, r))
            moves[p, d] = moves.get((p, d), 0) + tokens * head_token_bytes
    return moves


def head_token_bytes(instance: Instance, model: ModelConfig) -> int:
    """KV bytes of one head and one token over every layer: a block's bytes per NPU over its tokens
    and the heads a rank holds."""
    layout = instance.kv.layout
    heads = len(kv_heads_held(model, instance.tp, 0))
    return layout.block_bytes // (layout.block_size * heads)


@dataclass
class Transfer:
    request: RequestState          # the run's state of the request (the decode side continues it)
    prefill: RequestState          # its one-token copy on the prefill instance
    source: int                    # instance indexes
    target: int
    bytes: int
    start_ns: int
    chains_left: int = 0
    end_ns: int = 0


@dataclass
class Port:
    """One NPU's KV port: the transfer chain it runs and those waiting for it."""

    current: Transfer | None = None
    queued: deque = field(default_factory=deque)


class PrefillInbox(Inbox):
    """A prefill instance's feed: each arriving request runs as a one-token copy; its end hands it on."""

    def __init__(self, arrivals: Arrivals, index: int, transfers: "KvTransfers") -> None:
        super().__init__(arrivals, index)
        self.transfers = transfers
        self.origin: dict[int, RequestState] = {}

    def due(self, now: int) -> list[RequestState]:
        copies = []
        for state in super().due(now):
            copy = RequestState(replace(state.request, output_tokens=1))
            self.origin[copy.id] = state
            copies.append(copy)
        return copies

    def finished(self, state: RequestState, now: int, kv) -> None:
        request = self.origin.pop(state.id)
        request.first_token_ns, request.admitted_ns = state.first_token_ns, state.admitted_ns
        if request.request.output_tokens == 1:
            request.generated, request.end_ns = 1, now
            kv.free(state.id)
            self.arrivals.ended(request, now)
        else:
            self.transfers.prefilled(self.index, request, state, now)

    def ended(self, finished: list[RequestState]) -> list[RequestState]:
        return [self.arrivals.by_id[s.id] for s in finished if self.arrivals.by_id[s.id].done]


class KvTransfers:
    def __init__(self, arrivals: Arrivals, instances: list[Instance], models: list[ModelConfig], chooser,
                 port_base: int) -> None:
        self.arrivals, self.instances, self.models, self.chooser = arrivals, instances, models, chooser
        self.port_base = port_base  # NPU n's port is n + port_base
        self.ports: dict[int, Port] = {}
        self.new: list[tuple[Transfer, dict[int, Chain]]] = []
        self.done_transfers: list[Transfer] = []
        self.in_flight = 0
        self.tags = 0
        for k, instance in enumerate(instances):
            _check_disaggregated(instance, models[k], models)
            if instance.role == "prefill":
                inbox = PrefillInbox(arrivals, k, self)
                arrivals.inboxes[k] = instance.scheduler.feed = inbox

    @property
    def busy(self) -> bool:
        return self.in_flight > 0

    def prefilled(self, source: int, request: RequestState, copy: RequestState, now: int) -> None:
        """A request's prompt is done on instance `source`: its transfer to a decode instance is due."""
        target = self.chooser.pick(request, now)
        prefill, decode = self.instances[source], self.instances[target]
        tokens = ceil_div(request.request.input_tokens, prefill.kv.layout.block_size) * prefill.kv.layout.block_size
        moves = shard_bytes(self.models[source], tokens, head_token_bytes(prefill, self.models[source]),
                            prefill.tp, decode.tp)
        transfer = Transfer(request, copy, source, target, sum(moves.values()), now)
        self.new.append((transfer, self._chains(transfer, moves)))
        self.in_flight += 1

    def _chains(self, transfer: Transfer, moves: dict[tuple[int, int], int]) -> dict[int, Chain]:
        """Port -> the chain it runs for the transfer: sends on the prefill ranks' ports, receives on
        the decode ranks'."""
        ops: dict[int, list[Op]] = {}
        first_p = self.instances[transfer.source].first_npu + self.port_base
        first_d = self.instances[transfer.target].first_npu + self.port_base
        for (p, d), nbytes in sorted(moves.items()):
            tag = self.tags % TAG_LIMIT
            self.tags += 1
            src, dst = first_p + p, first_d + d
            name = f"kv_request{transfer.request.id}"
            ops.setdefault(src, []).append(Op("send", name, nbytes, src, dst, tag))
            ops.setdefault(dst, []).append(Op("recv", name, nbytes, src, dst, tag))
        return {port: Chain(tuple(chain), (), 0, ()) for port, chain in ops.items()}

    def start_due(self, engine, now: int) -> None:
        """Starts (or queues behind the ports' earlier transfers) the transfers due since the last call."""
        for transfer, chains in self.new:
            transfer.chains_left = len(chains)
            for port, chain in chains.items():
                queue = self.ports.setdefault(port, Port())
                if queue.current is None:
                    queue.current = transfer
                    engine.chain(listing(chain), [port])
                else:
                    queue.queued.append((transfer, chain))
        self.new = []

    def done(self, engine, ports: list[int], now: int) -> None:
        """Ports that finished their chain: transfers that completed go to their decode instance."""
        for port in ports:
            queue = self.ports[port]
            transfer, queue.current = queue.current, None
            transfer.chains_left -= 1
            if not transfer.chains_left:
                self._arrived(transfer, now)
            if queue.queued:
                queue.current, chain = queue.queued.popleft()
                engine.chain(listing(chain), [port])

    def _arrived(self, transfer: Transfer, now: int) -> None:
        self.instances[transfer.source].kv.free(transfer.prefill.id)
        request = transfer.request
        request.cached, request.generated = request.request.input_tokens, 1
        transfer.end_ns = now
        self.in_flight -= 1
        self.done_transfers.append(transfer)
        self.arrivals.inboxes[transfer.target].arrived.append(request)

    def summary(self, now: int) -> dict:
        import numpy as np  # at first use, not at start-up

        times = np.array([t.end_ns - t.start_ns for t in self.done_transfers], dtype=float) / 1e6
        queued = np.array([t.request.instance_admitted_ns - t.end_ns for t in self.done_transfers
                           if t.request.instance_admitted_ns is not None], dtype=float) / 1e6
        out = {"kv_transfers": len(self.done_transfers),
               "kv_transfer_bytes": int(sum(t.bytes for t in self.done_transfers))}
        for key, values in (("kv_transfer", times), ("decode_queuing", queued)):
            for stat, fn in (("mean", np.mean), ("p99", lambda v: np.percentile(v, 99))):
                out[f"{key}_{stat}_ms"] = float(fn(values)) if len(values) else float("nan")
        return out

    def lines(self, now: int) -> list[str]:
        m = self.summary(now)
        return [f"KV transfers:             {m['kv_transfers']} ({m['kv_transfer_bytes']} B), time (ms) mean "
                f"{m['kv_transfer_mean_ms']:.3f}  p99 {m['kv_transfer_p99_ms']:.3f}",
                f"decode queuing (ms):      mean {m['decode_queuing_mean_ms']:.3f}  p99 "
                f"{m['decode_queuing_p99_ms']:.3f} (from the transfer's end to admission on the decode instance)"]


def _check_disaggregated(instance: Instance, model: ModelConfig, models: list[ModelConfig]) -> None:
    where = f"--cluster: instance {instance.name}"
    if instance.role == "colocated":
        return
    if instance.pp > 1:
        raise InputError(f"{where}: prefill and decode instances run one pipeline stage (pp: 1)")
    if model.name != models[0].name:
        raise InputError(f"{where}: prefill and decode instances serve one model ({models[0].name}), not {model.name}")
