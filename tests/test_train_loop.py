"""The training loop with a tiny regression stage: cadences, clipping, budget and exact resume."""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from par_demo.models.transformer import Transformer
from par_demo.train.checkpoint import load_state
from par_demo.train.config import profile
from par_demo.train.loop import Stage, train
from par_demo.train import runtime
from par_demo.train.runtime import MetricsLog, OptimConfig, adamw, autocast, set_learning_rate

CONFIG = replace(profile("toy").classifier, steps=7, log_every=3, save_every=5,
                 optim=OptimConfig(lr=1e-2, warmup_steps=2, grad_clip=0.5))


class Regression(Stage):
    """A dropout MLP fitting fixed targets; records what the loop cannot be asked directly."""

    def __init__(self, device, eval_every=2, loss_scale=1.0):  # on the CPU whatever `device`
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
                                         torch.nn.Linear(8, 1))
        self.eval_every, self.loss_scale = eval_every, loss_scale
        self.x = torch.linspace(-1, 1, 64 * 4).reshape(64, 4)
        self.y = self.x.sum(1, keepdim=True) ** 2
        self.seen, self.losses, self.grad_norms = torch.zeros(64), [], []

    def loss(self, g):
        pick = torch.randint(64, (8,), generator=g)
        self.seen += torch.bincount(pick, minlength=64)
        loss = self.loss_scale * F.mse_loss(self.model(self.x[pick]), self.y[pick])
        self.losses.append(loss.item())
        return {"loss": loss}

    def after_step(self, step, g):
        self.grad_norms.append(float(torch.cat([p.grad.flatten()
                                                for p in self.model.parameters()]).norm()))
        return {"odd": step} if step % 2 else {}

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        held_out = float(F.mse_loss(self.model(self.x), self.y))
        self.model.train()
        return {"held_out": held_out}

    def extra_state(self):
        return {"seen": self.seen.clone()}

    def load_extra_state(self, extra):
        self.seen = extra["seen"]


def test_logs_checkpoints_and_evaluates_on_their_cadences(tmp_path):
    stage = Regression("cpu")
    model = train(CONFIG, lambda device: stage, tmp_path, "cpu", quiet=True)
    records, losses = MetricsLog(tmp_path).read(), stage.losses
    lines = [r for r in records if "loss" in r]
    assert [r["step"] for r in lines] == [3, 6, 7]
    assert lines[0]["loss"] == pytest.approx(sum(losses[:3]) / 3)
    assert lines[2]["loss"] == pytest.approx(losses[6])
    assert [r["odd"] for r in lines] == [2, 5, 7]  # the mean over the steps that reported it
    assert [r["step"] for r in records if "held_out" in r] == [2, 4, 6, 7]
    state = load_state(tmp_path)
    assert state.step == 7 and state.extra["seen"].sum() == 7 * 8
    for k, v in model.state_dict().items():
        assert torch.equal(state.model[k], v), k


def test_every_stage_clips_its_gradients(tmp_path):
    norms = {}
    for clip in (0.5, 0.0):
        stage = Regression("cpu", loss_scale=100.0)
        train(replace(CONFIG, optim=replace(CONFIG.optim, grad_clip=clip)), lambda d: stage,
              tmp_path / str(clip), "cpu", quiet=True)
        norms[clip] = stage.grad_norms
    assert max(norms[0.5]) <= 0.5 * (1 + 1e-5)
    assert min(norms[0.0]) > 0.5


def test_a_spent_budget_stops_with_a_checkpoint(tmp_path):
    train(CONFIG, Regression, tmp_path, "cpu", minutes=0, quiet=True)
    assert load_state(tmp_path).step == 0


def test_resumed_chunks_equal_the_uninterrupted_run(tmp_path):
    straight = train(CONFIG, Regression, tmp_path / "a", "cpu", quiet=True)
    for _ in range(3):
        train(CONFIG, Regression, tmp_path / "b", "cpu", chunk_steps=3, resume=True, quiet=True)
    a, b = load_state(tmp_path / "a"), load_state(tmp_path / "b")
    assert b.step == CONFIG.steps and torch.equal(a.extra["seen"], b.extra["seen"])
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(b.model[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match="batch_size"):
        train(replace(CONFIG, batch_size=3), Regression, tmp_path / "b", "cpu", resume=True,
              quiet=True)


def test_a_learning_rate_scale_applies_to_the_parameters_it_names_only():
    model = Transformer(profile("toy").generator.model)
    optimizer = adamw(model, OptimConfig(lr=1e-3, lr_scales=(("cls_embedding", 10.0),)))
    set_learning_rate(optimizer, 1e-3)
    rate_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        expected = 1e-2 if "cls_embedding" in name else 1e-3
        assert rate_of[id(p)] == pytest.approx(expected), name
    assert optimizer.param_groups[0]["weight_decay"] > 0, "the decayed matrices come first"


@pytest.mark.parametrize("has_bf16", [False, True])
def test_cpu_bf16_autocasts_only_on_a_cpu_with_bf16_instructions(monkeypatch, has_bf16):
    """Emulated bf16 made a training step 2.4-2.9x slower than fp32, so a profile's cpu_bf16
    is a request the CPU's flags may decline."""
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has_bf16)
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    with autocast(torch.device("cpu"), cpu_bf16=True):
        product = a @ b
    assert product.dtype == (torch.bfloat16 if has_bf16 else torch.float32)
    with autocast(torch.device("cpu"), cpu_bf16=False):
        assert (a @ b).dtype == torch.float32
