"""The layout of the decode steps one sequence was in, and replaying it exactly.

Greedy text can change with the batch, and not because of the other questions' content.
With one KV stream per slot, llama.cpp cuts a decode step into micro-batches of consecutive
slots with equal tokens each, so a step's shape decides how many of a sequence's tokens
each micro-batch holds; and the CPU kernels go by those counts (llamafile's tinyBLAS only
for two or more columns, ggml's vec_dot for one), summing in different orders. Measured on
the models here: a prompt whose last token is cut off into a micro-batch of its own (beside
a prompt one token shorter in the slot before it) gets other logit bits than the same prompt
in one piece, and a near tie flips; filler tokens in the other slots give the same bits as
real questions did. So what one sequence's numbers depend on is each step's *shape*: which
slots it carried, how many tokens each, which asked for logits on its last token, in batch
order.

Each sequence keeps the run-length list of the shapes of its steps (`Layout`, cheap on the
engine thread: an unchanged shape is the same object, its run is counted up). Reproduce
follows it (`Replay`): the sequence alone in its original slot, its own tokens in its own
entry of each recorded shape, and filler tokens wherever another sequence was, so every step
has the original's shape and the sequence's logits come out bit for bit the same.
"""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp

from analysis.inference import mtmd
from analysis.inference.types import EngineError

Entry = tuple[int, int, bool]  # (slot, tokens in this step, logits on its last token)
Shape = tuple[Entry, ...]
FILLER = 0  # what the other slots carry in a replay: only their shape matters, not the token
MALFORMED = "The record's batch layout is malformed: it cannot be replayed."


class Layout:
    """The shapes of the steps a sequence was in, run-length encoded (engine thread)."""

    __slots__ = ("slot", "runs")

    def __init__(self) -> None:
        self.slot = -1
        self.runs: list[list] = []  # [shape, repeat]

    def add(self, shape: Shape) -> None:
        runs = self.runs
        if runs and (runs[-1][0] is shape or runs[-1][0] == shape):
            runs[-1][1] += 1
        else:
            runs.append([shape, 1])

    def as_dict(self) -> dict:
        """Compact JSON: each entry [slot, tokens, 1 if it asked for logits else 0]."""
        return {
            "slot": self.slot,
            "runs": [[[[s, n, int(lg)] for s, n, lg in shape], k] for shape, k in self.runs],
        }


def recorded(record: dict | None) -> dict | None:
    """The layout a reproduction of `record` replays, or None: it runs alone (a solo
    original, or one recorded before layouts were)."""
    batch = (record or {}).get("batch") or {}
    if batch.get("mode") == "solo":
        return None
    return batch.get("layout") or None


class Replay:
    """A recorded layout, followed step by step on the engine thread."""

    def __init__(self, recorded: dict, slots: int = 1) -> None:
        try:
            self.slot = int(recorded["slot"])
            self.runs = [
                (tuple((int(s), int(n), bool(lg)) for s, n, lg in shape), int(k))
                for shape, k in recorded["runs"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineError(MALFORMED) from exc
        used = [s for shape, _ in self.runs for s, _, _ in shape]
        sizes = [n for shape, _ in self.runs for _, n, _ in shape]
        if self.slot < 0 or min(used, default=0) < 0 or min(sizes, default=1) < 1:
            raise EngineError(MALFORMED)
        # The most tokens one step carries: it must fit the engine's batch.
        self.widest = max((sum(n for _, n, _ in shape) for shape, _ in self.runs), default=0)
        # The original's engine had `slots`; the layout needs at least its highest slot.
        self.slots = max(slots, self.slot + 1, 1 + max(used, default=0))
        self._steps: Iterator[Shape] = (shape for shape, k in self.runs for _ in range(k))
        self.positions: dict[int, int] = {}  # each filler stream's next position
        self.followed = True  # every step so far had its recorded shape

    def exact(self) -> bool:
        """Every recorded step was replayed as recorded, and no other step ran."""
        return self.followed and next(self._steps, None) is None

    def fill(self, scheduler, seq) -> tuple[list, list, Shape]:
        """One step in the recorded shape: `seq`'s own next tokens in its entry, fillers in
        every other. Its media chunk, when next, runs first and alone, as it did."""
        if seq.feed and isinstance(seq.feed[0], mtmd.Chunk):
            return [], [], ()
        shape = next(self._steps, None)
        if shape is None:  # past the recorded steps (e.g. the original was cancelled)
            self.followed = False
            shape = ((seq.seq_id, 0, True),)
        outputs: list = []
        entries: list[Entry] = []
        own = False
        for slot, n, logits in shape:
            if slot != seq.seq_id:
                self._filler(scheduler, slot, n, logits)
                entries.append((slot, n, logits))
            elif not own:
                own = True
                if (entry := self._own(scheduler, seq, n, logits, outputs)) is None:
                    return self._nothing(scheduler)
                entries.append(entry)
        if not own:  # a layout without this sequence's slot: it still makes progress
            self.followed = False
            if (entry := self._own(scheduler, seq, 0, True, outputs)) is None:
                return self._nothing(scheduler)
            entries.append(entry)
        return outputs, [seq], scheduler.shape_of(entries)

    @staticmethod
    def _nothing(scheduler) -> tuple[list, list, Shape]:
        """The sequence failed (out of its context) and left: no step, not even fillers."""
        scheduler.batch.n_tokens = 0
        return [], [], ()

    def _own(self, scheduler, seq, n: int, logits: bool, outputs: list) -> Entry | None:
        if seq.pending is not None:
            self.followed &= n == 1 and logits
            return scheduler.feed_token(seq, outputs) if scheduler.room(seq, 1) else None
        take = min(seq.feed[0].left, n or scheduler.chunk)
        if not scheduler.room(seq, take):
            return None
        entry = scheduler.feed_prompt(seq, take, outputs)
        self.followed &= entry == (seq.seq_id, n, logits)
        return entry

    def _filler(self, scheduler, slot: int, n: int, logits: bool) -> None:
        """`n` filler tokens in `slot`'s stream, positions going on from its last step; a
        stream that would run out of its context starts again at 0."""
        pos = self.positions.get(slot, 0)
        if pos + n > scheduler.n_ctx_seq:
            llama_cpp.llama_memory_seq_rm(scheduler.memory, slot, -1, -1)
            pos = 0
        for i in range(n):
            scheduler.put(FILLER, pos + i, slot, logits=logits and i == n - 1)
        self.positions[slot] = pos + n

    def clear(self, memory) -> None:
        """Free the filler streams once the replayed sequence has left."""
        for slot in self.positions:
            llama_cpp.llama_memory_seq_rm(memory, slot, -1, -1)
        self.positions.clear()
