"""Which tokens of a chat are the assistant's, for any chat template, with or without ``{% generation %}``.

Real chat templates (Qwen2.5, SmolLM2, Llama 3) have no generation markers, so the loss mask is derived from
the template's own rendering: for each assistant turn ``i``, render ``messages[:i]`` with the generation
prompt and ``messages[:i+1]`` without; the text between the two is that turn (its content and end-of-turn
token; trailing whitespace after the end-of-turn token is left out: the model never has to produce it).
The whole conversation is then tokenized once, as the template renders it, and a token is the assistant's
when it overlaps one of those spans. Training (SFT) and evaluation (held-out loss) both use this.
"""

from __future__ import annotations

import json
from typing import Any

from training.config import RecipeError


def _render(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool, tools: Any = None) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, Any]],
                    tools: Any = None) -> tuple[str, list[tuple[int, int]]]:
    """The template's text for ``messages`` (and tool schemas) and the character span of each assistant turn."""
    messages = [{k: v for k, v in m.items() if v is not None} for m in messages]
    tools = json.loads(tools) if isinstance(tools, str) else tools  # stored as JSON text, as TRL reads it
    text = _render(tokenizer, messages, generation_prompt=False, tools=tools)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True, tools=tools)
        through = _render(tokenizer, messages[: i + 1], generation_prompt=False, tools=tools)
        if not (through.startswith(before) and text.startswith(through)):
            raise RecipeError("the chat template does not render a conversation as the sum of its turns (a turn "
                              "changes what comes before it), so assistant tokens cannot be located; use a "
                              "template with {% generation %} markers")
        spans.append((len(before), len(through.rstrip())))
    return text, spans


def tokenize_chat(tokenizer: Any, messages: list[dict[str, Any]], last_turn_only: bool = False,
                  tools: Any = None) -> dict[str, list[int]]:
    """``input_ids`` of the rendered chat and ``assistant_masks`` (1 on the assistant's tokens).

    ``last_turn_only`` marks only the last assistant turn (the target of an SFT example, for held-out loss).
    """
    text, spans = assistant_spans(tokenizer, messages, tools)
    if last_turn_only:
        spans = spans[-1:]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start < end_span and end > start_span for start_span, end_span in spans))
            for start, end in encoded["offset_mapping"]]
    return {"input_ids": list(encoded["input_ids"]), "assistant_masks": mask}
