import pytest
import torch

from par_demo.models.slots import slot_layout
from par_demo.models.transformer import KVCache, ModelArgs, SlotInputs, Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import PRESETS
from support import INDEX, TRANSFORMER_CASES, golden_args, golden_expected, golden_spec, golden_weights


def slot_inputs(layout) -> SlotInputs:
    return SlotInputs(*(torch.from_numpy(a) for a in
                        (layout.kind, layout.cell, layout.filler, layout.target)))


def teacher_forced(model, schedule, cond, grid_tokens):
    layout = slot_layout(schedule)
    fed = grid_tokens[:, torch.from_numpy(layout.cell).clamp(min=0)]
    with torch.no_grad():
        return model(cond, fed, slot_inputs(layout),
                     mask_BSS=torch.from_numpy(layout.block_causal_mask()))


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_teacher_forced_logits_match_the_reference(case):
    model = Transformer(golden_args(case)).eval()
    model.load_state_dict(golden_weights(case), strict=True)
    expected = golden_expected(case)
    schedule = build_schedule(golden_spec(case))
    sequence = expected["idx_par_order" if TRANSFORMER_CASES[case] > 1 else "idx_raster"]
    grid_tokens = torch.empty_like(sequence)
    grid_tokens[:, torch.from_numpy(schedule.sequence)] = sequence
    logits = teacher_forced(model, schedule, expected["cond"], grid_tokens)
    reference = expected["logits"][:, :64]  # LlamaGen's row 64 predicts past the last token
    assert logits.shape == reference.shape
    assert (logits - reference).abs().max().item() < 1e-4


RELEASED = {"PAR-XL-4x": "PAR-XL-4x", "PAR-XXL-4x": "PAR-XXL-4x", "PAR-3B-4x": "PAR-3B-4x",
            "PAR-3B-16x": "PAR-3B-16x", "LlamaGen-c2i-XL-384": "LlamaGen-XL"}


@pytest.mark.parametrize("manifest", list(RELEASED))
def test_released_architectures_have_exactly_the_manifest_keys(manifest):
    with torch.device("meta"):
        model = Transformer(PRESETS[RELEASED[manifest]].args)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: shape for k, (shape, _) in INDEX["manifests"][manifest].items()}
    assert ours == theirs


@pytest.mark.parametrize("manifest,size", [("LlamaGen-c2i-XXL-384", dict(dim=1536, n_layer=48, n_head=24)),
                                           ("LlamaGen-c2i-3B-384", dict(dim=3200, n_layer=24, n_head=32))])
def test_llamagen_baselines_match_their_manifests(manifest, size):
    with torch.device("meta"):
        model = Transformer(ModelArgs(**size))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: shape for k, (shape, _) in INDEX["manifests"][manifest].items()}


def test_official_layout_has_no_target_embedding_and_ours_does():
    official = Transformer(ModelArgs(dim=64, n_layer=1, n_head=4, vocab_size=32, grid=4,
                                     num_classes=3, num_fillers=3))
    ours = Transformer(ModelArgs(dim=64, n_layer=1, n_head=4, vocab_size=32, grid=4,
                                 num_classes=3, num_fillers=15, target_aware=True))
    assert "target_embeddings.weight" not in official.state_dict()
    assert ours.state_dict()["target_embeddings.weight"].shape == (16, 64)


@pytest.mark.parametrize("spec", [
    ScheduleSpec(grid=4, order="raster", parallel=1),
    ScheduleSpec(grid=4, order="distant", parallel=4, init_tokens=False),
    ScheduleSpec(grid=8, order="distant", parallel=16),
    ScheduleSpec(grid=8, order="random", parallel=4, seed=2),
])
def test_cached_steps_equal_teacher_forcing(spec):
    """The KV-cache path (one forward per step) computes what teacher forcing computes."""
    args = ModelArgs(dim=64, n_layer=2, n_head=4, vocab_size=32, grid=spec.grid, num_classes=5,
                     num_fillers=15, target_aware=True, token_dropout_p=0.0)
    g = torch.Generator().manual_seed(0)
    model = Transformer(args).init_weights(g).eval()
    torch.nn.init.normal_(model.output.weight, std=0.02, generator=g)
    schedule = build_schedule(spec)
    grid_tokens = torch.randint(0, 32, (2, spec.grid ** 2), generator=g)
    cond = torch.tensor([1, 5])
    full = teacher_forced(model, schedule, cond, grid_tokens)
    layout = slot_layout(schedule)
    slots = slot_inputs(layout)
    cache = KVCache.empty(args, 2, spec.grid ** 2, "cpu", torch.float32)
    fed = grid_tokens[:, torch.from_numpy(layout.cell).clamp(min=0)]
    with torch.no_grad():
        stepwise = torch.cat([
            model(cond, fed[:, s0:s1], slots[s0:s1], cache, start=int(s0))
            for s0, s1 in zip(layout.starts[:-1], layout.starts[1:])], dim=1)
    assert (stepwise - full).abs().max().item() < 1e-5
