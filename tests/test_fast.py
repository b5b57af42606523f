import numpy as np
import pytest
import torch

from benchmarks.random_weights import random_model
from par_demo.presets import EMBEDDED
from par_demo.models.fast import FastDecoder
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, plain_steps, sample_steps
from support import TRANSFORMER_CASES, golden_args, golden_expected, golden_spec, golden_weights

SPECS = [ScheduleSpec(grid=16, order=o, parallel=n, init_tokens=i)
         for o, n, i in [("raster", 1, True), ("distant", 4, True), ("distant", 16, False),
                         ("random", 4, True)]] + [
    ScheduleSpec(grid=16, order="zipar", parallel=1, window=3),
    ScheduleSpec(grid=16, order="diagonal", parallel=1),
    ScheduleSpec(grid=16, order="random-cosine", parallel=1, steps=31, seed=2)]
CONFIGS = [SamplingConfig(cfg_scale=2.0, seed=3),
           SamplingConfig(cfg_scale=1.0, temperature=0.8, top_k=40, seed=5),
           SamplingConfig(cfg_scale=1.5, top_p=0.9, seed=6),
           SamplingConfig(cfg_scale=1.5, greedy=True)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small matmuls on a shared 2-core machine: a second spinning thread only slows them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def embedded():
    return random_model(EMBEDDED).transformer


def last_event(model, schedule, classes, config, **path):
    event = None
    for event in sample_steps(model, schedule, classes, config, **path):
        pass
    return event


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"cfg{c.cfg_scale}-seed{c.seed}")
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_the_fast_path_draws_the_plain_paths_tokens(embedded, spec, config):
    schedule = build_schedule(spec)
    plain = last_event(embedded, schedule, [1, 4], config, fast=False)
    fast = last_event(embedded, schedule, [1, 4], config, fast=True, graphs=False)
    assert np.array_equal(plain.tokens, fast.tokens)
    assert np.array_equal(plain.entropy, fast.entropy, equal_nan=True)


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_the_fast_path_matches_the_reference_greedy_generation(case):
    model = Transformer(golden_args(case)).eval()
    model.load_state_dict(golden_weights(case))
    event = last_event(model, build_schedule(golden_spec(case)), [1, 7],
                       SamplingConfig(cfg_scale=1.5, greedy=True), fast=True, graphs=False)
    assert np.array_equal(event.tokens, golden_expected(case)["greedy_cfg1.5_raster"].numpy())


class MaskedDecoder(FastDecoder):
    static = True  # what GraphedDecoder captures, run eagerly: runs anywhere


@pytest.mark.parametrize("spec", SPECS[:3] + SPECS[-2:-1], ids=lambda s: s.label)
def test_the_static_masked_forward_equals_the_plain_forward(embedded, spec):
    """The formulation CUDA graphs replay (whole cache, length mask, index writes) computes the
    plain step logits, including after an earlier run has left its keys in the cache."""
    layout = slot_layout(build_schedule(spec))
    cond = torch.tensor([3, 9, EMBEDDED.args.num_classes, EMBEDDED.args.num_classes])
    tokens = torch.randint(0, EMBEDDED.args.vocab_size, (2, 256),
                           generator=torch.Generator().manual_seed(0))
    decoder = MaskedDecoder(embedded, 4, layout.length)
    with torch.inference_mode():
        stale = decoder.run(layout, cond.flip(0))
        for t in range(len(layout.starts) - 1):
            stale(t, tokens.flip(0))
        plain, fast = plain_steps(embedded, layout, cond), decoder.run(layout, cond)
        for t in range(len(layout.starts) - 1):
            torch.testing.assert_close(fast(t, tokens), plain(t, tokens), rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", SPECS[:3] + SPECS[-3:], ids=lambda s: s.label)
def test_cuda_graphs_draw_the_plain_greedy_tokens(spec):
    model = random_model(EMBEDDED, device="cuda").transformer
    schedule = build_schedule(spec)
    config = SamplingConfig(cfg_scale=2.0, greedy=True)
    plain = last_event(model, schedule, [1, 4], config, fast=False)
    for _ in range(2):  # the second run replays the graphs captured by the first
        graphed = last_event(model, schedule, [1, 4], config, fast=True, graphs=True)
        assert np.array_equal(plain.tokens, graphed.tokens)


def test_a_pooled_decoder_follows_weights_changed_in_place():
    model = random_model(EMBEDDED, seed=1).transformer
    schedule = build_schedule(SPECS[1])
    config = SamplingConfig(cfg_scale=2.0, seed=2)
    before = last_event(model, schedule, [0], config).tokens
    with torch.no_grad():
        model.layers[0].feed_forward.w3.weight.mul_(-1)  # w1 and w3 are fused in the decoder
    after = last_event(model, schedule, [0], config).tokens
    assert not np.array_equal(before, after)
    assert np.array_equal(after, last_event(model, schedule, [0], config, fast=False).tokens)
