import argparse
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from par_demo.checkpoints import (CheckpointError, load_model, load_transformer,
                                  local_weight_file, read_state_dict, weight_file)
from par_demo.pickle_scan import code_globals, scan_checkpoint
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
    with pytest.raises(CheckpointError, match="broken.pt is malformed: its zip archive is damaged "
                                              r"or cut short \(the file is truncated\)"):
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
    ("old.pt", _legacy_truncated, r"old\.pt is malformed: its pickle data ends early"),
    ("huge.pt", lambda path: path.write_bytes(b"\x80\x04\x8d" + (2**62).to_bytes(8, "little")),
     r"huge\.pt is malformed: its pickle data ends early"),  # a string said to fill 4 EiB
    ("evil.pt", lambda path: torch.save({"model": {}, "x": Payload()}, path),
     r"refusing evil\.pt: loading it would execute pickled code \(it calls builtins\.print\)"),
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


class ShellCommand:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _zip_format(path, payload):
    torch.save({"model": {"w": torch.zeros(2)}, "x": payload}, path)


def _legacy_format(path, payload):
    torch.save({"model": {"w": torch.zeros(2)}, "x": payload}, path,
               _use_new_zipfile_serialization=False)


def _bare_pickle(protocol):
    def write(path, payload):
        path.write_bytes(pickle.dumps({"model": {}, "x": payload}, protocol=protocol))
    return write


def _names_from_the_memo(path, payload):
    """Protocol 4: STACK_GLOBAL's two strings come back from the memo after being popped."""
    path.write_bytes(b"\x80\x04\x8c\x05posix\x940\x8c\x06system\x940h\x00h\x01\x93"
                     + pickle.dumps((f"touch {payload.marker}",), protocol=4)[2:-1] + b"R.")


@pytest.mark.parametrize("write", [_zip_format, _legacy_format, _bare_pickle(0), _bare_pickle(2),
                                   _bare_pickle(5), _names_from_the_memo],
                         ids=["zip", "legacy", "pickle-0", "pickle-2", "pickle-5", "memo"])
def test_a_shell_command_is_refused_naming_the_global_it_imports(tmp_path, write):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    write(path, ShellCommand(marker))
    with pytest.raises(CheckpointError, match=r"refusing evil\.pt: loading it would execute "
                                              r"pickled code \(it calls posix\.system\)"):
        read_state_dict(path)
    assert not marker.exists()
    assert "posix.system" in scan_checkpoint(path).imports


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_of_tensors_and_arguments_loads_and_scans_clean(tmp_path, zip_format):
    """What training scripts save beside the weights (bf16, parameters, optimizer state, an
    argparse.Namespace, sizes, sets) imports only what tensors are rebuilt from."""
    layer = torch.nn.Linear(3, 4).to(torch.bfloat16)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.ones(1, 3, dtype=torch.bfloat16)).sum().backward()
    optimizer.step()
    path = tmp_path / "good.pt"
    torch.save({"model": layer.state_dict(), "optimizer": optimizer.state_dict(),
                "args": argparse.Namespace(lr=1e-4), "weight": torch.nn.Parameter(torch.ones(2)),
                "size": torch.Size([2]), "tags": {"a"}, "int8": torch.zeros(2, dtype=torch.int8)},
               path, _use_new_zipfile_serialization=zip_format)
    assert set(read_state_dict(path)) == {"weight", "bias"}
    scan = scan_checkpoint(path)
    assert scan.problem is None and "torch._utils._rebuild_tensor_v2" in scan.imports
    assert code_globals(scan) == ()


@pytest.mark.parametrize("write", [_legacy_format, _bare_pickle(2)], ids=["legacy", "pickle-2"])
def test_a_hostile_file_cut_inside_its_global_is_malformed_not_code(tmp_path, write):
    path = tmp_path / "cut.pt"
    write(path, ShellCommand(tmp_path / "ran"))
    data = path.read_bytes()
    path.write_bytes(data[:data.index(b"system") + 3])  # "posix\nsys": no whole name
    with pytest.raises(CheckpointError, match=r"cut\.pt is malformed: its pickle data ends early"):
        read_state_dict(path)


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
    assert EMBEDDED.args.num_classes == len(EMBEDDED.class_names())


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
