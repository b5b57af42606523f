from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from par_demo.checkpoints import (CheckpointError, load_model, load_transformer,
                                  local_weight_file, read_state_dict, weight_file)
from par_demo.classes import emoji_classes
from par_demo.orders import ScheduleSpec
from par_demo.presets import (DEFAULT_MODEL, EMBEDDED, PRESETS, UnsupportedSchedule, WeightSource,
                              get_preset)
from par_demo.sampler import SamplingConfig, generate
from support import HubCache, golden_expected, golden_weights, save_official, tiny_released_preset

REPO = "test-org/PAR-tiny"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A local hub cache holding tiny PAR-4x, PAR-16x and LlamaGen checkpoints and a tiny VQ,
    with the network switched off."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = HubCache(tmp_path / "hub")
    cache.add(REPO, "PAR-XL-4x.pt", golden_weights("par_tiny_4x"))
    cache.add(REPO, "PAR-3B-16x.pt", golden_weights("par_tiny_16x"), wrapper="module")
    cache.add(REPO, "c2i_XL_384.pt", golden_weights("llamagen_tiny_1x"), wrapper="state_dict")
    vq = golden_weights("vq_tiny")
    vq.update({"encoder.conv_in.weight": torch.zeros(32, 3, 3, 3),  # dropped: decoding only
               "quant_conv.weight": torch.zeros(8, 32, 1, 1)})
    cache.add(REPO, "vq_tiny.pt", vq, wrapper=None)
    return cache


@pytest.mark.parametrize("base,case", [("PAR-XL-4x", "par_tiny_4x"),
                                       ("PAR-3B-16x", "par_tiny_16x"),
                                       ("LlamaGen-XL", "llamagen_tiny_1x")])
def test_presets_load_official_files_from_the_local_cache(hub, base, case):
    preset = tiny_released_preset(base, case, REPO)
    loaded = load_model(preset, cache_dir=hub.root)
    schedule = preset.check(preset.runs)
    result = generate(loaded.transformer, schedule, [1, 7], SamplingConfig(cfg_scale=1.5, greedy=True))
    expected = golden_expected(case)["greedy_cfg1.5_raster"].numpy()
    assert np.array_equal(result.tokens.reshape(2, -1), expected)


def test_a_missing_file_names_itself_and_how_to_fetch_it(hub):
    preset = tiny_released_preset("PAR-XXL-4x", "par_tiny_4x", REPO)
    with pytest.raises(CheckpointError, match=r"PAR-XXL-4x\.pt .*hf download test-org/PAR-tiny PAR-XXL-4x\.pt"):
        load_model(preset, cache_dir=hub.root)


def test_no_network_gives_a_clear_message(hub, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "ENDPOINT", "https://127.0.0.1:9")
    with pytest.raises(CheckpointError, match="cannot be reached"):
        weight_file(WeightSource("PAR-XXL-4x.pt", REPO), cache_dir=hub.root)


