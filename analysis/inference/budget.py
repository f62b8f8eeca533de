"""The context budget: make the media fit, or say clearly why they cannot.

The context holds the prompt *and* the answer. The question and the instructions are never
cut; media are (fewer frames, fewer audio segments, page images before pages), step by step,
always from the item that costs the most, so one long video does not starve a short clip.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.inference.plan import EVEN, PAGES, Section, even
from analysis.inference.types import PromptTooLong

# Leave at least this many tokens for the answer, or refuse the prompt as too long.
MIN_ANSWER_TOKENS = 16
# Room kept for the question when media are cut, so that a follow-up question of up to this
# many tokens gets the same frames — and so the same cached media prefix (cache.py).
QUESTION_ALLOWANCE = 256


@dataclass(frozen=True)
class Budget:
    n_ctx: int
    answer: int  # tokens reserved for the answer
    question: int  # tokens reserved for the question and the fixed text around the media

    @property
    def media(self) -> int:
        return self.n_ctx - self.answer - self.question


def make_budget(n_ctx: int, max_tokens: int, text_tokens: int) -> Budget:
    """The budget for a prompt whose text without any media is `text_tokens` long.

    Raises PromptTooLong when the question alone leaves no room for an answer.
    """
    if text_tokens + MIN_ANSWER_TOKENS > n_ctx:
        raise PromptTooLong(
            f"The question is too long for the model's context: {text_tokens} tokens, "
            f"the context holds {n_ctx} including the answer."
        )
    answer = max(MIN_ANSWER_TOKENS, min(max_tokens, n_ctx // 4, n_ctx - text_tokens))
    question = max(text_tokens, min(QUESTION_ALLOWANCE, n_ctx // 8))
    return Budget(n_ctx=n_ctx, answer=answer, question=min(question, n_ctx - answer))


def fit(sections: list[Section], room: int) -> bool:
    """Shrink sections until their units cost at most `room` tokens; False if impossible.

    Unit costs must be filled in. Returns True when anything was dropped.
    """
    reduced = False
    while sum(section.cost for section in sections) > room:
        candidates = [s for s in sections if _can_shrink(s)]
        if not candidates:
            total = sum(section.cost for section in sections)
            raise PromptTooLong(
                f"The media do not fit the model's context even reduced to one frame, segment "
                f"or page each: {total} tokens of media, room for {max(room, 0)}. Ask about "
                "fewer items, or ask an administrator for a model with a larger context."
            )
        _shrink(max(candidates, key=lambda s: s.cost))
        reduced = True
    return reduced


def _can_shrink(section: Section) -> bool:
    if section.strategy == EVEN:
        return len(section.kept) > 1
    if section.strategy == PAGES:
        return len(section.kept) > 1 or bool(_optional_live(section))
    return False


def _shrink(section: Section) -> None:
    if section.strategy == EVEN:
        picks = even(len(section.groups), len(section.kept) - 1)
        section.kept = [section.groups[i] for i in picks]
    elif optional := _optional_live(section):
        section.dropped.add(optional[-1])  # the last page image goes first
    else:
        section.kept = section.kept[:-1]  # then the last page


def _optional_live(section: Section) -> list[int]:
    kept = set(section.kept)
    return [
        i
        for i, unit in enumerate(section.units)
        if unit.optional and unit.group in kept and i not in section.dropped
    ]
