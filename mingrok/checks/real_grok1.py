"""Checks for chapter 11 (the real Grok-1: its released files and its tokenizer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..released import ALLOWED_GLOBALS, QuantizedWeight8bit
from ._core import CheckFailed, call, exercise

# (lead dims, K, N, G): one scale row (G = 1, as query/key/value and moe/linear), eight blocks of
# an expert stack's rows (G = 8, as the row-split moe/linear_1), and four blocks of two rows.
_SHAPES = (((), 16, 6, 1), ((2,), 32, 5, 8), ((), 8, 3, 4))


def _quantized_cases() -> list[QuantizedWeight8bit]:
    """Random int8 values and bfloat16 scales whose products need rounding to bfloat16 (an int8
    value has up to 7 significant bits, a bfloat16 scale 8: their product up to 15)."""
    generator = torch.Generator().manual_seed(11)
    cases = []
    for lead, k, n, groups in _SHAPES:
        q = torch.randint(-127, 128, (*lead, k, n), generator=generator, dtype=torch.int8)
        s = (torch.rand(*lead, groups, n, generator=generator) * 0.02 + 1e-3).to(torch.bfloat16)
        cases.append(QuantizedWeight8bit(q, s))
    return cases


def _rows_per_block(q: torch.Tensor, s: torch.Tensor) -> int:
    return q.shape[-2] // s.shape[-2]


# What learners write instead, each with the hint that names the mistake.
_WRONG_DEQUANTIZATIONS: tuple[tuple[str, Callable], ...] = (
    (
        "round the product to bfloat16, as xAI's code does: weight.astype(bfloat16) * scales is a "
        "bfloat16 multiplication, so each value is bf16(q·s), not the float32 q·s",
        lambda q, s: q.float() * s.float().repeat_interleave(_rows_per_block(q, s), dim=-2),
    ),
    (
        "row i belongs to block ⌊i / (K/G)⌋: consecutive rows share a row of scales, so repeat "
        "each scale row K/G times in place (repeat_interleave), not the whole block of G rows",
        lambda q, s: (
            q.to(torch.bfloat16) * s.repeat(*[1] * (s.dim() - 2), _rows_per_block(q, s), 1)
        ).float(),
    ),
    (
        "each block of K/G rows has its own row of scales: scales[..., g, :] multiplies rows "
        "g·K/G to (g+1)·K/G − 1, not only the first row of scales for every block",
        lambda q, s: (q.to(torch.bfloat16) * s[..., :1, :]).float(),
    ),
)


@exercise("11.1")
def check_dequantize_released(dequantize_released) -> str:
    """``dequantize_released(weight, scales)``: int8 [..., K, N] × bfloat16 [..., G, N] → float."""
    cases = _quantized_cases()
    answers = []
    for case in cases:
        got = call(dequantize_released, case.weight.clone(), case.scales.clone())
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"return a tensor; got {type(got).__name__}")
        if tuple(got.shape) != case.shape:
            raise CheckFailed(
                f"weight {case.shape} with scales {tuple(case.scales.shape)}: return the weight's "
                f"shape {case.shape}, not {tuple(got.shape)}"
            )
        answers.append(got.detach().float())
    right = [case.dequantize() for case in cases]
    if all(torch.equal(a, r) for a, r in zip(answers, right, strict=True)):
        return "each value is bf16(q · s), with the scale row of its block of K/G rows."
    for hint, wrong in _WRONG_DEQUANTIZATIONS:
        wrong_answers = [wrong(case.weight, case.scales) for case in cases]
        if all(torch.equal(a, w) for a, w in zip(answers, wrong_answers, strict=True)):
            raise CheckFailed(hint)
    case, got, expected = next(
        (case, got, expected)
        for case, got, expected in zip(cases, answers, right, strict=True)
        if not torch.equal(got, expected)
    )
    index = tuple(int(i) for i in (got != expected).nonzero()[0])
    *_, row, column = index
    block = row // (case.shape[-2] // case.groups)
    raise CheckFailed(
        f"weight {case.shape} with G = {case.groups}: at {index} you gave {got[index].item():.6g}, "
        f"expected bf16(q·s) = {expected[index].item():.6g} (q = {int(case.weight[index])}, "
        f"s = scales[..., {block}, {column}] = "
        f"{case.scales[(*index[:-2], block, column)].item():.6g})"
    )


# Globals a pickle may name, and whether a reader of the release admits them.
_RELEASE_GLOBALS = tuple(tuple(name.rsplit(".", 1)) for name in ALLOWED_GLOBALS)
_HOSTILE_GLOBALS: tuple[tuple[tuple[str, str], str], ...] = (
    (
        ("posix", "system"),
        "a deny-list always misses one: pickle names os.system as posix.system (nt.system on "
        "Windows), and there are many more; admit only the exact globals the release holds",
    ),
    (
        ("numpy.testing._private.utils", "runstring"),
        "a module prefix is not a safe rule: numpy itself has functions that run code "
        "(numpy.testing._private.utils.runstring executes a string); compare (module, name) pairs",
    ),
    (
        ("__main__", "__builtins__.exec"),
        "'__main__' with any name is not safe: protocol 4 looks up dotted names, so "
        "__main__.__builtins__.exec is Python's exec; admit only __main__.QuantizedWeight8bit",
    ),
    (
        ("antigravity", "dtype"),
        "a name alone is not enough: finding a global imports its module first, and importing a "
        "module runs its code (antigravity opens a web browser); compare (module, name) pairs",
    ),
    (("builtins", "eval"), "builtins.eval runs any expression it is given"),
    (("subprocess", "Popen"), "subprocess.Popen starts any program"),
    (("torch", "load"), "torch.load reads another pickle, with its own rules"),
    (("numpy", "load"), "numpy.load with allow_pickle=True reads another pickle"),
)
_NUMPY2 = ("numpy._core.multiarray", "_reconstruct")


@exercise("11.2")
def check_allowed_global(is_allowed) -> str:
    """``is_allowed(module, name) -> bool``: the allow-list of a released-checkpoint reader."""
    for module, name in _RELEASE_GLOBALS:
        if not call(is_allowed, module, name):
            if (module, name) == _NUMPY2:
                raise CheckFailed(
                    "numpy 2 pickles arrays with numpy._core.multiarray._reconstruct (numpy 1, "
                    "which wrote the release, with numpy.core.multiarray): admit both names"
                )
            raise CheckFailed(
                f"you refused {module}.{name}, which every released file needs; the release "
                f"names exactly: {', '.join(ALLOWED_GLOBALS)}"
            )
    for (module, name), hint in _HOSTILE_GLOBALS:
        if call(is_allowed, module, name):
            raise CheckFailed(f"you admitted {module}.{name}: {hint}")
    return f"the {len(ALLOWED_GLOBALS)} globals of the release are admitted, nothing else."
