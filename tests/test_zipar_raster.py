"""ZipAR on a raster (LlamaGen) model, training-free, against a direct implementation of its rule
on the tiny golden LlamaGen weights."""
import numpy as np
import pytest
import torch

from par_demo.models.raster_slots import zipar_raster_layout
from par_demo.models.transformer import KVCache, SlotInputs, Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, generate, sample_steps
from support import golden_args, golden_expected, golden_weights

CLASSES = [1, 7]
GREEDY = SamplingConfig(cfg_scale=1.5, greedy=True)


@pytest.fixture(scope="module")
def llamagen():
    model = Transformer(golden_args("llamagen_tiny_1x")).eval()
    model.load_state_dict(golden_weights("llamagen_tiny_1x"))
    return model.double()  # float64: the two computations agree to far below any argmax gap


class RasterCache:
    """The released code's cache: one entry per raster position (0: the class token, 1 + q:
    the token fed at cell q), written as tokens are fed; `written` is the better mask, the
    entries that hold a real token."""

    def __init__(self, model):
        self.model, G = model, model.args.grid
        rows = 2 * len(CLASSES)
        self.cache = KVCache.empty(model.args, rows, G * G + 1, "cpu", torch.float64)
        self.written = torch.zeros(G * G + 1, dtype=torch.bool)
        self.cond = torch.tensor(CLASSES + [model.args.num_classes] * len(CLASSES))

    def feed(self, query: int, token_B: np.ndarray, stand_in: bool = False) -> np.ndarray:
        """Write the token fed at cell `query` (-1: the class token) and return the greedy
        guided pick for the next raster cell; a stand-in is seen by its own query only."""
        at = query + 1
        slots = SlotInputs(torch.tensor([0 if query < 0 else 1]), torch.tensor([query]),
                           torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
        fed = torch.from_numpy(np.concatenate([token_B, token_B]))[:, None].clamp(min=0)
        self.written[at] = True
        with torch.inference_mode():
            logits = self.model(self.cond, fed, slots, self.cache, start=at,
                                mask_BSS=self.written[None, :at + 1])[:, -1]
        self.written[at] = not stand_in
        cond_logits, uncond_logits = logits.chunk(2)
        return (uncond_logits + (cond_logits - uncond_logits) * GREEDY.cfg_scale).argmax(-1).numpy()


def zipar_by_its_rule(model, window: int) -> np.ndarray:
    """ZipAR's loop written out over a cache indexed by raster position: row 0 one token per
    step; row r + 1 joins once row r (r >= 1) holds `window` tokens (row 1 once row 0 is whole);
    each step every active row takes its next token, predicted from its previous cell, or a
    row's first from the last cell of the row above, fed as a copy of the newest token of the
    row two up while that cell is missing; a row's last token, once made, is fed at the next
    step whether or not it predicts anything. A step's entries are written in raster order."""
    G = model.args.grid
    cache = RasterCache(model)
    tokens = np.full((len(CLASSES), G * G), -1, dtype=np.int64)
    made, active = [0] * G, [0]
    finished: list[int] = []  # last cells of rows finished at the step before
    while active:
        feeds = {}  # query -> (fed cell, the cell it predicts or None, stand-in)
        for q in finished:
            feeds[q] = (q, None, False)
        for r in active:
            cell = r * G + made[r]
            query = cell - 1
            missing = query >= 0 and tokens[0, query] < 0
            fed = (r - 2) * G + made[r - 2] - 1 if missing else query
            feeds[query] = (fed, cell, missing)
        picks = {}
        for query in sorted(feeds):
            fed, cell, stand_in = feeds[query]
            pick = cache.feed(query, tokens[:, fed] if fed >= 0 else np.zeros(2, np.int64),
                              stand_in)
            if cell is not None:
                picks[cell] = pick
        for cell, token in picks.items():
            tokens[:, cell] = token
        for r in active:
            made[r] += 1
        finished = [r * G + G - 1 for r in active if made[r] == G and r < G - 1
                    and made[r + 1] > 0]
        joining = [r + 1 for r in active if r + 1 < G and r + 1 not in active and (
            made[r] == G if r == 0 else made[r] == window)]
        active = [r for r in active if made[r] < G] + joining
    return tokens


@pytest.mark.parametrize("window", [1, 2, 3, 7])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_zipar_on_the_raster_model_follows_its_rule(llamagen, window, fast):
    schedule = build_schedule(ScheduleSpec(grid=8, order="zipar", parallel=1, window=window))
    event = None
    for event in sample_steps(llamagen, schedule, CLASSES, GREEDY, fast=fast, graphs=False):
        pass
    assert event.step + 1 == schedule.num_steps == 2 * 8 + 6 * window
    assert np.array_equal(event.tokens, zipar_by_its_rule(llamagen, window))


def test_the_static_masked_forward_takes_the_raster_layouts_own_mask(llamagen):
    """What CUDA graphs would run (whole cache, index writes) under the layout's mask."""
    from par_demo.models.fast import FastDecoder
    from par_demo.sampler import plain_steps

    class MaskedDecoder(FastDecoder):
        static = True

    layout = zipar_raster_layout(build_schedule(ScheduleSpec(grid=8, order="zipar", parallel=1,
                                                             window=3)))
    cond = torch.tensor([1, 7, 10, 10])
    tokens = torch.randint(0, 64, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        static = MaskedDecoder(llamagen, 4, layout.length).run(layout, cond)
        plain = plain_steps(llamagen, layout, cond)
        for t in range(len(layout.starts) - 1):
            torch.testing.assert_close(static(t, tokens), plain(t, tokens), rtol=0, atol=1e-5)


def test_zipar_with_the_whole_row_as_window_is_the_reference_raster_generation(llamagen):
    schedule = build_schedule(ScheduleSpec(grid=8, order="zipar", parallel=1, window=8))
    result = generate(llamagen, schedule, CLASSES, GREEDY)
    expected = golden_expected("llamagen_tiny_1x")["greedy_cfg1.5_raster"].numpy()
    assert np.array_equal(result.tokens.reshape(2, -1), expected)


def test_a_slot_sees_no_cell_not_generated_yet_and_no_stand_in_but_its_own():
    schedule = build_schedule(ScheduleSpec(grid=6, order="zipar", parallel=1, window=2))
    layout = zipar_raster_layout(schedule)
    step_of = schedule.step_of_cell.reshape(-1)
    stand_ins = np.flatnonzero(layout.source != layout.cell)
    assert len(stand_ins) == 6 - 2  # rows 2..5 start before the row above is whole
    for a in range(layout.length):
        seen = np.flatnonzero(layout.sees[a])
        fed = layout.fed[seen[seen != a]]
        assert (step_of[fed[fed >= 0]] < layout.step[a]).all()  # only tokens generated already
        assert not np.isin(seen[seen != a], stand_ins).any()
    fed = layout.cell[(layout.kind == 1) & (layout.source == layout.cell)]
    assert sorted(fed.tolist()) == list(range(35))  # every cell but the last, each fed once


def test_released_presets_run_their_own_schedule_and_a_raster_model_zipar_too():
    from par_demo.presets import get_preset

    llamagen = get_preset("LlamaGen-XL")
    assert llamagen.check(ScheduleSpec(grid=24, order="zipar", parallel=1,
                                       window=8)).num_steps == 224
    assert "trained for raster 1x only (and runs zipar training-free)" in (
        llamagen.unsupported_reason(ScheduleSpec(grid=24, order="diagonal", parallel=1)))
    for name in ("PAR-XL-4x", "PAR-3B-16x"):
        reason = get_preset(name).unsupported_reason(
            ScheduleSpec(grid=24, order="zipar", parallel=1, window=8))
        assert "was trained for distant" in reason and "would give garbage" in reason


def test_a_par_model_refuses_zipar_and_shrinking_steps_at_the_sampler_too():
    from par_demo.models.transformer import ModelArgs
    from par_demo.sampler import model_layout

    par_4x = ModelArgs(dim=64, n_layer=1, n_head=4, grid=8, num_fillers=3)
    with pytest.raises(ValueError, match="steps smaller than the step before"):
        model_layout(build_schedule(ScheduleSpec(grid=8, order="zipar", parallel=1, window=2)),
                     par_4x)
