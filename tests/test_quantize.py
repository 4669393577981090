import pytest
import torch

from mingrok.grok1 import dequantize
from mingrok.quantize import Int8Matrix
from mingrok.released import LEVELS


def _weight(rows: int = 64, columns: int = 40) -> torch.Tensor:
    """Columns whose magnitudes span 1e-3 to 10: one scale for all of them would flatten the small
    ones to zero."""
    generator = torch.Generator().manual_seed(0)
    magnitudes = torch.logspace(-3, 1, columns)
    return torch.randn(rows, columns, generator=generator) * magnitudes


def test_every_column_is_within_half_a_step_of_its_own_scale():
    weight = _weight()
    matrix = Int8Matrix.of(weight)
    assert matrix.values.dtype == torch.int8 and matrix.values.shape == (40, 64)
    assert matrix.scales.dtype == torch.bfloat16 and matrix.scales.shape == (40,)
    assert int(matrix.values.abs().max()) <= LEVELS
    step = matrix.scales.float()
    error = (matrix.dequantized() - weight).abs().max(dim=0).values
    assert torch.all(error <= step / 2 * 1.01 + 1e-12)
    # each column's scale follows its own largest entry (bf16-rounded), not the matrix's
    torch.testing.assert_close(step, weight.abs().amax(dim=0) / LEVELS, rtol=2**-8, atol=0)


def test_dequantized_is_grok1s_formula_with_one_block():
    matrix = Int8Matrix.of(_weight())
    expected = dequantize(matrix.values.t(), matrix.scales[None])
    torch.testing.assert_close(matrix.dequantized(), expected, rtol=0, atol=0)


def test_product_is_the_bf16_row_times_the_dequantized_weight():
    weight = _weight(rows=128, columns=96)
    matrix = Int8Matrix.of(weight)
    x = torch.randn(3, 128, generator=torch.Generator().manual_seed(1))
    product = matrix(x)
    assert product.dtype == torch.bfloat16 and product.shape == (3, 96)
    expected = x.bfloat16().float() @ matrix.dequantized()
    # the kernel accumulates in float32 and rounds the result to bfloat16 (8 significant bits)
    torch.testing.assert_close(product.float(), expected, rtol=2**-7, atol=1e-3)
    assert (product.float() - x @ weight).norm() < 0.02 * (x @ weight).norm()


def test_a_zero_column_stays_zero():
    weight = _weight(rows=32, columns=8)
    weight[:, 3] = 0
    matrix = Int8Matrix.of(weight)
    assert torch.all(matrix.values[3] == 0) and torch.isfinite(matrix.scales).all()
    assert torch.all(matrix(torch.ones(1, 32))[:, 3] == 0)


@pytest.mark.parametrize("shape", [(24, 8), (8, 16), (16,)])
def test_weights_the_kernel_cannot_multiply_are_refused(shape):
    with pytest.raises(ValueError, match=rf"multiple of 16 .* got shape \({shape[0]}"):
        Int8Matrix.of(torch.ones(shape))
