import numpy as np
import pytest
import torch

from benchmarks.random_weights import random_model
from par_demo.presets import EMBEDDED
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import SlotInputs, Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.models.fast import FAST
from par_demo.sampler import SamplingConfig, filter_logits, generate, sample_steps
from support import TRANSFORMER_CASES, golden_args, golden_expected, golden_spec, golden_weights


def golden_model(case: str) -> Transformer:
    model = Transformer(golden_args(case)).eval()
    model.load_state_dict(golden_weights(case))
    return model


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
@pytest.mark.parametrize("cfg", [1.0, 1.5])
def test_greedy_generation_matches_the_reference_token_for_token(case, cfg):
    schedule = build_schedule(golden_spec(case))
    result = generate(golden_model(case), schedule, [1, 7], SamplingConfig(cfg_scale=cfg, greedy=True))
    expected = golden_expected(case)[f"greedy_cfg{cfg}_raster"].numpy()
    assert np.array_equal(result.tokens.reshape(2, -1), expected)


@pytest.fixture(scope="module")
def embedded():
    return random_model(EMBEDDED).transformer


SPECS = [ScheduleSpec(grid=16, order=o, parallel=n, init_tokens=i)
         for o, n, i in [("raster", 1, True), ("distant", 4, True), ("distant", 4, False),
                         ("distant", 16, True), ("distant", 16, False), ("raster", 4, True),
                         ("random", 16, False)]]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_step_map_equals_the_schedule(embedded, spec):
    schedule = build_schedule(spec)
    result = generate(embedded, schedule, [3], SamplingConfig(cfg_scale=2.0, seed=1))
    assert np.array_equal(result.step_map, schedule.step_of_cell)
    assert (result.tokens >= 0).all() and (result.tokens < EMBEDDED.args.vocab_size).all()
    assert len(result.step_seconds) == schedule.num_steps


def test_events_stream_one_step_at_a_time(embedded):
    schedule = build_schedule(ScheduleSpec(grid=16, order="distant", parallel=16))
    known = 0
    for event in sample_steps(embedded, schedule, [0, 5], SamplingConfig(seed=0)):
        assert np.array_equal(event.cells, schedule.steps[event.step])
        assert ((event.tokens >= 0).sum(1) == known + len(event.cells)).all()
        assert np.isnan(event.entropy[:, event.tokens[0] < 0]).all()
        assert (event.entropy[:, event.cells] >= 0).all()
        known += len(event.cells)
        assert event.elapsed_seconds >= event.step_seconds > 0
    assert event.done and known == 256


def test_a_seed_reproduces_a_run_and_another_seed_does_not(embedded):
    schedule = build_schedule(ScheduleSpec(grid=16, order="distant", parallel=4))
    a = generate(embedded, schedule, [2], SamplingConfig(cfg_scale=2.0, seed=7)).tokens
    b = generate(embedded, schedule, [2], SamplingConfig(cfg_scale=2.0, seed=7)).tokens
    c = generate(embedded, schedule, [2], SamplingConfig(cfg_scale=2.0, seed=8)).tokens
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_top_k_one_and_tiny_top_p_are_greedy(embedded):
    schedule = build_schedule(ScheduleSpec(grid=16, order="distant", parallel=16))
    greedy = generate(embedded, schedule, [4], SamplingConfig(cfg_scale=1.5, greedy=True)).tokens
    top1 = generate(embedded, schedule, [4], SamplingConfig(cfg_scale=1.5, top_k=1, seed=3)).tokens
    nucleus = generate(embedded, schedule, [4], SamplingConfig(cfg_scale=1.5, top_p=1e-6, seed=3)).tokens
    assert np.array_equal(greedy, top1) and np.array_equal(greedy, nucleus)


def test_filters_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, 2, 1.0)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, 0, 0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, 0, 0.85)).tolist() == [[True, True, True, False]]


def test_stopping_between_steps_leaves_the_rest_ungenerated(embedded):
    schedule = build_schedule(ScheduleSpec(grid=16, order="distant", parallel=4))
    run = sample_steps(embedded, schedule, [1], SamplingConfig())
    idle = FAST.idle(embedded, 1, 256)
    for event in run:
        if event.step == 9:
            break
    assert FAST.idle(embedded, 1, 256) == max(idle - 1, 0)  # the run holds a pooled decoder
    run.close()
    assert FAST.idle(embedded, 1, 256) == max(idle, 1)  # closing ended the run: the decoder is back
    assert (event.step_map >= 0).sum() == 4 + 6 * 4
    assert (event.tokens[0] < 0).sum() == 256 - 28


@pytest.mark.parametrize("config,message", [
    (SamplingConfig(temperature=0.0), "temperature"),
    (SamplingConfig(top_k=-1), "top-k"),
    (SamplingConfig(top_p=0.0), "top-p"),
    (SamplingConfig(cfg_scale=-1.0), "guidance"),
])
def test_bad_settings_are_refused(embedded, config, message):
    schedule = build_schedule(ScheduleSpec(grid=16, order="raster", parallel=4))
    with pytest.raises(ValueError, match=message):
        next(sample_steps(embedded, schedule, [0], config))


def test_a_schedule_for_another_grid_is_refused(embedded):
    with pytest.raises(ValueError, match="24x24 grid"):
        next(sample_steps(embedded, build_schedule(ScheduleSpec(grid=24)), [0]))


@pytest.mark.parametrize("spec", [ScheduleSpec(grid=16, order="zipar", parallel=1, window=3),
                                  ScheduleSpec(grid=16, order="diagonal", parallel=1),
                                  ScheduleSpec(grid=16, order="random-cosine", parallel=1,
                                               steps=20, seed=1)], ids=lambda s: s.label)
def test_greedy_steps_equal_one_teacher_forced_pass_over_their_tokens(embedded, spec):
    """Step by step over the cache (feed-only slots included) the model sees what one forward
    over the finished sequence under the block-causal mask sees, so greedy picks agree."""
    schedule = build_schedule(spec)
    result = generate(embedded, schedule, [3], SamplingConfig(greedy=True))
    layout = slot_layout(schedule)
    tokens = torch.from_numpy(result.tokens.reshape(1, -1))
    slots = SlotInputs(*(torch.from_numpy(a) for a in
                         (layout.kind, layout.cell, layout.filler, layout.target)))
    with torch.inference_mode():
        logits = embedded(torch.tensor([3]), tokens[:, layout.cell.clip(min=0)], slots,
                          mask_BSS=torch.from_numpy(layout.block_causal_mask()))
    predicting = np.concatenate([np.arange(s, s + k) for s, k in
                                 zip(layout.starts[:-1], layout.predicting)])
    picked = logits[0, predicting].argmax(-1).numpy()
    assert np.array_equal(picked, tokens[0, layout.target[predicting]].numpy())
