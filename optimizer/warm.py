"""`WarmLemon`: a forked child that keeps LEMON's network simplex basis between solves.

LEMON's network simplex (`pylmcf.Graph`) restarts from its last optimal basis when only
capacities, supplies or costs change (pylmcf 1.3: `Graph.solve` repairs the retained spanning
tree and pivots from there): 10–30 ms at 20,000 sessions instead of 1–40 s cold. The basis
lives in the solver, so the solver must live on: this child owns one `Graph` for the network it
was forked with, answers its cold solve, then waits for requests (new capacities, optionally
new costs) and answers each with the arc flows of the new optimum.

The parent never blocks on it: it sends a request only while the child is idle (every answer
read), reads answers through `feed` from its own `select` loop, and kills the child when a
deadline passes (`deadline.race_with_deadline` takes it as a racer that is already running).
The child exits when its request pipe closes (the parent closed it or died). Like every forked
child here it only runs code imported before the fork on data it inherited (`deadline`).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import struct
import time

import numpy as np
import pylmcf

from optimizer.compiled import IntArray
from optimizer.deadline import die_with_parent, reap
from optimizer.network import SINK, SOURCE, Network

# How pylmcf repairs the retained basis when the new capacities make it primal-infeasible
# (an arrival on a spare: its arcs sat at a bound of 0). Its default ("dual") gives up on an
# arrival and re-solves cold (2.7 s CPU at 20,000 sessions); the greedy-capacity dual repair
# re-plans each of the benchmark's six changes in 0.03-0.25 s (docs/performance.md). Either
# way the simplex then pivots to a proven optimum: only the time differs.
WARM_REPAIR = "dual_greedy"
_REQUEST = struct.Struct("<qqqq")  # sequence, arcs, supply, costs follow (0/1)
# sequence, arcs (−1: the solve failed), cold (1: pylmcf re-solved from scratch, no warm start)
_ANSWER = struct.Struct("<qqq")


class WarmLemon:
    """LEMON in a persistent child for one network's topology (capacities and costs may change).

    Parameters
    ----------
    network : the network (its arcs; the bypass arc source → sink is added here, as in
        `flow_solvers.lemon_flow`). The child starts the cold solve at once (request 0).
    """

    def __init__(self, network: Network) -> None:
        self.n_arcs = network.n_arcs
        request_read, self._request_fd = os.pipe()
        self.fd, answer_write = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child: serve until the request pipe closes
            code = 0
            try:
                die_with_parent(parent)
                # Hold nothing of the parent's open (sockets, files) for the child's lifetime.
                low, high = sorted((request_read, answer_write))
                os.closerange(3, low)
                os.closerange(low + 1, high)
                os.closerange(high + 1, _max_fd())
                _serve(network, request_read, answer_write)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(request_read)
        os.close(answer_write)
        self.sent = 0  # sequence number of the last request (0: the cold solve)
        self.received = -1  # sequence number of the last answer read
        self._buffer = bytearray()
        self.alive = True
        self.last: IntArray | None = None  # flows of the last answer (None: failed)
        # Whether the last answer came from a cold solve inside the child: the first one, or
        # a re-solve whose basis pylmcf could not repair (it then starts afresh, silently).
        self.last_cold = True

    @property
    def idle(self) -> bool:
        """Alive and every request answered (only then is a new one sent)."""
        return self.alive and self.received == self.sent

    @property
    def pending(self) -> bool:
        """Alive and an answer still to come."""
        return self.alive and self.received < self.sent

    def request(self, capacity: IntArray, supply: int, cost: IntArray | None) -> None:
        """Ask for the optimum with these arc capacities [units] (and costs, when they changed)."""
        if not self.idle:
            raise RuntimeError("the warm solver is still busy")
        self.sent += 1
        header = _REQUEST.pack(self.sent, self.n_arcs, supply, int(cost is not None))
        parts = [header, np.ascontiguousarray(capacity, dtype=np.int64).tobytes()]
        if cost is not None:
            parts.append(np.ascontiguousarray(cost, dtype=np.int64).tobytes())
        try:
            _write_all(self._request_fd, b"".join(parts))
        except OSError:  # the child is gone
            self.close()

    def feed(self) -> bool:
        """Read what is available (the fd is ready); True when the answer to the last request is in.

        `last` then holds its flows, or None if that solve failed, and `last_cold` whether the
        child solved it cold. An EOF (the child died) closes the worker and counts as a failed
        answer.
        """
        try:
            chunk = os.read(self.fd, 1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            self.last = None
            return True
        self._buffer += chunk
        while len(self._buffer) >= _ANSWER.size:
            sequence, arcs, cold = _ANSWER.unpack_from(self._buffer)
            size = _ANSWER.size + max(arcs, 0) * 8
            if len(self._buffer) < size:
                break
            payload = bytes(self._buffer[_ANSWER.size : size])
            del self._buffer[:size]
            self.received = sequence
            self.last_cold = bool(cold)
            self.last = np.frombuffer(payload, dtype=np.int64).copy() if arcs >= 0 else None
        return self.received == self.sent

    def wait(self, timeout_s: float) -> bool:
        """Read answers until idle or `timeout_s` [s] passed; True when idle."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while self.pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready:
                break
            self.feed()
        return self.idle

    def drain(self) -> None:
        """Read every answer already waiting, without blocking."""
        while self.pending:
            ready, _, _ = select.select([self.fd], [], [], 0.0)
            if not ready:
                return
            self.feed()

    def close(self) -> None:
        """Kill and reap the child, close both pipes (idempotent)."""
        if not self.alive:
            return
        self.alive = False
        for fd in (self._request_fd, self.fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        reap(self.pid)


def _serve(network: Network, request_fd: int, answer_fd: int) -> None:
    """The child's loop: cold solve, then one warm solve per request, until EOF."""
    tail = np.append(network.tail, SOURCE)
    head = np.append(network.head, SINK)
    order = np.lexsort((head, tail))  # pylmcf wants arcs sorted by tail, then head
    graph = pylmcf.Graph(network.n_nodes, tail[order], head[order])
    graph.set_pivot_rule("block_search")
    graph.set_warm_repair(WARM_REPAIR)
    capacity = np.append(network.capacity, network.total_supply)
    cost: IntArray | None = np.append(network.cost, network.max_rank + 1)
    sequence, supply = 0, network.total_supply
    n_arcs = network.n_arcs
    while True:
        node_supply = np.zeros(network.n_nodes, dtype=np.int64)
        node_supply[SOURCE], node_supply[SINK] = supply, -supply
        graph.set_node_supply(node_supply)
        graph.set_edge_capacities(np.ascontiguousarray(capacity[order]))
        if cost is not None:
            graph.set_edge_costs(np.ascontiguousarray(cost[order]))
        # pylmcf counts its warm restarts (and repairs); a re-solve that counts in none of them
        # went cold (its basis could not be repaired), which the parent reports as such.
        before = _warm_count(graph)
        try:
            graph.solve()
            flow = np.empty(len(order), dtype=np.int64)
            flow[order] = graph.result()
            cold = int(sequence == 0 or _warm_count(graph) == before)
            answer = _ANSWER.pack(sequence, n_arcs, cold) + flow[:n_arcs].tobytes()
        except Exception:  # reported; the next request solves cold
            answer = _ANSWER.pack(sequence, -1, 1)
        _write_all(answer_fd, answer)
        header = _read_exact(request_fd, _REQUEST.size)
        if header is None:
            return
        sequence, arcs, supply, has_cost = _REQUEST.unpack(header)
        body = _read_exact(request_fd, arcs * 8 * (2 if has_cost else 1))
        if body is None:
            return
        values = np.frombuffer(body, dtype=np.int64)
        # The bypass arc source → sink carries whatever is not delivered: capacity = supply,
        # cost above every augmenting path (flow_solvers.lemon_flow).
        capacity = np.append(values[:arcs], supply)
        if has_cost:
            costs = values[arcs:]
            cost = np.append(costs, int(costs.max(initial=0)) + 1)
        else:
            cost = None


def _warm_count(graph: pylmcf.Graph) -> int:
    """Re-solves pylmcf started from the retained basis (directly or after a repair)."""
    return int(graph.warm_start_count() + graph.dual_repair_count() + graph.primal_repair_count())


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if 0 < soft < 1 << 20 else 1 << 16


def _read_exact(fd: int, size: int) -> bytes | None:
    parts: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
