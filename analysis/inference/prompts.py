"""Turns an analysis into chat messages for the engine."""

from __future__ import annotations

from analysis.models import Analysis

SYSTEM_PROMPT = (
    "You are an assistant helping a professional review the material in a case. "
    "Answer precisely and say when you are not sure."
)


def build_messages(analysis: Analysis) -> list[dict]:
    # The system prompt is folded into the user turn: Gemma chat templates have no system role.
    return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{analysis.question}"}]
