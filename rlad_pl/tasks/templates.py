"""Prompt templates shared by the tasks: a task-specific compact form, a user format string,
or the tokenizer's chat template."""

from __future__ import annotations


def apply_template(template: str, *, compact: str, fields: dict, user_text: str, prefill: str,
                   tokenizer=None, system: str | None = None,
                   chat_template_kwargs: dict | None = None) -> str:
    """Render a prompt that ends with `prefill`.

    - "compact": `compact + " " + prefill` (for tiny whitespace-tokenized models);
    - "chat": the tokenizer's chat template over [system?, user_text] with the generation prompt
      and the template's own variables `chat_template_kwargs` (e.g. Qwen3's `enable_thinking`),
      then `prefill`;
    - anything else is a format string over `fields` (e.g. "{quiz}"), followed by `prefill`.
    """
    if template == "compact":
        return f"{compact} {prefill}" if prefill else compact
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError('template "chat" needs a tokenizer with a chat template')
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": user_text}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             **(chat_template_kwargs or {}))
        return text + prefill
    try:
        return template.format(**fields) + prefill
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"bad prompt template {template!r}: {err}; "
                         f"placeholders: {', '.join('{' + k + '}' for k in fields)}") from None
