"""Edits and branches in the engine: schedules over a subset of cells, kept cells entering as a
prefix in one forward, the fast and plain paths agreeing, branches of recorded runs."""
import numpy as np
import pytest
import torch

from benchmarks.random_weights import random_model
from par_demo.editing import edit_unsupported_reason, plan_branch, plan_edit, run_plan
from par_demo.masks import REGIONS, CellMask, region_mask
from par_demo.models.fast import FastDecoder
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import Transformer
from par_demo.orders import ScheduleSpec, build_schedule, subset_schedule
from par_demo.pictures import EditError
from par_demo.presets import EMBEDDED, UnsupportedSchedule
from par_demo.sampler import Prefix, SamplingConfig, plain_steps, sample_steps
from support import golden_args, golden_spec, golden_weights, tiny_released_preset

SPECS = [ScheduleSpec(grid=16, order=o, parallel=n, init_tokens=i)
         for o, n, i in [("raster", 1, True), ("distant", 4, True), ("distant", 4, False),
                         ("distant", 16, True), ("raster", 4, True), ("random", 16, False),
                         ("distant", 1, True)]]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def embedded():
    return random_model(EMBEDDED).transformer


@pytest.fixture(scope="module")
def released():
    model = Transformer(golden_args("par_tiny_4x")).eval()
    model.load_state_dict(golden_weights("par_tiny_4x"))
    return model


def picture_tokens(seed: int = 0, vocab: int = EMBEDDED.args.vocab_size, cells: int = 256):
    return np.random.default_rng(seed).integers(0, vocab, cells)


def last_event(events):
    event = None
    for event in events:
        pass
    return event


# ------------------------------------------------------------------ schedules over a subset

@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_a_subset_of_every_cell_is_the_full_schedule(spec):
    assert subset_schedule(spec, np.arange(256)) == build_schedule(spec)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_a_subset_schedule_generates_its_cells_once_and_keeps_the_others(spec, region):
    mask = region_mask(region, 16)
    schedule = subset_schedule(spec, mask.cells)
    assert sorted(schedule.sequence.tolist()) == mask.cells.tolist()
    assert schedule.kept_cells.tolist() == np.flatnonzero(~mask.selected).tolist()
    assert (schedule.step_of_cell.reshape(-1)[~mask.selected] == -1).all()
    sizes = schedule.sizes
    assert sizes == sorted(sizes) and max(sizes) <= spec.parallel
    init = spec.parallel if spec.parallel > 1 and spec.init_tokens else 0
    assert sizes[:init] == [1] * init and schedule.num_init_steps == init