def test_a_corrupt_file_is_reported(tmp_path):
    path = tmp_path / "broken.pt"
    save_official(path, golden_weights("par_tiny_4x"))
    path.write_bytes(path.read_bytes()[: 5000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_state_dict(path)
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_state_dict(bad)


def _random_bytes(path):
    path.write_bytes(bytes((i * 97 + 13) % 251 for i in range(4096)))  # opens with 0x0d


def _legacy_truncated(path):
    torch.save(golden_weights("vq_tiny"), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("name, make, message", [
    ("random.pt", _random_bytes, r"random\.pt is not a PyTorch checkpoint: it is neither a zip"),
    ("random.safetensors", _random_bytes, r"not a readable safetensors file: \w"),
    ("missing.pt", lambda path: None, r"missing\.pt does not exist"),
    ("folder.pt", lambda path: path.mkdir(), r"folder\.pt is a directory, not a weight file"),
    ("empty.pt", lambda path: path.write_bytes(b""), r"empty\.pt is empty \(0 bytes\)"),
    ("old.pt", _legacy_truncated, r"old\.pt is truncated: its data ends early"),
    ("evil.pt", lambda path: torch.save({"model": {}, "x": Payload()}, path),
     r"refusing evil\.pt: loading it would execute pickled code \(it calls \w+"),
])
def test_broken_files_are_reported_as_what_they_are(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(CheckpointError, match=message) as info:
        read_state_dict(path)
    assert "\x1b" not in str(info.value)  # plain text, no terminal colour codes


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_with_non_finite_values_are_refused(tmp_path, bad):
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO)
    state = golden_weights("par_tiny_4x")
    state["norm.weight"][3] = bad
    path = tmp_path / "PAR.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"non-finite weights .* \(e\.g\. norm\.weight\)"):
        load_transformer(preset, path)


class Payload:
    """Unpickling this would run code; the loader must refuse it."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_a_file_that_needs_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="execute pickled code"):
        read_state_dict(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_wrong_keys_and_shapes_are_reported(tmp_path):
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO)
    state = golden_weights("par_tiny_4x")
    state.pop("norm.weight")
    state["output.weight"] = torch.zeros(3, 3)
    path = tmp_path / "PAR.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"1 missing \(e\.g\. norm\.weight\).*wrong shape"):
        load_transformer(preset, path)


def test_released_models_run_only_their_schedule():
    par = get_preset("PAR-XL-4x")
    assert par.unsupported_reason(ScheduleSpec(grid=24, order="distant", parallel=4)) is None
    for spec in [ScheduleSpec(grid=24, order="raster", parallel=4),
                 ScheduleSpec(grid=24, order="distant", parallel=4, init_tokens=False),
                 ScheduleSpec(grid=24, order="distant", parallel=16)]:
        with pytest.raises(UnsupportedSchedule, match="trained for distant 4x"):
            par.check(spec)
    llamagen = get_preset("LlamaGen-XL")
    assert llamagen.unsupported_reason(ScheduleSpec(grid=24, order="raster", parallel=1)) is None
    assert "raster 1x only" in llamagen.unsupported_reason(ScheduleSpec(grid=24, parallel=4))
    assert "16x16 grid" in EMBEDDED.unsupported_reason(ScheduleSpec(grid=24))


def test_the_embedded_model_runs_every_schedule_the_app_offers():
    for order in ("raster", "distant", "random"):
        for parallel in (1, 4, 16):
            for init in (True, False):
                assert EMBEDDED.unsupported_reason(
                    ScheduleSpec(grid=16, order=order, parallel=parallel, init_tokens=init)) is None


def test_every_preset_default_is_accepted_by_the_app():
    """The page starts each model at its preset's sampling defaults: the app's own input checks
    (the same limits as its sliders) must accept them."""
    from par_demo.ui.inputs import sampling_config

    for preset in PRESETS.values():
        s = preset.sampling
        assert sampling_config(preset, s.cfg_scale, s.temperature, s.top_k, 0) == s


def test_a_missing_embedded_file_is_named_with_where_it_ships():
    missing = replace(EMBEDDED, weights=WeightSource("not-shipped.safetensors"))
    with pytest.raises(CheckpointError, match="not-shipped.safetensors is missing from assets/"):
        load_model(missing)
    assert local_weight_file(missing.weights) is None
    assert DEFAULT_MODEL == EMBEDDED.name
    assert EMBEDDED.args.num_classes == len(emoji_classes())


def test_unknown_model_names_list_the_choices():
    with pytest.raises(KeyError, match="PAR-XL-4x"):
        get_preset("PAR-XXXL")
    assert get_preset("par-xl-4x").name == "PAR-XL-4x"


def test_the_tokenizer_loads_for_decoding_without_its_encoder(hub):
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO)
    tokenizer = load_model(preset, cache_dir=hub.root).tokenizer
    assert not hasattr(tokenizer, "encoder")
    image = tokenizer.decode_codes(golden_expected("vq_tiny")["codes"].view(2, 4, 4))
    assert (image - golden_expected("vq_tiny")["image"]).abs().max() < 1e-4
