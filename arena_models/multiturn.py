"""Answer multi-turn prompts turn by turn, each answer conditioned on the model's own.

A prompt pool keeps MT-bench style `turns` as consecutive user messages. A model
answers the first, its answer is put after it, then it answers the second with
that context, and so on. Turns are batched across conversations: every
conversation's k-th turn goes to the backend in one call.
"""

from __future__ import annotations

from arena_models.backends.base import ChatBackend, Generation, Sampling, failed


def pending_turns(conversation: list[dict]) -> list[int]:
    """Indexes of the user messages the model must answer: each one not already
    followed by an assistant message."""
    return [
        i
        for i, m in enumerate(conversation)
        if m["role"] == "user"
        and (i + 1 == len(conversation) or conversation[i + 1]["role"] != "assistant")
    ]


def answer_turn_by_turn(
    backend: ChatBackend, conversations: list[list[dict]], sampling: Sampling
) -> list[list[Generation]]:
    """One Generation per pending user turn of each conversation, in turn order.

    When a turn fails, the later turns of that conversation are not asked (their
    context would be missing an answer) and carry an error naming the failed turn.
    """
    turns = [pending_turns(c) for c in conversations]
    answers: list[list[Generation]] = [[] for _ in conversations]
    # contexts[c]: conversation c so far, with the model's own answers in place.
    contexts: list[list[dict]] = [[] for _ in conversations]
    consumed = [0] * len(conversations)  # messages of the input already copied into contexts
    for k in range(max((len(t) for t in turns), default=0)):
        asked = []
        for c, conversation in enumerate(conversations):
            if k >= len(turns[c]):
                continue
            if answers[c] and answers[c][-1].error:
                answers[c].append(failed(f"turn {k + 1} not asked: turn {k} failed"))
                continue
            end = turns[c][k] + 1
            contexts[c].extend(conversation[consumed[c] : end])
            consumed[c] = end
            asked.append(c)
        if not asked:
            continue
        generations = backend.generate([list(contexts[c]) for c in asked], sampling)
        for c, generation in zip(asked, generations, strict=True):
            answers[c].append(generation)
            if generation.error is None:
                contexts[c].append({"role": "assistant", "content": generation.text})
    return answers