@pytest.mark.parametrize("region", ["left", "right", "top", "bottom", "centre", "border"])
def test_distant_over_a_preset_takes_one_cell_of_each_region_per_step(region):
    schedule = subset_schedule(ScheduleSpec(16, "distant", 4), region_mask(region, 16).cells)
    rows, cols = np.divmod(np.arange(256), 16)
    masked = region_mask(region, 16).selected
    r0, r1 = rows[masked].min(), rows[masked].max() + 1
    c0, c1 = cols[masked].min(), cols[masked].max() + 1
    tile = ((rows >= (r0 + r1) // 2).astype(int) * 2 + (cols >= (c0 + c1) // 2))
    assert schedule.sizes == [1] * 4 + [4] * ((masked.sum() - 4) // 4)
    for cells in schedule.steps[4:]:
        assert sorted(tile[cells].tolist()) == [0, 1, 2, 3]
    assert sorted(tile[schedule.sequence[:4]].tolist()) == [0, 1, 2, 3]


def test_initial_tokens_of_the_right_half_are_the_first_cell_of_each_region():
    schedule = subset_schedule(ScheduleSpec(16, "distant", 4), region_mask("right", 16).cells)
    assert schedule.sequence[:4].tolist() == [8, 12, 8 * 16 + 8, 8 * 16 + 12]


def test_the_remainder_of_a_subset_goes_into_the_first_parallel_step():
    schedule = subset_schedule(ScheduleSpec(16, "raster", 4), np.arange(10))
    assert schedule.sizes == [1, 1, 1, 1, 2, 4]
    assert schedule.sequence.tolist() == list(range(10))


# ------------------------------------------------------------------ the engine

def edit_run(model, spec, region, config, classes=(2, 7), **path):
    tokens = picture_tokens()
    plan = plan_edit(EMBEDDED, tokens, region_mask(region, 16), spec)
    events = list(run_plan(model, plan, list(classes), config, **path))
    return tokens, plan, events


@pytest.mark.parametrize("config", [SamplingConfig(cfg_scale=2.0, seed=3),
                                    SamplingConfig(cfg_scale=1.0, top_k=40, seed=5)],
                         ids=["guided", "top-k"])
@pytest.mark.parametrize("spec,region", [(SPECS[1], "right"), (SPECS[3], "border"),
                                         (SPECS[0], "centre"), (SPECS[5], "top")],
                         ids=lambda x: getattr(x, "label", x))
def test_an_edit_keeps_its_tokens_and_the_fast_path_draws_the_plain_tokens(embedded, spec,
                                                                             region, config):
    tokens, plan, fast = edit_run(embedded, spec, region, config, fast=True, graphs=False)
    _, _, plain = edit_run(embedded, spec, region, config, fast=False)
    kept = plan.schedule.kept_cells
    assert len(fast) == plan.steps == plan.schedule.num_steps
    for event in fast:  # kept tokens are there from the first step and never change
        assert (event.tokens[:, kept] == tokens[kept]).all()
        assert (event.step_map[kept] == -1).all()
    assert np.array_equal(fast[-1].tokens, plain[-1].tokens)
    assert np.array_equal(fast[-1].entropy, plain[-1].entropy, equal_nan=True)
    assert (fast[-1].tokens >= 0).all()
    assert np.isnan(fast[-1].entropy[:, kept]).all()


class MaskedDecoder(FastDecoder):
    static = True  # the CUDA-graph formulation, run eagerly


@pytest.mark.parametrize("decoder", ["plain", "fast", "static"])
def test_the_prefix_forward_equals_feeding_the_known_tokens_step_by_step(embedded, decoder):
    schedule = subset_schedule(SPECS[1], region_mask("border", 16).cells)
    layout = slot_layout(schedule)
    cond = torch.tensor([3, 9, EMBEDDED.args.num_classes, EMBEDDED.args.num_classes])
    tokens = torch.from_numpy(picture_tokens(1)).repeat(2, 1)
    first = layout.kept_steps + 5  # the kept cells and 5 steps known

    def step_function():
        if decoder == "plain":
            return plain_steps(embedded, layout, cond)
        kind = MaskedDecoder if decoder == "static" else FastDecoder
        return kind(embedded, 4, 256).run(layout, cond)

    with torch.inference_mode():
        one_by_one = step_function()
        for t in range(first + 1):
            expected = one_by_one(t, tokens)
        caught_up = step_function()
        torch.testing.assert_close(caught_up(first, tokens), expected, rtol=0, atol=1e-4)
        torch.testing.assert_close(caught_up(first + 1, tokens), one_by_one(first + 1, tokens),
                                   rtol=0, atol=1e-4)


def test_a_greedy_branch_of_a_released_model_repeats_the_run(released):
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", "test/par")
    schedule = build_schedule(golden_spec("par_tiny_4x"))
    config = SamplingConfig(cfg_scale=1.5, greedy=True)
    run = last_event(sample_steps(released, schedule, [4], config))
    for steps_done in (0, 3, 4, 9, schedule.num_steps - 1):
        plan = plan_branch(preset, schedule, run.tokens[0], steps_done)
        events = list(run_plan(released, plan, [4], config))
        assert events[0].step == steps_done and len(events) == plan.steps
        assert np.array_equal(events[-1].tokens, run.tokens)


def test_branches_with_new_seeds_share_the_prefix_and_differ_after(embedded):
    tokens, plan, events = edit_run(embedded, SPECS[1], "right", SamplingConfig(seed=0),
                                    classes=[5])
    steps_done = 4  # after the initial tokens
    branch = plan_branch(EMBEDDED, plan.schedule, events[-1].tokens[0], steps_done)
    ends = [last_event(run_plan(embedded, branch, [5], SamplingConfig(seed=s))).tokens[0]
            for s in (11, 12)]
    before = plan.schedule.step_of_cell.reshape(-1) < steps_done  # kept cells and steps 0-3
    for end in ends:
        assert np.array_equal(end[before], events[-1].tokens[0][before])
    assert not np.array_equal(ends[0][~before], ends[1][~before])


def test_a_released_model_refuses_to_keep_cells_with_the_reason(released):
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", "test/par")
    mask = region_mask("right", 8)
    with pytest.raises(UnsupportedSchedule, match="do not know which cell they predict"):
        plan_edit(preset, picture_tokens(vocab=64, cells=64), mask, ScheduleSpec(8, "distant", 4))
    schedule = subset_schedule(ScheduleSpec(8, "distant", 4), mask.cells)
    with pytest.raises(ValueError, match="do not know which cell they predict"):
        next(sample_steps(released, schedule, [1], prefix=Prefix(picture_tokens(vocab=64,
                                                                                 cells=64))))
    assert edit_unsupported_reason(preset) and edit_unsupported_reason(EMBEDDED) is None


def test_edit_and_branch_requests_are_refused_with_the_field():
    tokens = picture_tokens()
    with pytest.raises(EditError, match="mask: no cell is selected"):
        plan_edit(EMBEDDED, tokens, CellMask(16, np.zeros(256, bool)), SPECS[1])
    with pytest.raises(EditError, match="mask: every cell is selected; that is Generate"):
        plan_edit(EMBEDDED, tokens, CellMask(16, np.ones(256, bool)), SPECS[1])
    with pytest.raises(EditError, match="tokens: every known cell needs a token"):
        plan_edit(EMBEDDED, np.full(256, -1), region_mask("left", 16), SPECS[1])
    schedule = build_schedule(SPECS[1])
    with pytest.raises(EditError, match="step: branch from 0 to 66"):
        plan_branch(EMBEDDED, schedule, tokens, 67)
    with pytest.raises(ValueError, match="keeps 128 cells: give their tokens"):
        next(sample_steps(random_model(EMBEDDED).transformer,
                          subset_schedule(SPECS[1], region_mask("left", 16).cells), [0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphs_draw_the_plain_tokens_of_an_edit_and_a_branch():
    model = random_model(EMBEDDED, device="cuda").transformer
    config = SamplingConfig(cfg_scale=2.0, greedy=True)
    for _ in range(2):  # the second run replays the graphs captured by the first
        _, plan, graphed = edit_run(model, SPECS[1], "border", config, fast=True, graphs=True)
        _, _, plain = edit_run(model, SPECS[1], "border", config, fast=False)
        assert np.array_equal(graphed[-1].tokens, plain[-1].tokens)
    branch = plan_branch(EMBEDDED, plan.schedule, plain[-1].tokens[0], 7)
    ends = [last_event(run_plan(model, branch, [2], config, **path)).tokens
            for path in (dict(fast=True, graphs=True), dict(fast=False))]
    assert np.array_equal(ends[0], ends[1])


def test_a_picture_is_encoded_with_the_shipped_encoder_and_its_reconstruction_measured():
    from PIL import Image

    from par_demo.editing import encode_picture, load_editing_tokenizer
    from par_demo.pictures import read_picture

    disc = Image.new("RGB", (64, 64), "white")
    disc.paste((250, 200, 40), (8, 8, 56, 56))
    picture = read_picture(disc, EMBEDDED.image_size)
    encoded = encode_picture(load_editing_tokenizer(EMBEDDED), picture)
    assert encoded.tokens.shape == (256,) and encoded.tokens.max() < EMBEDDED.args.vocab_size
    assert encoded.reconstruction.shape == (64, 64, 3)
    error = np.abs(encoded.reconstruction.astype(int) - picture.image).mean()
    assert encoded.psnr > 15 and error < 20  # the flat colours survive the codes
    assert (np.abs(encoded.reconstruction[32, 32].astype(int) - (250, 200, 40)) < 40).all()
