import math

import pytest
import torch
import torch.nn.functional as F

from mingrok import MinGrok
from mingrok.checkpoint import load_model_state, read_checkpoint, save_checkpoint
from mingrok.tokenizer import MinGrokTokenizer
from mingrok.train import (
    TrainConfig,
    Trainer,
    evaluate_nats_per_char,
    learning_rate_at,
    make_optimizer,
    token_char_lengths,
)

from .conftest import tiny_config

VOCAB = 61


def _data(length: int, seed: int) -> torch.Tensor:
    """A learnable stream: a fixed cycle of ids with 10 % random replacements."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.arange(length) * 7 % VOCAB
    noise = torch.rand(length, generator=generator) < 0.1
    return torch.where(noise, torch.randint(0, VOCAB, (length,), generator=generator), ids)


def _trainer(config=None, model_changes=None, **train_changes) -> Trainer:
    torch.manual_seed(0)
    model = MinGrok(config or tiny_config(max_seq_len=16, **(model_changes or {})))
    train_config = TrainConfig(
        **{"steps": 12, "batch_size": 4, "warmup_steps": 3, "eval_interval": 4, **train_changes}
    )
    char_lengths = torch.full((VOCAB,), 1.5)
    return Trainer(model, _data(3000, 1), _data(400, 2), char_lengths, train_config)


NOISY = {
    "router_noise": "gaussian",
    "router_noise_std": 0.5,
    "dropout": 0.1,
    "router_aux_loss_coef": 0.01,
    "router_z_loss_coef": 0.001,
}


def test_a_few_steps_reduce_the_validation_loss():
    trainer = _trainer(steps=40, learning_rate=1e-2, min_learning_rate=1e-3, eval_interval=40)
    before = trainer.evaluate()
    history = trainer.run(quiet=True)
    assert history.val_nats_per_char[-1] < before - 0.3
    assert len(history.step) == 40 and history.step[-1] == 39
    assert history.eval_step == [0, 40]


def test_history_records_what_chapters_plot():
    history = _trainer(model_changes=NOISY).run(quiet=True)
    assert history.eval_step == [4, 8, 12]
    assert len(history.learning_rate) == len(history.train_loss) == 12
    fractions = torch.tensor(history.expert_fraction)  # [steps, layers, experts]
    assert fractions.shape == (12, 2, 4)
    torch.testing.assert_close(fractions.sum(-1), torch.ones(12, 2))
    assert all(a > 0 for a in history.aux_loss)
    for nats, bits in zip(history.val_nats_per_char, history.val_bits_per_char, strict=True):
        assert bits == pytest.approx(nats / math.log(2))
    # train nats/char = nats/token · tokens / chars, with 1.5 chars per token here
    assert history.train_nats_per_char[0] == pytest.approx(history.train_loss[0] / 1.5)


def test_same_seed_gives_an_identical_history_and_another_seed_does_not():
    first = _trainer(model_changes=NOISY).run(quiet=True)
    torch.manual_seed(123)  # the global RNG must not matter: the trainer seeds what it uses
    second = _trainer(model_changes=NOISY).run(quiet=True)
    assert first.train_loss == second.train_loss
    assert first.val_nats_per_char == second.val_nats_per_char
    assert first.expert_fraction == second.expert_fraction
    other = _trainer(model_changes=NOISY, seed=1).run(quiet=True)
    assert other.train_loss != first.train_loss


@pytest.mark.parametrize("autocast", ["off", "bfloat16"])
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path, autocast):
    uninterrupted = _trainer(model_changes=NOISY, autocast=autocast).run(quiet=True)

    class Interrupted(Exception):
        pass

    path = tmp_path / "checkpoint.safetensors"

    def save_then_stop(trainer: Trainer) -> None:
        save_checkpoint(
            path,
            trainer.model,
            tokenizer_name="test",
            metadata=trainer.state_metadata(),
            extra_tensors=trainer.state_tensors(),
        )
        if trainer.step_index == 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        _trainer(model_changes=NOISY, autocast=autocast).run(quiet=True, on_evaluate=save_then_stop)

    resumed = _trainer(model_changes=NOISY, autocast=autocast)
    torch.manual_seed(99)  # whatever happened in between
    checkpoint = read_checkpoint(path)
    load_model_state(resumed.model, checkpoint)
    resumed.load_state(checkpoint.training_state, checkpoint.metadata)
    assert resumed.step_index == 4
    history = resumed.run(quiet=True)
    assert history.train_loss == uninterrupted.train_loss
    assert history.val_nats_per_char == uninterrupted.val_nats_per_char


def test_resume_refuses_a_different_seed(tmp_path):
    trainer = _trainer(steps=2)
    trainer.run(quiet=True)
    other = _trainer(seed=5)
    with pytest.raises(ValueError, match="seed"):
        other.load_state(trainer.state_tensors(), trainer.state_metadata())


def test_resume_refuses_another_autocast(tmp_path):
    trainer = _trainer(steps=2, autocast="bfloat16")
    trainer.run(quiet=True)
    other = _trainer()
    with pytest.raises(ValueError, match="autocast='bfloat16', this run asks for 'off'"):
        other.load_state(trainer.state_tensors(), trainer.state_metadata())


def test_bfloat16_autocast_trains_float32_weights_close_to_a_float32_run(tmp_path):
    changes = {"steps": 40, "learning_rate": 1e-2, "min_learning_rate": 1e-3, "eval_interval": 40}
    float32 = _trainer(**changes).run(quiet=True)
    trainer = _trainer(autocast="bfloat16", **changes)
    before = trainer.evaluate()
    history = trainer.run(quiet=True)
    assert history.val_nats_per_char[-1] < before - 0.3
    # the matmuls really ran in bfloat16 (another loss), from the same float32 start
    assert history.train_loss != float32.train_loss
    assert history.train_loss[0] == pytest.approx(float32.train_loss[0], rel=1e-2)
    assert history.val_nats_per_char[-1] == pytest.approx(float32.val_nats_per_char[-1], abs=0.1)
    # master weights, optimizer moments and the checkpoint stay float32
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    moments = [v for state in trainer.optimizer.state.values() for k, v in state.items()]
    assert {m.dtype for m in moments} == {torch.float32}
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, trainer.model, tokenizer_name="test", metadata=trainer.state_metadata())
    checkpoint = read_checkpoint(path)
    assert {t.dtype for t in checkpoint.tensors.values()} == {torch.float32}
    assert TrainConfig.from_dict(checkpoint.metadata["train_config"]).autocast == "bfloat16"


def test_the_router_stays_float32_under_autocast():
    torch.manual_seed(0)
    router = MinGrok(tiny_config()).layers[0].moe.router
    x = torch.randn(10, router.linear.in_features)
    expected = router(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = router(x)
    assert stats.logits.dtype == torch.float32
    assert torch.equal(stats.logits, expected.logits)
    assert torch.equal(stats.experts, expected.experts)


def test_learning_rate_warms_up_then_follows_the_cosine_to_the_minimum():
    config = TrainConfig(steps=110, warmup_steps=10, learning_rate=1e-3, min_learning_rate=1e-4)
    assert learning_rate_at(0, config) == pytest.approx(1e-4)
    assert learning_rate_at(9, config) == pytest.approx(1e-3)
    assert learning_rate_at(60, config) == pytest.approx(5.5e-4)  # half way down the cosine
    assert learning_rate_at(110, config) == pytest.approx(1e-4)
    assert learning_rate_at(20, config, progress=1.0) == pytest.approx(1e-4)


def test_no_weight_decay_on_norms_embedding_and_router():
    model = MinGrok(tiny_config())
    decayed, undecayed = make_optimizer(model, TrainConfig()).param_groups
    assert decayed["weight_decay"] > 0 and undecayed["weight_decay"] == 0
    names = {id(p): n for n, p in model.named_parameters()}
    undecayed_names = {names[id(p)] for p in undecayed["params"]}
    assert "embed.weight" in undecayed_names
    assert "layers.0.moe.router.linear.weight" in undecayed_names
    assert "layers.0.pre_attention_norm.scale" in undecayed_names
    assert {names[id(p)] for p in decayed["params"]} >= {"layers.0.moe.w_gate"}


def test_evaluation_covers_every_token_but_the_first_once_in_full_context_windows():
    torch.manual_seed(0)
    model = MinGrok(tiny_config(max_seq_len=8)).eval()
    ids = torch.randint(0, VOCAB, (30,))  # windows of 8 at 0, 8, 16 and a short one at 24
    char_lengths = torch.rand(VOCAB) + 1
    expected_nats, expected_chars = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, 29, 8):
            inputs, targets = ids[start : start + 8], ids[start + 1 : start + 9]
            inputs = inputs[: len(targets)]
            logits = model(inputs[None]).logits[0]
            expected_nats += F.cross_entropy(logits, targets, reduction="sum").item()
            expected_chars += char_lengths[targets].sum().item()
    got = evaluate_nats_per_char(model, ids, char_lengths, batch_size=2)
    assert got == pytest.approx(expected_nats / expected_chars, rel=1e-6)
    assert expected_chars == pytest.approx(char_lengths[ids[1:]].sum().item())


def test_evaluation_of_a_model_with_nan_weights_raises_instead_of_reporting_nan():
    model = MinGrok(tiny_config(vocab_size=VOCAB))
    ids, char_lengths = torch.randint(0, VOCAB, (30,)), torch.ones(VOCAB)
    assert math.isfinite(evaluate_nats_per_char(model, ids, char_lengths))
    with torch.no_grad():
        model.layers[0].moe.w_out[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="nan nats/char: the model's outputs are not finite"):
        evaluate_nats_per_char(model, ids, char_lengths)


def test_char_lengths_of_the_mingrok_tokenizer():
    tokenizer = MinGrokTokenizer()
    lengths = token_char_lengths(tokenizer)
    assert lengths.shape == (128,)
    assert lengths[:65].eq(1).all()  # the characters
    assert lengths[tokenizer.encode("the")[0]] == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("batch_size", -1),
        ("learning_rate", 0.0),
        ("min_learning_rate", 1.0),
        ("autocast", "float16"),
        ("autocast", torch.bfloat16),
    ],
)
def test_invalid_train_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}=.* is invalid"):
        TrainConfig(**{field: value})


def test_an_unknown_autocast_lists_the_allowed_ones():
    with pytest.raises(
        ValueError, match=r"autocast='bf16' is invalid: it must be one of \('off', 'bfloat16'\)"
    ):
        TrainConfig(autocast="bf16")


def test_train_config_shares_the_config_machinery():
    config = TrainConfig(steps=7, eval_windows=3)
    assert TrainConfig.from_json(config.to_json()) == config
    assert config.replace(seed=2).to_dict() == {**config.to_dict(), "seed": 2}
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['bogus'\]"):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match=r"TrainConfig.warmup_steps=-1 is invalid"):
        config.replace(warmup_steps=-1)  # replace validates again
