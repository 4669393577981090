import pytest
import torch

from mingrok import SHAKESPEARE, count_parameters, generate, pretrained
from mingrok.checkpoint import read_checkpoint
from mingrok.data import load_shakespeare, split_text
from mingrok.train import evaluate_nats_per_char, token_char_lengths


@pytest.fixture(scope="module")
def shipped():
    return pretrained.load("shakespeare")


def test_shipped_checkpoint_is_small_and_has_the_course_config(shipped):
    model, tokenizer = shipped
    path = pretrained.path("shakespeare")
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert model.config == SHAKESPEARE
    assert count_parameters(model.config)[0] <= 5_000_000
    assert sum(p.numel() for p in model.parameters()) == count_parameters(model.config)[0]
    assert tokenizer.vocab_size == model.config.vocab_size
    assert not model.training
    summary = read_checkpoint(path).metadata["summary"]
    assert summary["val_nats_per_char"] <= 1.50  # the target for the shipped model


def test_shipped_model_predicts_validation_text_well(shipped):
    model, tokenizer = shipped
    _, val_text = split_text(load_shakespeare())
    ids = torch.tensor(tokenizer.encode(val_text[:12_000]))  # a slice: ~8,700 tokens, 34 windows
    nats = evaluate_nats_per_char(model, ids, token_char_lengths(tokenizer))
    assert nats < 1.75  # a uniform guess over 128 tokens costs 3.5 nats/char


def test_shipped_model_writes_shakespeare_shaped_text(shipped):
    model, tokenizer = shipped
    prompt = tokenizer.encode("ROMEO:\n")
    text = tokenizer.decode(generate(model, prompt, 60, temperature=0))
    assert " the " in text or "\n" in text


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="shakespeare"):
        pretrained.load("hamlet")
