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

from collections.abc import Sequence

import torch

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
) -> list[int] | list[list[int]] | torch.Tensor:
    """Continue ``prompt_ids`` by ``max_new_tokens`` tokens; return only the new ids.

    ``prompt_ids``: a list of ids (→ a list), a list of lists of any lengths (→ a list of lists),
    a 1-D tensor (→ 1-D tensor) or a [B, T] tensor (→ [B, max_new_tokens] tensor).
    ``seed`` fixes the draws (None: a fresh random seed). ``use_cache=False`` recomputes the last
    ``max_seq_len`` tokens at every step: the same logits while the text fits in the context, and
    the teaching baseline that shows what the cache saves.
    """
    prompts, kind = _as_prompt_lists(prompt_ids)
    _check_sampling_args(model, max_new_tokens, temperature, top_k, top_p)
    device = model.embed.weight.device
    context = model.config.max_seq_len
    tokens, input_mask = left_pad([p[-context:] for p in prompts], device)
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    was_training = model.training
    model.eval()
    new_tokens: list[torch.Tensor] = []
    cache = KVCache.for_model(model, len(prompts)) if use_cache else None
    if cache is not None:
        logits = model(tokens, input_mask, cache).logits[:, -1]  # prefill
    for step in range(max_new_tokens):
        if cache is None:
            logits = model(tokens[:, -context:], input_mask[:, -context:]).logits[:, -1]
        next_token = choose_next_token(logits, temperature, top_k, top_p, generator)
        new_tokens.append(next_token)
        if cache is None:
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            input_mask = torch.cat([input_mask, input_mask.new_ones(len(prompts), 1)], dim=1)
        elif step < max_new_tokens - 1:
            logits = model(next_token[:, None], cache=cache).logits[:, -1]
    model.train(was_training)
    new = torch.stack(new_tokens, dim=1) if new_tokens else tokens.new_zeros(len(prompts), 0)
    if kind == "tensor_2d":
        return new
    if kind == "tensor_1d":
        return new[0]
    return new[0].tolist() if kind == "list" else new.tolist()


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


def _as_prompt_lists(prompt_ids: PromptIds) -> tuple[list[list[int]], str]:
    if isinstance(prompt_ids, torch.Tensor):
        if prompt_ids.dim() == 1:
            prompts, kind = [prompt_ids.tolist()], "tensor_1d"
        elif prompt_ids.dim() == 2:
            prompts, kind = prompt_ids.tolist(), "tensor_2d"
        else:
            raise ValueError(
                f"prompt_ids tensor must be 1-D or [B, T]; got shape {tuple(prompt_ids.shape)}"
            )
    elif len(prompt_ids) and all(isinstance(p, Sequence | torch.Tensor) for p in prompt_ids):
        prompts = [list(p.tolist() if isinstance(p, torch.Tensor) else p) for p in prompt_ids]
        kind = "lists"
    else:
        prompts, kind = [list(prompt_ids)], "list"
    for row, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(
                f"prompt {row} is empty: generation needs at least one token (this vocabulary has "
                "no beginning-of-sequence token; start with e.g. the id of '\\n')"
            )
    return prompts, kind


def _check_sampling_args(
    model: MinGrok,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> None:
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens={max_new_tokens!r} is invalid: it must be an int >= 0")
    if not temperature >= 0:
        raise ValueError(f"temperature={temperature!r} is invalid: it must be >= 0 (0 = greedy)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} is invalid: it must be a positive int or None")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r} is invalid: it must be in (0, 1] or None")
    if not isinstance(model, MinGrok):
        raise TypeError(f"model must be a mingrok.MinGrok; got {type(model).__name__}")
