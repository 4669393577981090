import pytest
import torch

from mingrok.device import resolve_device


def test_auto_is_cuda_when_present_else_cpu_and_names_pass_through():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "match"), [("gpu", "not a device name"), ("meta", "not supported")]
)
def test_bad_device_names_are_explained(name, match):
    with pytest.raises(ValueError, match=rf"device='{name}' .*{match}"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_asked_for_without_cuda_is_refused():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
