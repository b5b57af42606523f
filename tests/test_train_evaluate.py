"""The whole pipeline at toy scale, ending in the ordering table and the sample grids."""
import json

import numpy as np
import pytest
from PIL import Image

from par_demo.orders import build_schedule
from par_demo.train.classifier import train_classifier
from par_demo.train.codes import encode_dataset
from par_demo.train.config import EVAL_SCHEDULES, profile
from par_demo.train.evaluate import main, sample_grid, slug
from par_demo.train.generator import train_generator
from par_demo.train.tokenizer import train_tokenizer
from test_train_emoji_data import tiny_dataset

TOY = profile("toy")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Train every stage at toy scale, then run the evaluation command once (without the CPU
    timings, which test_timing_columns_time_each_ordering_with_and_without_previews covers)."""
    root = tmp_path_factory.mktemp("pipeline")
    data = tiny_dataset(root)
    data.save(root / "emoji.npz")
    tokenizer = train_tokenizer(TOY.tokenizer, data, root / "tokenizer", "cpu", quiet=True)
    grids = encode_dataset(tokenizer, data)
    train_generator(TOY.generator, grids, root / "generator", "cpu", quiet=True)
    train_classifier(TOY.classifier, data, root / "classifier", "cpu", quiet=True)
    main(["--data", str(root / "emoji.npz"), "--tokenizer-run", str(root / "tokenizer"),
          "--generator-run", str(root / "generator"), "--classifier-run", str(root / "classifier"),
          "--out", str(root / "eval"), "--profile", "toy", "--device", "cpu", "--no-timing"])
    return root / "eval", data


def test_table_rows_cover_the_issue_orderings_with_sane_numbers(report):
    out, data = report
    saved = json.loads((out / "results.json").read_text())
    rows = saved["orderings"]
    assert [r["label"] for r in rows] == [s.label for s in EVAL_SCHEDULES]
    assert [r["steps"] for r in rows] == [256, 256, 67, 67, 64, 31, 16]
    assert [r["steps"] for r in rows] == [build_schedule(s).num_steps for s in EVAL_SCHEDULES]
    for r in rows:
        assert np.isfinite(r["frechet"]) and r["frechet"] >= 0
        assert 0 <= r["class_accuracy"] <= 1
        assert np.isnan(r["cpu_ms"]) and np.isnan(r["cpu_ms_previews"])  # --no-timing
    real = saved["real"]
    assert 0 <= real["heldout_accuracy"] <= 1 and real["frechet_train_vs_heldout"] >= 0
    assert 0 <= real["reconstructed_heldout_accuracy"] <= 1
    assert real["frechet_reconstructed_vs_heldout"] >= 0
    table = (out / "table.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + 7
    for r in rows:
        assert f"| {r['label']} | {r['steps']} |" in table


def test_timing_columns_time_each_ordering_with_and_without_previews(report):
    out, _ = report
    root = out.parent
    main(["--data", str(root / "emoji.npz"), "--tokenizer-run", str(root / "tokenizer"),
          "--generator-run", str(root / "generator"), "--classifier-run", str(root / "classifier"),
          "--profile", "toy", "--device", "cpu", "--out", str(root / "timed"),
          "--orderings", "distant 16x, without initial tokens", "distant 4x, with initial tokens"])
    rows = json.loads((root / "timed" / "results.json").read_text())["orderings"]
    for r in rows:
        assert r["cpu_ms"] > 0 and r["cpu_ms_previews"] > 0
    table = (root / "timed" / "table.md").read_text()
    assert f"| {rows[0]['cpu_ms']:.0f} | {rows[0]['cpu_ms_previews']:.0f} |" in table
    assert "CPU timings on 2 threads" in table


def test_one_sample_grid_per_ordering_with_a_block_per_class(report):
    out, data = report
    config = TOY.evaluation
    assert len(list(out.glob("samples_*.png"))) == len(EVAL_SCHEDULES)
    rows = -(-data.num_classes // config.grid_classes_per_row)
    for spec in EVAL_SCHEDULES:
        png = Image.open(out / f"samples_{slug(spec.label)}.png")
        assert png.size == (64 * config.grid_side * config.grid_classes_per_row,
                            64 * config.grid_side * rows)


def test_sample_grid_puts_each_class_in_its_own_block():
    images = np.arange(1, 6 * 2 * 2 * 3 + 1, dtype=np.uint8).reshape(6, 2, 2, 3)
    grid = sample_grid(images, num_classes=3, per_class=2, side=2, classes_per_row=2)
    assert grid.shape == (8, 8, 3)
    assert np.array_equal(grid[0:2, 0:2], images[0]) and np.array_equal(grid[0:2, 2:4], images[1])
    assert np.array_equal(grid[0:2, 4:6], images[2])  # class 1, top-right block
    assert np.array_equal(grid[4:6, 0:2], images[4])  # class 2, second row of blocks
    assert (grid[2:4] == 255).all()  # two samples fill half of a 2x2 block
    assert (grid[4:8, 4:8] == 255).all()  # no fourth class


def test_flags_pick_orderings_sample_count_and_seed(report, capsys):
    out, _ = report
    root = out.parent
    runs = ["--data", str(root / "emoji.npz"), "--tokenizer-run", str(root / "tokenizer"),
            "--generator-run", str(root / "generator"), "--classifier-run",
            str(root / "classifier"), "--profile", "toy", "--device", "cpu", "--no-timing"]
    main(runs + ["--out", str(root / "two"), "--orderings", "distant 4x, with initial tokens",
                 "raster 1x"])
    rows = json.loads((root / "two" / "results.json").read_text())["orderings"]
    assert [r["label"] for r in rows] == ["distant 4x, with initial tokens", "raster 1x"]
    main(runs + ["--out", str(root / "more"), "--orderings", "raster 1x", "--images-per-class",
                 "2", "--seed", "7"])
    assert "2 images per class" in (root / "more" / "table.md").read_text()
    config = json.loads((root / "more" / "results.json").read_text())["config"]
    assert (config["images_per_class"], config["seed"]) == (2, 7)
    main(runs + ["--out", str(root / "rivals"), "--orderings", "zipar, window 2",
                 "diagonal wavefront", "random-cosine, 31 steps", "distant 16x, with initial tokens"])
    rows = json.loads((root / "rivals" / "results.json").read_text())["orderings"]
    assert [r["steps"] for r in rows] == [60, 31, 31, 31]
    assert all(np.isfinite(r["frechet"]) and 0 <= r["class_accuracy"] <= 1 for r in rows)
    assert "| zipar, window 2 | 60 |" in (root / "rivals" / "table.md").read_text()
    with pytest.raises(SystemExit):
        main(runs + ["--out", str(root / "bad"), "--orderings", "zigzag 4x"])
    assert "unknown ordering 'zigzag 4x'" in capsys.readouterr().err


def test_exported_files_stand_in_for_run_folders(report, capsys):
    from par_demo.classes import ASSETS

    out, data = report
    root = out.parent
    common = ["--data", str(root / "emoji.npz"), "--classifier-run", str(root / "classifier"),
              "--profile", "toy", "--device", "cpu",
              "--tokenizer-weights", str(ASSETS / "emoji_tokenizer.safetensors")]
    main(common + ["--reference-only"])
    reference = json.loads(capsys.readouterr().out)
    assert set(reference) == {"frechet_train_vs_heldout", "heldout_accuracy",
                              "frechet_reconstructed_vs_heldout",
                              "reconstructed_heldout_accuracy"}
    assert 0 <= reference["reconstructed_heldout_accuracy"] <= 1
    main(common + ["--generator-weights", str(ASSETS / "emoji_generator.safetensors"),
                   "--out", str(root / "shipped"), "--no-timing",
                   "--orderings", "distant 16x, without initial tokens"])
    rows = json.loads((root / "shipped" / "results.json").read_text())["orderings"]
    assert rows[0]["steps"] == 16 and 0 <= rows[0]["class_accuracy"] <= 1
    with pytest.raises(ValueError, match="no generator training config"):
        main(common + ["--generator-weights", str(ASSETS / "emoji_tokenizer.safetensors"),
                       "--out", str(root / "wrong"), "--no-timing"])
