"""A tokenizer's own conventions: the special tokens it adds by default, its padding side, its length limit.

Read off the tokenizer itself (what it adds to a text with and without
``add_special_tokens``), never looked up by model name: Llama-2/3, Mistral and
Gemma tokenizers put a BOS token before every text, SmolLM2's and Qwen's add
nothing, and a model scored without the token it was trained with loses much of
its accuracy. Every text the suite feeds a model (scoring contexts, calibration
samples, perplexity texts, generation prompts, fine-tuning inputs) starts with
:func:`context_prefix`, decided once per model and recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import BosPolicy, parse_bos_policy

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Tokenizers without a real limit report a huge sentinel (transformers' VERY_LARGE_INTEGER, 1e30).
_NO_LIMIT = 10**9
# A probe with letters, a space and punctuation: enough for any tokenizer to show what it adds around a text.
_PROBE = "Hello world."


@dataclass(frozen=True)
class TokenizerConventions:
    """What a tokenizer does by default, asked of the tokenizer itself.

    ``prefix`` / ``suffix``: the special token ids its default encoding puts before
    and after a text (``add_special_tokens=True``), e.g. ``(1,)`` for a Llama BOS;
    ``adds_bos`` / ``adds_eos``: whether those include its BOS / EOS token.
    ``max_length``: ``model_max_length`` when it is a real limit, else None.
    ``bos_token`` / ``prefix_tokens``: the BOS token and the prefix as token strings (for records).
    ``chat_template``: a digest of the tokenizer's chat template, None when it has none.
    """

    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    padding_side: str
    max_length: int | None
    bos_token: str | None = None
    prefix_tokens: tuple[str, ...] = ()
    chat_template: str | None = None

    @property
    def adds_bos(self) -> bool:
        """True when the default encoding starts with the BOS token."""
        return self.bos_token_id is not None and self.bos_token_id in self.prefix

    @property
    def adds_eos(self) -> bool:
        """True when the default encoding ends with the EOS token."""
        return self.eos_token_id is not None and self.eos_token_id in self.suffix

    def describe(self) -> dict[str, Any]:
        """The conventions as JSON-ready data (records, ``junkdna check-model``)."""
        return {**asdict(self), "prefix": list(self.prefix), "suffix": list(self.suffix),
                "prefix_tokens": list(self.prefix_tokens), "adds_bos": self.adds_bos, "adds_eos": self.adds_eos}

    @classmethod
    def from_description(cls, data: dict[str, Any]) -> TokenizerConventions:
        """The conventions :meth:`describe` gave (the derived ``adds_*`` flags are recomputed)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls(**{**values, **{k: tuple(values[k]) for k in ("prefix", "suffix", "prefix_tokens") if k in values}})


def _special_run(ids: list[int], specials: set[int]) -> int:
    """How many of ``ids``, from the start, are special token ids."""
    count = 0
    while count < len(ids) and ids[count] in specials:
        count += 1
    return count


def tokenizer_conventions(tokenizer: PreTrainedTokenizerBase) -> TokenizerConventions:
    """The conventions of ``tokenizer``: compare its default encoding of a probe text with the plain one."""
    plain = list(tokenizer(_PROBE, add_special_tokens=False)["input_ids"])
    default = list(tokenizer(_PROBE)["input_ids"])
    specials = set(tokenizer.all_special_ids)
    if len(default) >= len(plain) and any(default[i:i + len(plain)] == plain for i in range(len(default))):
        start = next(i for i in range(len(default)) if default[i:i + len(plain)] == plain)
        prefix, suffix = default[:start], default[start + len(plain):]
    else:  # the special tokens changed how the text itself is cut: take the special ids at either end
        lead = _special_run(default, specials)
        trail = _special_run(default[lead:][::-1], specials)
        prefix, suffix = default[:lead], default[len(default) - trail:]
    limit = getattr(tokenizer, "model_max_length", None)
    template = getattr(tokenizer, "chat_template", None)
    return TokenizerConventions(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        prefix=tuple(prefix),
        suffix=tuple(suffix),
        padding_side=str(getattr(tokenizer, "padding_side", "right")),
        max_length=int(limit) if isinstance(limit, int) and 0 < limit < _NO_LIMIT else None,
        bos_token=tokenizer.bos_token,
        prefix_tokens=tuple(tokenizer.convert_ids_to_tokens(prefix)),
        chat_template=_digest(template) if isinstance(template, str) else None,
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def context_prefix(conventions: TokenizerConventions, policy: BosPolicy = "auto") -> tuple[int, ...]:
    """The token ids every text fed to the model starts with.

    ``auto``: what the tokenizer puts before a text by default (a Llama, Mistral
    or Gemma tokenizer its BOS token, SmolLM2's and Qwen's nothing); ``always``:
    the BOS token (ConfigError when the tokenizer has none); ``never``: nothing.
    """
    policy = parse_bos_policy(policy)
    if policy == "never":
        return ()
    if policy == "always":
        if conventions.bos_token_id is None:
            raise ConfigError("--jd-bos always, but the tokenizer has no BOS token; use --jd-bos auto or never")
        return (conventions.bos_token_id,)
    return conventions.prefix


@dataclass(frozen=True)
class InputFormat:
    """How every text is fed to one model: the token ids it starts with, and whether prompts go through
    the model's chat template. Decided once per model by :func:`input_format`; part of every score's
    cache key and of every record.

    ``bos``: the policy it was decided by; ``prefix`` / ``prefix_tokens``: the ids (and their token
    strings) put before every text; ``chat_template``: the digest of the chat template applied to prompts,
    None when prompts are fed as they are.
    """

    bos: BosPolicy
    prefix: tuple[int, ...]
    prefix_tokens: tuple[str, ...]
    chat_template: str | None = None

    def describe(self) -> dict[str, Any]:
        """The decision as JSON-ready data (cache keys, records)."""
        return {"bos": self.bos, "prefix": list(self.prefix), "prefix_tokens": list(self.prefix_tokens),
                "chat_template": self.chat_template is not None, "chat_template_digest": self.chat_template}


def input_format(conventions: TokenizerConventions, *, bos: BosPolicy = "auto", chat_template: bool = False
                 ) -> InputFormat:
    """The :class:`InputFormat` of a model with these tokenizer conventions, under ``--jd-bos`` and
    ``--jd-chat-template``.

    The prefix is :func:`context_prefix`. ``chat_template`` needs a tokenizer that has one (ConfigError
    otherwise); prompts are then rendered as one user turn followed by the assistant's turn, as
    lm-evaluation-harness's ``--apply_chat_template``.
    """
    policy = parse_bos_policy(bos)
    prefix = context_prefix(conventions, policy)
    if not isinstance(chat_template, bool):
        raise ConfigError(f"chat_template must be True or False; got {chat_template!r}")
    if chat_template and conventions.chat_template is None:
        raise ConfigError("--jd-chat-template is on, but the tokenizer has no chat template; "
                          "drop the option or use a model whose tokenizer defines one")
    # the prefix is either the tokenizer's own, or nothing, or (for "always") its BOS token alone
    tokens = conventions.prefix_tokens if prefix == conventions.prefix else (str(conventions.bos_token),) * len(prefix)
    return InputFormat(policy, prefix, tokens, conventions.chat_template if chat_template else None)
