"""Text generation as Grok-1 does it (``runners.py``): prefill the prompt once, then one token per
step through the KV cache, with temperature, top-k and nucleus (top-p) sampling.

The token choice follows grok-1's ``sample_token``: divide the logits by the temperature, set the
disallowed ones to −1e10, keep the nucleus, draw from the categorical. Grok-1's nucleus rule
(``top_p_filter``): sort the logits ascending, take the first index where the cumulative
probability reaches 1 − p, and keep every logit ≥ the logit there. That keeps the most likely tokens
whose total probability exceeds p, plus any ties at the threshold.

Prompts of different lengths are **left**-padded and masked, so that every row's next token is
written at the same cache offset (one shared ``KVCache.length``). Past the context length the
cache slides: the oldest positions drop out. Grok-1 left-truncates a prompt longer than its context
length, and so do we.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

from .config import is_whole_number
from .decode import WEIGHTS, FusedDecoder
from .decode import supports as supports_fused
from .kv_cache import KVCache
from .model import MinGrok

DISALLOWED_LOGIT = -1e10  # grok-1's fill for filtered tokens (finite: never NaN in the softmax)

PromptIds = Sequence[int] | Sequence[Sequence[int]] | torch.Tensor


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` largest logits of each row (and ties with the k-th); fill the rest."""
    kth_largest = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, DISALLOWED_LOGIT)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Grok-1's nucleus filter on logits [..., V]: keep the smallest top set with mass > p.

    Sorted ascending, the first index i* with cumsum(probs)[i*] ≥ 1 − p gives the threshold logit;
    every logit ≥ it is kept. p = 1 keeps everything. The last index always counts as reached, so
    float rounding (a total of 0.99999994 < 1 − 1e-9) can never empty the set.
    """
    sorted_logits = logits.sort(dim=-1).values
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    reached = cumulative >= 1 - top_p
    reached[..., -1] = True
    threshold_index = reached.to(torch.int8).argmax(dim=-1, keepdim=True)  # first True
    threshold = sorted_logits.gather(-1, threshold_index)
    return logits.masked_fill(logits < threshold, DISALLOWED_LOGIT)


def choose_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits [B, V] → token ids [B]. Temperature 0 is greedy (argmax)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate(
    model: MinGrok,
    prompt_ids: PromptIds,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    *,
    use_cache: bool = True,
    fused: bool = True,
    weights: str = "float32",
    on_token: Callable[[torch.Tensor], None] | None = None,
) -> list[int] | list[list[int]] | torch.Tensor:
    """Continue ``prompt_ids`` by ``max_new_tokens`` tokens; return only the new ids.

    The new ids come in the prompt's form: a list of ids → a list, a list of lists of any lengths
    (left-padded and masked) → a list of lists, a tensor [T] or [B, T] → a tensor [N] or [B, N].
    Prompts longer than the context keep their last ``max_seq_len`` tokens. ``seed`` fixes the
    draws (None: a fresh random seed). ``use_cache=False`` recomputes the last ``max_seq_len``
    tokens at every step: the same logits while the text fits in the context, and the teaching
    baseline that shows what the cache saves. With the cache, one float32 sequence decodes through
    :class:`mingrok.decode.FusedDecoder` (the same logits from a third of the ops); ``fused=False``
    takes the eager step, ``model(token, cache=cache)``, which every other case uses.
    ``weights="int8"`` has the fused decoder store its matrices as int8 (1.5 to 2 times as fast,
    for a small measured cost in quality: :mod:`mingrok.decode`); it needs the fused path.
    ``on_token`` is called with each step's ids [B] as soon as they are chosen, before the next
    step runs: the command line streams text with it.
    """
    _check_sampling_args(model, max_new_tokens, temperature, top_k, top_p)
    as_tensor = isinstance(prompt_ids, torch.Tensor)
    batched = prompt_ids.dim() == 2 if as_tensor else _is_batch(prompt_ids)
    tokens, input_mask = _prompt_tensors(prompt_ids, batched, model)
    fusable = use_cache and fused and supports_fused(model, tokens.shape[0])
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is invalid: it must be one of {', '.join(WEIGHTS)}")
    if weights != "float32" and not fusable:
        raise ValueError(
            f"weights={weights!r} needs the fused decoder: one sequence of a float32 model, with "
            "use_cache=True and fused=True"
        )
    generator = torch.Generator(device=tokens.device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        chosen = choose_next_token(logits, temperature, top_k, top_p, generator)
        if on_token is not None:
            on_token(chosen)
        return chosen

    was_training = model.training
    model.eval()
    if not use_cache:
        decode = _decode_without_cache
    elif fusable:
        decode = partial(_decode_fused, weights=weights)
    else:
        decode = _decode_with_cache
    try:
        new = decode(model, tokens, input_mask, max_new_tokens, choose)  # [B, N]
    finally:
        model.train(was_training)
    new = new if batched else new[0]
    return new if as_tensor else new.tolist()


def _decode_with_cache(model, tokens, input_mask, max_new_tokens, choose) -> torch.Tensor:
    """Prefill the prompts once, then feed each chosen token alone through the KV cache."""
    cache = KVCache.for_model(model, tokens.shape[0])
    logits = model(tokens, input_mask, cache).logits[:, -1]  # prefill

    def step(token: torch.Tensor) -> torch.Tensor:  # the previous token, at the next position
        return model(token[:, None], cache=cache).logits[:, -1]

    return _decode_steps(logits, step, max_new_tokens, choose, tokens)


def _decode_fused(model, tokens, input_mask, max_new_tokens, choose, weights) -> torch.Tensor:
    """One sequence: prefill through the model, then each token through :class:`FusedDecoder`."""
    decoder = FusedDecoder(model, weights=weights)
    return _decode_steps(decoder.prefill(tokens), decoder.step, max_new_tokens, choose, tokens)


def _decode_steps(logits, step, max_new_tokens, choose, prompts) -> torch.Tensor:
    """The decode loop both cached paths share: choose a token from ``logits``, then ``step(token)``
    gives the next logits, ``max_new_tokens`` times (no step after the last choice)."""
    new_tokens: list[torch.Tensor] = []
    for index in range(max_new_tokens):
        if index:
            logits = step(new_tokens[-1])
        new_tokens.append(choose(logits))
    return _stacked(new_tokens, prompts)


def _decode_without_cache(model, tokens, input_mask, max_new_tokens, choose) -> torch.Tensor:
    """Run the last ``max_seq_len`` tokens of the whole text through the model at every step."""
    context = model.config.max_seq_len
    new_tokens: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        logits = model(tokens[:, -context:], input_mask[:, -context:]).logits[:, -1]
        new_tokens.append(choose(logits))
        tokens = torch.cat([tokens, new_tokens[-1][:, None]], dim=1)
        input_mask = torch.cat([input_mask, input_mask.new_ones(len(tokens), 1)], dim=1)
    return _stacked(new_tokens, tokens)


def _stacked(new_tokens: list[torch.Tensor], prompts: torch.Tensor) -> torch.Tensor:
    """The ids of each step [B] side by side: [B, N] (N = 0 too)."""
    if not new_tokens:
        return prompts.new_zeros(prompts.shape[0], 0)
    return torch.stack(new_tokens, dim=1)


def left_pad(
    prompts: Sequence[Sequence[int]], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of any lengths → tokens [B, L] (padded with id 0 on the left) and input_mask [B, L]
    (True = real token). The pad id is irrelevant: padded positions are masked as keys."""
    length = max(len(p) for p in prompts)
    tokens = torch.zeros(len(prompts), length, dtype=torch.long, device=device)
    input_mask = torch.zeros(len(prompts), length, dtype=torch.bool, device=device)
    for row, prompt in enumerate(prompts):
        if len(prompt):
            tokens[row, length - len(prompt) :] = torch.as_tensor(list(prompt), device=device)
            input_mask[row, length - len(prompt) :] = True
    return tokens, input_mask


