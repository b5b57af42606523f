"""One class per emoji: the table keeps each emoji's group and leaves held-out emoji out, the
relabelled grids never train on a held-out drawing, and the widened warm start draws each emoji
exactly as the 32-class model drew its group."""
import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from par_demo.classes import ClassNames
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, generate
from par_demo.train.checkpoint import TrainingState, exported_metadata, training_metadata
from par_demo.train.codes import TokenGrids, encode_dataset
from par_demo.train.config import GeneratorTraining, profile
from par_demo.train.generator import GeneratorStage
from par_demo.train.probe_codes import main as probe_main
from par_demo.train.recognition import asked_emoji
from par_demo.train.per_emoji import (CLASS_EMBEDDING, build_table, catalogue_entries,
                                      heldout_siblings, relabel, widen_generator)
from support import tiny_dataset, write_tiny_packages


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    return write_tiny_packages(tmp_path_factory.mktemp("npm"))


@pytest.fixture(scope="module")
def table(data, packages):
    return build_table(data, catalogue_entries(packages))


@pytest.fixture(scope="module")
def grids(data, table):
    torch.manual_seed(0)
    return relabel(encode_dataset(VQModel(profile("toy").tokenizer.vq).eval(), data), data,
                   table)


def test_every_training_emoji_is_one_class_in_its_group_and_held_out_emoji_are_none(data, table):
    train, held = (set(data.group[data.indices(s)].tolist()) for s in ("train", "heldout"))
    assert held and [c["emoji"] for c in table] == list(dict.fromkeys(
        data.group[data.indices("train")].tolist()))
    assert {c["emoji"] for c in table} == train and not held & train
    for c in table:
        rows = np.flatnonzero(data.group == c["emoji"])
        assert set(data.labels[rows].tolist()) == {c["group"]}
    assert len({c["name"] for c in table}) == len(table)


def test_the_class_picker_finds_an_emoji_by_name_short_name_or_character(table):
    names = ClassNames(tuple(c["name"] for c in table),
                       tuple((c["name"], *c["short_names"], c["char"]) for c in table))
    wave = next(i for i, c in enumerate(table) if c["emoji"] == "1F44B")
    assert names.resolve("waving hand sign") == wave
    assert names.resolve("wave") == wave
    assert names.resolve("\N{WAVING HAND SIGN}") == wave


def test_relabelled_grids_give_each_row_its_emoji_and_held_out_rows_the_null_class(data, table,
                                                                                  grids, tmp_path):
    null = len(table)
    for row in range(len(data)):
        label = grids.labels[row]
        if data.heldout[row]:
            assert label == null
        else:
            assert table[label]["emoji"] == data.group[row]
    assert grids.groups == tuple(data.class_names[c["group"]] for c in table)
    grids.save(tmp_path / "codes.npz")
    loaded = TokenGrids.load(tmp_path / "codes.npz")
    assert loaded.groups == grids.groups and np.array_equal(loaded.labels, grids.labels)


def test_a_per_emoji_generator_mirrors_only_the_emoji_of_groups_that_allow_it(grids):
    config = replace(profile("toy").generator,
                     model=replace(profile("toy").generator.model, num_classes=grids.num_classes))
    stage = GeneratorStage(config, grids, torch.device("cpu"))
    flags = stage.flippable.tolist()
    flags_by_group = {g: f for g, f in zip(grids.groups, flags)}
    assert flags_by_group["country flag"] is False and flags_by_group["smiling face"] is True
    assert len(flags) == grids.num_classes
    assert torch.isfinite(stage.loss(torch.Generator().manual_seed(0))["loss"])


def test_the_widened_generator_draws_each_emoji_as_the_group_model_drew_its_group(table, tmp_path):
    groups = 32
    config = replace(GeneratorTraining(), model=replace(profile("toy").generator.model,
                                                        num_classes=groups))
    model = Transformer(config.model).init_weights(torch.Generator().manual_seed(0)).eval()
    source = tmp_path / "gen2.safetensors"
    save_file(model.state_dict(), str(source),
              metadata=training_metadata(TrainingState(9000, asdict(config), {}, {}, {})))
    widen_generator(source, table, tmp_path / "gen3.safetensors")

    widened_weights = load_file(str(tmp_path / "gen3.safetensors"))
    assert widened_weights[CLASS_EMBEDDING].shape[0] == len(table) + 1
    widened = Transformer(replace(config.model, num_classes=len(table))).eval()
    widened.load_state_dict(widened_weights)
    schedule = build_schedule(ScheduleSpec(grid=config.model.grid, order="distant", parallel=4))
    sampling = SamplingConfig(cfg_scale=2.0, temperature=1.0, seed=3)
    emoji = len(table) - 1
    before = generate(model, schedule, [table[emoji]["group"]], sampling).tokens
    after = generate(widened, schedule, [emoji], sampling).tokens
    assert np.array_equal(before, after)
    saved = json.loads(exported_metadata(tmp_path / "gen3.safetensors")["training_config"])
    assert saved["model"]["num_classes"] == len(table)


def test_a_class_name_wins_over_another_class_short_name_of_the_same_words():
    names = ClassNames(("dog face", "dog"), (("dog face", "dog"), ("dog",)))
    assert names.resolve("dog") == 1 and names.resolve("dog face") == 0


def test_each_held_out_emoji_is_edited_as_its_nearest_training_sibling(data, packages, table):
    catalogue = catalogue_entries(packages)
    siblings = heldout_siblings(data, catalogue, table)
    held = set(data.group[data.indices("heldout")].tolist())
    assert set(siblings) == held
    for emoji, index in siblings.items():
        group = int(data.labels[data.group == emoji][0])
        assert table[index]["group"] == group and table[index]["emoji"] not in held
        gap = abs(catalogue[table[index]["emoji"]]["sort_order"] - catalogue[emoji]["sort_order"])
        assert all(gap <= abs(catalogue[c["emoji"]]["sort_order"] - catalogue[emoji]["sort_order"])
                   for c in table if c["group"] == group)


def test_the_probe_keeps_the_asked_emoji_training_pictures_and_every_held_out_one(grids, table,
                                                                                  tmp_path):
    codes, table_path, out = tmp_path / "codes.npz", tmp_path / "table.json", tmp_path / "p.npz"
    grids.save(codes)
    table_path.write_text(json.dumps(table))
    probe_main(["--codes", str(codes), "--table", str(table_path), "--emoji", "3",
                "--out", str(out)])
    probe, asked = TokenGrids.load(out), asked_emoji(table, 3, 0)
    train = ~grids.heldout
    assert set(probe.labels[~probe.heldout]) == set(asked)
    assert (~probe.heldout).sum() == np.isin(grids.labels[train], asked).sum()
    assert probe.heldout.sum() == grids.heldout.sum()
    np.testing.assert_array_equal(probe.codes[probe.heldout], grids.codes[grids.heldout])
    assert probe.class_names == grids.class_names  # the model keeps every class row
