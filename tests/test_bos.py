"""The BOS decision and the chat template reach every text fed to a model: scoring, calibration, perplexity,
fine-tuning; they are part of the score cache keys and of the records."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.prompts import qa_prompt
from junkdna_core.data.settings import get_setting
from junkdna_core.models.conventions import input_format, tokenizer_conventions
from junkdna_core.models.loading import LoadedModel
from junkdna_core.models.readers import _minilm_tokenizer
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import perplexity, prompt_ids, score_continuations
from junkdna_core.scoring.levels import cached_level_scores, dense_key, setting_items
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study.artifacts import calibration_batch
from junkdna_core.study.finetune import encode_inputs

REQUESTS = [
    ("Question: What is the capital of France?\nAnswer:", [" Paris", " London town", " Lyon"]),
    ("The cat sat on the ", ["mat", "hat and more"]),
    ("", ["Hello there", "x"]),
]


@pytest.fixture(scope="module")
def model(smollm2_tokenizer):
    torch.manual_seed(0)
    config = tiny_llama_config(len(smollm2_tokenizer), tie_word_embeddings=False, initializer_range=0.2)
    return transformers.LlamaForCausalLM(config).eval()


def _fed_together(model, tokenizer, requests, **options) -> list[list[int]]:
    """The token ids of every sequence the decoder is run on while scoring ``requests`` as one list."""
    seen = []
    handle = model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: seen.extend(args[0].tolist()))
    try:
        score_continuations(model, tokenizer, requests, progress=False, **options)
    finally:
        handle.remove()
    return seen


def _fed(model, tokenizer, requests, **options) -> list[list[int]]:
    """The token ids of every sequence the decoder is run on, each request scored on its own (so no prefix
    that several requests share is run apart from them)."""
    return [row for request in requests for row in _fed_together(model, tokenizer, [request], **options)]


def _reference(model, tokenizer, prefix: list[int], context: str, continuation: str) -> float:
    """Log-likelihood from one plain forward over prefix + context + continuation, split as lm-eval does."""
    ids = tokenizer(context + continuation, add_special_tokens=False).input_ids
    stripped = context.rstrip()
    context_ids = tokenizer(stripped, add_special_tokens=False).input_ids if stripped else []
    lead = prefix + context_ids or [tokenizer.bos_token_id]
    continuation_ids = ids[len(context_ids):]
    with torch.no_grad():
        logits = model(torch.tensor([lead + continuation_ids])).logits[0].double()
    logprobs = logits.log_softmax(-1)[len(lead) - 1 : -1]
    return logprobs.gather(-1, torch.tensor(continuation_ids)[:, None]).sum().item()


def test_smollm2_contexts_get_no_prefix_and_a_bos_tokenizer_gets_its_bos(model, smollm2_tokenizer, bos_tokenizer):
    bos = bos_tokenizer.bos_token_id
    plain = _fed(model, smollm2_tokenizer, REQUESTS[:2], batch_size=1)
    assert all(row[0] != bos for row in plain)
    assert all(row[0] == bos and row[1] != bos for row in _fed(model, bos_tokenizer, REQUESTS[:2], batch_size=1))
    together = _fed_together(model, bos_tokenizer, REQUESTS[:2], batch_size=1)
    assert together[0] == [bos] and all(row[0] != bos for row in together[1:])  # the shared BOS runs once
    never = input_format(tokenizer_conventions(bos_tokenizer), bos="never")
    assert _fed(model, bos_tokenizer, REQUESTS[:2], batch_size=1, inputs=never) == plain
    always = input_format(tokenizer_conventions(smollm2_tokenizer), bos="always")
    assert _fed(model, smollm2_tokenizer, REQUESTS[:2], batch_size=1, inputs=always) == \
        _fed(model, bos_tokenizer, REQUESTS[:2], batch_size=1)


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_log_likelihoods_with_bos_equal_a_plain_reference_scorer(model, bos_tokenizer, reuse_prefix):
    scores = score_continuations(model, bos_tokenizer, REQUESTS, batch_size=2, progress=False,
                                 reuse_prefix=reuse_prefix)
    for (context, continuations), row in zip(REQUESTS, scores):
        for text, score in zip(continuations, row):
            expected = _reference(model, bos_tokenizer, [bos_tokenizer.bos_token_id], context, text)
            assert score.loglik == pytest.approx(expected, abs=1e-4)


def test_an_empty_context_is_the_bos_token_alone(model, bos_tokenizer):
    fed = _fed(model, bos_tokenizer, [("", ["Hello there"])], batch_size=1)
    assert fed[0][:2] == [bos_tokenizer.bos_token_id] + bos_tokenizer("Hello", add_special_tokens=False).input_ids


def test_chat_template_renders_the_context_as_a_user_turn_without_a_second_bos(model, bos_tokenizer):
    inputs = input_format(tokenizer_conventions(bos_tokenizer), chat_template=True)
    assert inputs.chat_template is not None and inputs.describe()["chat_template"] is True
    [row] = _fed(model, bos_tokenizer, [("Question: 2+2?\nAnswer:", [" 4"])], batch_size=1, inputs=inputs)
    text = bos_tokenizer.decode(row)
    # the template's trailing newline moves into the continuation (lm-eval's whitespace rule): "\n4" is scored
    assert "<|im_start|>user\nQuestion: 2+2?\nAnswer:<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert row.count(bos_tokenizer.bos_token_id) == text.count("<|im_start|>")  # the template's own, no extra BOS
    [[chat]] = score_continuations(model, bos_tokenizer, [("Question: 2+2?\nAnswer:", [" 4"])], progress=False,
                                   inputs=inputs)
    assert chat.bytes == 1  # lm-eval drops the target delimiter under the chat template
    assert prompt_ids(bos_tokenizer, ["Question: 2+2?\nAnswer:"], inputs)[0][: len(row)] == row


def test_impossible_decisions_are_clear_errors(smollm2_tokenizer):
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.bos_token = None
    with pytest.raises(ConfigError, match="no BOS token"):
        input_format(tokenizer_conventions(tokenizer), bos="always")
    with pytest.raises(ConfigError, match="no chat template"):
        input_format(tokenizer_conventions(_minilm_tokenizer()), chat_template=True)
    with pytest.raises(ConfigError, match="auto, always, never"):
        input_format(tokenizer_conventions(smollm2_tokenizer), bos="sometimes")


def test_calibration_samples_start_with_the_decided_prefix(smollm2_tokenizer, bos_tokenizer):
    bos = bos_tokenizer.bos_token_id
    plain = calibration_batch(smollm2_tokenizer, samples=3, tokens=16)
    assert (plain.input_ids[:, 0] != bos).all()
    with_bos = calibration_batch(bos_tokenizer, samples=3, tokens=16)
    assert with_bos.input_ids.shape == (3, 16) and (with_bos.input_ids[:, 0] == bos).all()
    assert (with_bos.input_ids[:, 1:] != bos).all() or bos == bos_tokenizer.eos_token_id
    assert torch.equal(with_bos.input_ids[0, 1:], plain.input_ids[0, :15])  # the same text after the prefix
    never = calibration_batch(bos_tokenizer, samples=3, tokens=16,
                              inputs=input_format(tokenizer_conventions(bos_tokenizer), bos="never"))
    assert torch.equal(never.input_ids, plain.input_ids) and never.fingerprint == plain.fingerprint
    assert with_bos.fingerprint != plain.fingerprint  # the compressed models' cache keys follow


def test_perplexity_predicts_the_first_token_from_bos_only_when_decided(model, smollm2_tokenizer, bos_tokenizer):
    texts = ["Hello world, this is a perplexity test.", "Another short text here."]
    never = input_format(tokenizer_conventions(bos_tokenizer), bos="never")
    assert perplexity(model, bos_tokenizer, texts, progress=False, inputs=never) == \
        perplexity(model, smollm2_tokenizer, texts, progress=False)
    always = input_format(tokenizer_conventions(smollm2_tokenizer), bos="always")
    assert perplexity(model, bos_tokenizer, texts, progress=False) == \
        perplexity(model, smollm2_tokenizer, texts, progress=False, inputs=always)
    assert perplexity(model, bos_tokenizer, texts, progress=False) != \
        perplexity(model, smollm2_tokenizer, texts, progress=False)


def test_fine_tuning_inputs_keep_an_encoders_cls_and_sep_and_follow_the_decision_on_a_causal_lm(
        smollm2_tokenizer, bos_tokenizer):
    encoder = _minilm_tokenizer()
    encoded = encode_inputs(encoder, ["a film"], ["great"], 16)
    assert encoded["input_ids"][0, 0] == encoder.cls_token_id and encoder.sep_token_id in encoded["input_ids"][0]
    bos = bos_tokenizer.bos_token_id
    assert encode_inputs(bos_tokenizer, ["a film", "b"], [None, None], 16)["input_ids"][:, 0].tolist() == [bos, bos]
    never = input_format(tokenizer_conventions(bos_tokenizer), bos="never")
    stripped = encode_inputs(bos_tokenizer, ["a film", "b"], [None, None], 16, never)
    plain = encode_inputs(smollm2_tokenizer, ["a film", "b"], [None, None], 16)
    assert torch.equal(stripped["input_ids"], plain["input_ids"])
    assert torch.equal(stripped["attention_mask"], plain["attention_mask"])
    always = input_format(tokenizer_conventions(smollm2_tokenizer), bos="always")
    added = encode_inputs(smollm2_tokenizer, ["a film", "b"], [None, None], 16, always)
    assert torch.equal(added["input_ids"], encode_inputs(bos_tokenizer, ["a film", "b"], [None, None], 16)["input_ids"])


def test_the_decision_is_in_the_score_cache_key(tmp_path, model, bos_tokenizer):
    cache = ArtifactCache(tmp_path)
    setting = get_setting("setting2")
    level = setting.level("options-2")
    items = setting_items(setting, 3, 0)[level.task]
    calls = []

    def load():
        calls.append(1)
        return model, bos_tokenizer

    conventions = tokenizer_conventions(bos_tokenizer)
    for bos in ("auto", "never", "auto"):
        cached_level_scores(cache, dense_key("f" * 16), load, setting, level, items,
                            inputs=input_format(conventions, bos=bos), progress=False)
    assert len(calls) == 2  # auto and never are scored apart; the second auto is read from the cache
    kinds = [entry.kind for entry in cache.entries()]
    assert kinds.count("request-scores") == 2 and kinds.count("scores") == 2


def test_generated_answers_start_with_the_decided_prefix(tmp_path, model, bos_tokenizer):
    """--jd-metric's greedy answers are generated under the model's input format, as its scores are."""
    cache = ArtifactCache(tmp_path)
    setting = get_setting("setting6")
    level = setting.level("factoid")
    items = setting_items(setting, 3, 0, cache=cache)["triviaqa"]
    inputs = input_format(tokenizer_conventions(bos_tokenizer))
    assert inputs.prefix == (bos_tokenizer.bos_token_id,)

    def score(metrics):
        return cached_level_scores(cache, dense_key("b" * 16), lambda: (model, bos_tokenizer), setting, level, items,
                                   inputs=inputs, metrics=metrics, batch_size=1, progress=False)

    score(())  # the likelihoods are cached first: only generation runs the decoder below
    seen = []
    handle = model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: seen.extend(args[0].tolist()))
    try:
        answered = score(("em",))
    finally:
        handle.remove()
    prompts = [row for row in seen if len(row) > 1]  # batch size 1: each prompt unpadded, then one token a step
    expected = prompt_ids(bos_tokenizer, [qa_prompt(item) for item in items.items], inputs)
    assert sorted(prompts) == sorted(expected) and all(row[0] == inputs.prefix[0] != row[1] for row in prompts)
    assert len(answered.extra["em"]) == len(items)


def test_conventions_are_known_without_loading_a_memoised_model(tmp_path):
    from junkdna_core.models.loading import load_model

    loaded = load_model("random:tiny-llama", device="cpu", cache=ArtifactCache(tmp_path / "c"))
    loaded.model.save_pretrained(tmp_path / "tiny")
    loaded.tokenizer.save_pretrained(tmp_path / "tiny")
    cache = ArtifactCache(tmp_path / "memo")
    first = load_model(str(tmp_path / "tiny"), device="cpu", cache=cache)
    again = load_model(str(tmp_path / "tiny"), device="cpu", cache=cache)
    assert isinstance(again, LoadedModel) and "not loaded" in repr(again)
    assert again.conventions == first.conventions == tokenizer_conventions(loaded.tokenizer)
    assert "not loaded" in repr(again)


def test_the_decision_is_in_the_study_provenance_and_the_baseline_header(tmp_path, capsys):
    from junkdna_core.cli import main
    from junkdna_core.compress.registry import get_method
    from junkdna_core.models.loading import load_model
    from junkdna_core.results.claims import provenance
    from junkdna_core.study.sweep import run_study

    cache = ArtifactCache(tmp_path)
    dense = load_model("random:tiny-llama", device="cpu", cache=cache)
    configs = [get_method("magnitude").at_level(level) for level in (0.0, 0.5)]
    study = run_study(dense, get_setting("setting2"), configs, cache=cache, items=3, progress=False, bos="always")
    expected = input_format(dense.conventions, bos="always").describe()
    assert study.inputs == expected == provenance(study).more["inputs"]
    assert expected["prefix"] == [dense.tokenizer.bos_token_id] and expected["chat_template"] is False
    assert main(["baseline", "--model", "random:tiny-llama", "--settings", "setting2", "--items", "3",
                 "--cache", str(tmp_path), "--bos", "always"]) == 0
    assert "bos always: prefix ['<|im_start|>']" in capsys.readouterr().out