def _is_batch(prompt_ids: Sequence[int] | Sequence[Sequence[int]]) -> bool:
    return len(prompt_ids) > 0 and all(isinstance(p, Sequence | torch.Tensor) for p in prompt_ids)


def _prompt_tensors(
    prompt_ids: PromptIds, batched: bool, model: MinGrok
) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens [B, T] and input_mask [B, T] on the model's device, cut to its context."""
    if isinstance(prompt_ids, torch.Tensor):
        if prompt_ids.dim() not in (1, 2):
            raise ValueError(
                f"prompt_ids tensor must be 1-D or [B, T]; got shape {tuple(prompt_ids.shape)}"
            )
        tokens = prompt_ids.reshape(-1, prompt_ids.shape[-1]).long()
        input_mask = torch.ones(tokens.shape, dtype=torch.bool)
    else:
        prompts = prompt_ids if batched else [prompt_ids]
        tokens, input_mask = left_pad([_as_list(p) for p in prompts])
    context, device = model.config.max_seq_len, model.embed.weight.device
    tokens, input_mask = tokens[:, -context:].to(device), input_mask[:, -context:].to(device)
    _check_prompts(input_mask)
    return tokens, input_mask


def _as_list(prompt: Sequence[int] | torch.Tensor) -> list[int]:
    return prompt.tolist() if isinstance(prompt, torch.Tensor) else list(prompt)


def _check_prompts(input_mask: torch.Tensor) -> None:
    """Every row needs a real token: generation continues the last one."""
    empty = (~input_mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"prompt {empty[0]} is empty: generation needs at least one token (this vocabulary has "
            "no beginning-of-sequence token; start with e.g. the id of '\\n')"
        )


def _check_sampling_args(
    model: MinGrok,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> None:
    if not is_whole_number(max_new_tokens, minimum=0):
        raise ValueError(f"max_new_tokens={max_new_tokens!r} is invalid: it must be an int >= 0")
    if not temperature >= 0:
        raise ValueError(f"temperature={temperature!r} is invalid: it must be >= 0 (0 = greedy)")
    if top_k is not None and not is_whole_number(top_k):
        raise ValueError(f"top_k={top_k!r} is invalid: it must be a positive int or None")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r} is invalid: it must be in (0, 1] or None")
    if not isinstance(model, MinGrok):
        raise TypeError(f"model must be a mingrok.MinGrok; got {type(model).__name__}")
