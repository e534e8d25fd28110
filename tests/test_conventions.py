"""Tokenizer conventions are read off the tokenizer: what it adds by default, never a list of model names."""

from __future__ import annotations

import copy

import pytest

from junkdna_core.config.errors import ConfigError
from junkdna_core.config.parsing import parse_bos_policy
from junkdna_core.models.conventions import context_prefix, tokenizer_conventions
from junkdna_core.models.readers import _minilm_tokenizer


def test_smollm2_adds_nothing(smollm2_tokenizer):
    conventions = tokenizer_conventions(smollm2_tokenizer)
    assert conventions.prefix == () and conventions.suffix == ()
    assert not conventions.adds_bos and not conventions.adds_eos
    assert conventions.max_length is None  # SmolLM2's tokenizer reports the "no limit" sentinel
    assert context_prefix(conventions) == ()
    assert context_prefix(conventions, "always") == (smollm2_tokenizer.bos_token_id,)
    assert context_prefix(conventions, "never") == ()


def test_a_tokenizer_that_adds_bos_gets_it(bos_tokenizer):
    conventions = tokenizer_conventions(bos_tokenizer)
    assert conventions.prefix == (bos_tokenizer.bos_token_id,) and conventions.adds_bos
    assert context_prefix(conventions, "auto") == (bos_tokenizer.bos_token_id,)
    assert context_prefix(conventions, "always") == (bos_tokenizer.bos_token_id,)
    assert context_prefix(conventions, "never") == ()
    assert conventions.describe()["adds_bos"] is True


def test_an_encoder_tokenizer_shows_its_cls_and_sep():
    tokenizer = _minilm_tokenizer()
    conventions = tokenizer_conventions(tokenizer)
    assert conventions.prefix == (tokenizer.cls_token_id,)
    assert conventions.suffix == (tokenizer.sep_token_id,)
    assert conventions.max_length == 512


def test_always_without_a_bos_token_is_a_clear_error(smollm2_tokenizer):
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.bos_token = None
    with pytest.raises(ConfigError, match="no BOS token"):
        context_prefix(tokenizer_conventions(tokenizer), "always")


@pytest.mark.parametrize("text, expected", [("auto", "auto"), (" Always ", "always"), ("NEVER", "never")])
def test_bos_policy_parses(text, expected):
    assert parse_bos_policy(text) == expected


def test_an_unknown_bos_policy_names_the_choices():
    with pytest.raises(ConfigError, match="auto, always, never; got 'sometimes'"):
        parse_bos_policy("sometimes")
