"""Several llama.cpp streams decoded together: one batch per step, one sequence id per stream.

Requests served one at a time wait in line: the eighth of eight concurrent requests sees
its first token only after seven whole replies. The scheduler owns a second llama.cpp
context on the same (shared) weights, with one KV sequence per slot, each in its own KV
stream (see `__init__` for why not the unified cache). Each step evaluates, in one `llama_decode`, the
last sampled token of every decoding stream (or the next block of a prompt still being
read: see `_fill`), then samples each stream with its own llama.cpp sampler chain (built by the
caller exactly as `Llama.generate` builds it, its logits processors reading that
stream's own tokens), so a stream's greedy output is the one-at-a-time output.
On the 2-core test machine with the bundled model the gain is modest: one llama.cpp thread
is compute-bound, so a batch of eight costs nearly eight single steps (benchmarks/batched_decode.py).

Whoever needs a token and has none drives the next step, under a lock: the scheduler
works the same for callers on several threads and for generators interleaved on one. A
server's job threads step the batch inside `sharing.waiting()`: while one decodes, the
others run their own code (a new request's prompt, a finished turn's commit).

KV reuse: a slot keeps its KV after its stream ends, named by the stream's cache key; the
session's next turn gets that slot back and evaluates only its new tokens. A stream
without a slot of its own starts from the longest matching prefix held by any slot (the
character definition its sessions share: its cells are copied, not computed again; requests
for one character arriving together wait for the first to read it).
A slot taken over by another session is parked first (`llama_state_seq_get_data`) and
restored into whichever slot its session gets next.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rolecraft.backends.kv_cache import Snapshot, SnapshotCache
from rolecraft.backends.prefix_cache import MIN_TOKENS, PrefixCache
from rolecraft.backends.sharing import waiting
from rolecraft.errors import RolecraftError

MIN_REUSE = 16  # a shorter prefix is not worth a park, restore or copy

# Builds a stream's sampler chain; the argument returns that stream's tokens so far (prompt + generated).
MakeSampler = Callable[[Callable[[], np.ndarray]], Any]


@dataclass(frozen=True)
class Stable:
    """The prefix every new chat of a character shares (backends/prefix_cache.py): its scope, its length."""

    scope: str
    end: int


@dataclass(eq=False)
class Slot:
    """One KV sequence of the batch context: the tokens it holds and the stream using it, if any."""

    seq: int
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    n: int = 0  # ids[:n] are in the KV cache
    key: str | None = None
    stream: Stream | None = None
    used: int = 0

    def common(self, tokens: np.ndarray) -> int:
        """How many leading `tokens` this slot's KV already holds."""
        return _common(self.ids[: self.n], tokens)


@dataclass(eq=False)
class Stream:
    """One request being decoded: what it still has to evaluate, its sampler, the tokens it produced."""

    slot: Slot
    todo: list[int]
    sampler: Any
    budget: int
    out: deque[int] = field(default_factory=deque)
    done: bool = False
    error: BaseException | None = None
    save_at: int = 0  # when its KV reaches this many tokens, save them as the character's prefix (0: no)
    scope: str = ""  # the prefix cache scope it saves under

    def view(self) -> np.ndarray:
        return self.slot.ids[: self.slot.n]


