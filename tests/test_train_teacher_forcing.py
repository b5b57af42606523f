"""The training layout is the inference layout: teacher-forced logits of one batch that mixes
schedules equal what the cached step loop computes, slot for slot."""
import numpy as np
import pytest
import torch

from par_demo.models.slots import slot_layout
from par_demo.models.transformer import KVCache, ModelArgs, SlotInputs, Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, generate
from par_demo.train.config import ScheduleMixture
from par_demo.train.teacher_forcing import (draw_rows, layout_bank, mixture_bank,
                                            teacher_forcing_batch)

GRID = 8
SPECS = [
    ScheduleSpec(grid=GRID, order="raster", parallel=1),
    ScheduleSpec(grid=GRID, order="distant", parallel=1),
    ScheduleSpec(grid=GRID, order="raster", parallel=4, init_tokens=True),
    ScheduleSpec(grid=GRID, order="distant", parallel=4, init_tokens=False),
    ScheduleSpec(grid=GRID, order="distant", parallel=16, init_tokens=True),
    ScheduleSpec(grid=GRID, order="distant", parallel=16, init_tokens=False),
    ScheduleSpec(grid=GRID, order="random", parallel=4, init_tokens=True, seed=3),
]


def any_order_model(seed=0) -> Transformer:
    args = ModelArgs(dim=32, n_layer=2, n_head=2, multiple_of=16, vocab_size=24, grid=GRID,
                     num_classes=5, num_fillers=15, target_aware=True)
    g = torch.Generator().manual_seed(seed)
    model = Transformer(args).init_weights(g)
    torch.nn.init.normal_(model.output.weight, std=0.5, generator=g)  # init leaves it at zero
    return model.eval()


def cached_step_logits(model, schedule, grid_L: torch.Tensor, cls: int) -> torch.Tensor:
    """Logits [S, V] of every slot, one step at a time through the KV cache (as the sampler)."""
    layout = slot_layout(schedule)
    slots = SlotInputs(*(torch.from_numpy(a) for a in
                         (layout.kind, layout.cell, layout.filler, layout.target)))
    cache = KVCache.empty(model.args, 1, GRID * GRID, "cpu", torch.float32)
    fed = grid_L[torch.from_numpy(layout.cell.clip(min=0))]
    out = []
    for t in range(schedule.num_steps):
        s0, s1 = int(layout.starts[t]), int(layout.starts[t + 1])
        out.append(model(torch.tensor([cls]), fed[None, s0:s1], slots[s0:s1], cache, start=s0)[0])
    return torch.cat(out)


@torch.no_grad()
def test_teacher_forcing_matches_cached_steps_for_a_mixed_batch():
    model = any_order_model()
    schedules = [build_schedule(s) for s in SPECS]
    bank = layout_bank(schedules)
    g = torch.Generator().manual_seed(1)
    grids = torch.randint(24, (len(SPECS), GRID * GRID), generator=g)
    cond = torch.arange(len(SPECS)) % 5
    batch = teacher_forcing_batch(grids, cond, torch.arange(len(SPECS)), bank)
    forced = model(batch.cond, batch.tokens, batch.slots, mask_BSS=batch.mask)
    for b, schedule in enumerate(schedules):
        stepped = cached_step_logits(model, schedule, grids[b], int(cond[b]))
        torch.testing.assert_close(forced[b], stepped, atol=1e-5, rtol=1e-5,
                                   msg=f"{schedule.spec.label}")
        # and the targets are the grid tokens in the schedule's generation order
        assert torch.equal(batch.targets[b], grids[b][torch.from_numpy(schedule.sequence)])


@torch.no_grad()
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_greedy_sampler_picks_the_argmax_of_teacher_forcing(spec):
    """The real sampler loop, greedy: teacher-forcing its own output reproduces every pick."""
    model = any_order_model(seed=2)
    schedule = build_schedule(spec)
    result = generate(model, schedule, [3], SamplingConfig(greedy=True))
    grid = torch.from_numpy(result.tokens.reshape(1, -1))
    batch = teacher_forcing_batch(grid, torch.tensor([3]), torch.tensor([0]),
                                  layout_bank([schedule]))
    forced = model(batch.cond, batch.tokens, batch.slots, mask_BSS=batch.mask)
    assert torch.equal(forced[0].argmax(-1), batch.targets[0])


def test_a_model_without_target_positions_cannot_tell_schedules_apart():
    """Why the extension exists: the official layout gives the same input for raster 4x and
    distant 4x at the slots whose fed cells agree, so it cannot predict both; the target-aware
    model's inputs differ there."""
    raster, distant = (slot_layout(build_schedule(ScheduleSpec(grid=GRID, order=o, parallel=4,
                                                               init_tokens=False)))
                       for o in ("raster", "distant"))
    first_step = slice(0, 4)  # class + 3 fillers in both: identical official inputs
    assert np.array_equal(raster.kind[first_step], distant.kind[first_step])
    assert np.array_equal(raster.cell[first_step], distant.cell[first_step])
    assert not np.array_equal(raster.target[first_step], distant.target[first_step])
    model = any_order_model()

    def embed(layout):
        slots = SlotInputs(*(torch.from_numpy(getattr(layout, k)[first_step])
                             for k in ("kind", "cell", "filler", "target")))
        return model.embed(torch.tensor([1]), torch.zeros(1, 4, dtype=torch.long), slots)

    assert not torch.allclose(embed(raster), embed(distant))


def test_mixture_bank_covers_every_app_schedule_and_draws_random_rows_at_the_share():
    mixture = ScheduleMixture(random_share=0.25, random_pool=6)
    bank = mixture_bank(mixture)
    labels = {s.spec.label for s in bank.schedules}
    for order in ("raster", "distant"):
        assert f"{order} 1x" in labels
        for n in (4, 16):
            for init in ("with", "without"):
                assert f"{order} {n}x, {init} initial tokens" in labels
    assert int(bank.is_random.sum()) == 6
    assert bank.num_fillers == 15
    rows = draw_rows(bank, 4000, mixture.random_share, torch.Generator().manual_seed(0))
    share = bank.is_random[rows].float().mean().item()
    assert 0.2 < share < 0.3
    assert set(rows[~bank.is_random[rows]].tolist()) == set(range(len(mixture.specs)))