class BatchScheduler:
    """Decodes up to `streams` concurrent requests on `llm`'s model in one llama.cpp batch per step."""

    def __init__(self, llm: Any, streams: int, parked: SnapshotCache, is_end: Callable[[int], bool],
                 prefixes: PrefixCache | None = None) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lib, self._is_end, self.parked, self.prefixes = llama_cpp, is_end, parked, prefixes
        streams = max(1, min(streams, llama_cpp.llama_max_parallel_sequences()))
        params = llama_cpp.llama_context_params()  # a copy of the model's own: same threads, rope, KV types
        ctypes.memmove(ctypes.byref(params), ctypes.byref(llm.context_params), ctypes.sizeof(params))
        self.n_ctx = llm.n_ctx()
        # One KV stream per sequence (not llama.cpp's unified cache): each sequence's cells stay contiguous
        # as in a context of its own, so its logits are bit for bit those of the one-at-a-time path.
        params.n_ctx, params.n_seq_max, params.kv_unified = self.n_ctx * streams, streams, False
        self.n_batch = int(params.n_batch)
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._mem = self._ctx.memory
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.slots = [Slot(i) for i in range(streams)]
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self.reused = 0  # prompt tokens found already in the KV cache (own slot, parked copy or another slot)

    @property
    def active(self) -> int:
        """Slots held by a stream now."""
        return sum(s.stream is not None for s in self.slots)

    def generate(self, tokens: Sequence[int], key: str | None, make_sampler: MakeSampler,
                 max_tokens: int, stable: Stable | None = None) -> Iterator[int]:
        """Sampled tokens for prompt `tokens`, the end token included, until `max_tokens` or the end.
        Closing the generator early frees its slot (its KV stays there for reuse). `stable` names the
        prefix every new chat of this character shares: restored from the prefix cache, or saved to it.
        """
        stream = None
        try:
            while stream is None:  # all slots busy: help the others along until one frees
                with self._lock:  # admission builds the sampler: engine code, under the caller's engine lock
                    stream = self._admit(np.asarray(tokens, dtype=np.int32), key, make_sampler, max_tokens,
                                         stable)
                if stream is None:
                    with waiting(), self._lock:
                        self._step()
            while True:
                if not stream.out and not stream.done:
                    with waiting(), self._lock:  # other jobs run meanwhile; one step serves them all
                        while not stream.out and not stream.done:
                            self._step()
                token = stream.out.popleft() if stream.out else None  # only this generator pops its stream
                if token is None:
                    if stream.error is not None:
                        raise stream.error
                    return
                yield token
        finally:
            if stream is not None:
                with waiting(), self._lock:
                    self._finish(stream)

    def forget(self, key: str) -> None:
        """Drop what is cached for `key`: its slot's KV (unless in use) and its parked copy."""
        with self._lock:
            self.parked.take(key)
            for slot in self.slots:
                if slot.key == key and slot.stream is None:
                    self._clear(slot)

    def _admit(self, tokens: np.ndarray, key: str | None, make_sampler: MakeSampler,
               max_tokens: int, stable: Stable | None) -> Stream | None:
        free = [s for s in self.slots if s.stream is None]
        if not free or self._prefix_coming(tokens):
            return None
        slot = max(free, key=lambda s: (key is not None and s.key == key, _worth(s.common(tokens)), s.key is None,
                                        -s.used))
        if slot.key is not None and slot.key != key and slot.n >= MIN_REUSE:
            self._park(slot)
        held = self._start(slot, tokens, key, stable)
        self.reused += held
        self._lib.llama_memory_seq_rm(self._mem, slot.seq, held, -1)
        ids = np.zeros(len(tokens) + max_tokens + 1, dtype=np.int32)
        ids[:held] = tokens[:held]
        slot.ids, slot.n, slot.key, slot.used = ids, held, key, next(self._clock)
        stream = Stream(slot, tokens[held:].tolist(), None, max_tokens)
        if stable is not None and self.prefixes is not None and stable.end - held >= MIN_TOKENS:
            stream.save_at, stream.scope = stable.end, stable.scope
        stream.sampler = make_sampler(stream.view)
        slot.stream = stream
        return stream

    def _prefix_coming(self, tokens: np.ndarray) -> bool:
        """Whether a stream still reading its prompt will soon hold a longer prefix of `tokens` than any slot
        holds now (requests for one character arriving together): then wait and copy it, not compute it again."""
        best = max(s.common(tokens) for s in self.slots)
        for slot in self.slots:
            stream = slot.stream
            if stream is None or len(stream.todo) <= 1:
                continue
            planned = np.concatenate([slot.ids[: slot.n], np.asarray(stream.todo, dtype=np.int32)])
            if min(_common(planned, tokens), len(tokens) - 1) > best + MIN_REUSE:
                return True
        return False

    def _start(self, slot: Slot, tokens: np.ndarray, key: str | None, stable: Stable | None) -> int:
        """Put the longest available prefix of `tokens` into `slot` (its own KV, the key's parked copy,
        another slot's cells, or the character's saved prefix); how many tokens it then holds (always
        leaving one to evaluate)."""
        limit = len(tokens) - 1
        held = min(slot.common(tokens), limit)
        parked = self.parked.take(key) if key is not None else None
        if parked is not None and min(_common(parked.tokens, tokens), limit) > held + MIN_REUSE:
            self._restore(slot, parked)
            held = min(slot.common(tokens), limit)
        donor = max((s for s in self.slots if s is not slot), key=lambda s: s.common(tokens), default=None)
        if donor is not None and min(donor.common(tokens), limit) > held + MIN_REUSE:
            copy = self._capture(donor)
            if copy is not None:
                self._restore(slot, copy)
            held = min(slot.common(tokens), limit)
        if stable is not None and self.prefixes is not None and stable.end > held + MIN_REUSE:
            saved = self.prefixes.longest(stable.scope, tokens.tolist(), longer_than=held + MIN_REUSE)
            if saved is not None:
                self._restore(slot, saved)
                held = min(slot.common(tokens), limit)
        return held

    def _capture(self, slot: Slot) -> Snapshot | None:
        """A copy of `slot`'s KV cells (None if llama.cpp gives none)."""
        lib, ctx = self._lib, self._ctx.ctx
        size = lib.llama_state_seq_get_size(ctx, slot.seq)
        buffer = np.empty(size, dtype=np.uint8)
        written = lib.llama_state_seq_get_data(ctx, buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), size,
                                               slot.seq)
        return Snapshot(tokens=slot.ids[: slot.n].copy(), state=buffer[:written]) if written else None

    def _park(self, slot: Slot) -> None:
        snapshot = self._capture(slot)
        if snapshot is not None and slot.key is not None:
            self.parked.put(slot.key, snapshot)

    def _restore(self, slot: Slot, snapshot: Snapshot) -> bool:
        self._lib.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
        pointer = snapshot.state.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        if self._lib.llama_state_seq_set_data(self._ctx.ctx, pointer, snapshot.state.size, slot.seq):
            n = len(snapshot.tokens)
            slot.ids, slot.n = np.array(snapshot.tokens, dtype=np.int32), n
            return True
        self._clear(slot)
        return False

    def _clear(self, slot: Slot) -> None:
        self._lib.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
        slot.n, slot.key = 0, None

    def _finish(self, stream: Stream) -> None:
        stream.done = True
        if stream.slot.stream is stream:
            stream.slot.stream = None
            stream.slot.used = next(self._clock)

    def _fill(self) -> list[tuple[Stream, int, int]]:
        """Put the next tokens into the batch: one prompt's next chunk (the prompt nearest its end) if any
        prompt is unread, else the last sampled token of every decoding stream. (stream, tokens added,
        batch index of its logits or -1 while its prompt is unfinished).

        Never both in one batch: mixed with other sequences' tokens, a prompt is not read in the blocks the
        one-at-a-time path reads it in (n_batch), and a token read alone rounds differently from one read in
        a block. Measured: mixing changed 3 to 4 of 8 greedy 64-token replies; keeping them apart, none."""
        batch, plan = self._batch, []
        streams = [s.stream for s in self.slots if s.stream is not None and not s.stream.done]
        reading = [st for st in streams if len(st.todo) > 1]
        for stream in [min(reading, key=lambda st: len(st.todo))] if reading else streams:
            slot, start = stream.slot, batch.n_tokens
            take = min(len(stream.todo), self.n_batch)
            if stream.save_at > slot.n:  # the prefix ends a block, as on the one-at-a-time path
                take = min(take, stream.save_at - slot.n)
            for i, token in enumerate(stream.todo[:take]):
                k = start + i
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = token, slot.n + i, 1
                batch.seq_id[k][0], batch.logits[k] = slot.seq, False
            batch.n_tokens += take
            last = start + take - 1 if take == len(stream.todo) else -1
            if last >= 0:
                batch.logits[last] = True
            plan.append((stream, take, last))
        return plan

    def _step(self) -> None:
        """One llama_decode over all active streams, then one sampled token for each that is due one."""
        self._batch.n_tokens = 0
        plan = self._fill()
        if not plan:
            return
        status = self._lib.llama_decode(self._ctx.ctx, self._batch)
        if status != 0:
            error = RolecraftError(f"llama.cpp could not decode the batch (status {status})",
                                   code="decode_failed", status=500, type="server_error")
            for stream, _, _ in plan:
                stream.error, stream.done = error, True
                self._clear(stream.slot)
                self._finish(stream)
            return
        for stream, take, last in plan:
            slot = stream.slot
            slot.ids[slot.n: slot.n + take] = stream.todo[:take]
            slot.n += take
            del stream.todo[:take]
            if stream.save_at and slot.n >= stream.save_at:
                self._save_prefix(stream)
            if last >= 0:
                try:
                    self._sample(stream, last)
                except Exception as exc:  # a failing sampler ends its own stream, not the caller's
                    stream.error = exc
                    self._finish(stream)

    def _save_prefix(self, stream: Stream) -> None:
        """The character's prefix, just read by `stream`: saved for the next new chat in any process."""
        stream.save_at = 0
        snapshot = self._capture(stream.slot)
        if snapshot is not None and self.prefixes is not None:
            self.prefixes.put(stream.scope, snapshot)

    def _sample(self, stream: Stream, index: int) -> None:
        token = stream.sampler.sample(self._ctx, index)
        stream.out.append(token)
        stream.budget -= 1
        slot = stream.slot
        if self._is_end(token) or stream.budget <= 0 or slot.n + 1 >= self.n_ctx:
            self._finish(stream)
        else:
            stream.todo = [token]

    def close(self) -> None:
        with self._lock:
            self._lib.llama_batch_free(self._batch)
            self._ctx.close()


def _worth(shared: int) -> int:
    """A shared prefix as a reason to pick a slot: none below MIN_REUSE (every chat shares a few tokens)."""
    return shared if shared >= MIN_REUSE else 0


def _common(held: np.ndarray, tokens: np.ndarray) -> int:
    """Length of the common prefix of two token arrays."""
    m = min(len(held), len(tokens))
    diff = np.flatnonzero(held[:m] != tokens[:m])
    return int(diff[0]) if len(diff) else m
