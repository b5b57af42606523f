"""`python -m par_demo dependency`: the paper's estimator by default (no picture), or the model on
a picture file; the map and one JSON line out."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from par_demo.__main__ import main
from par_demo.checkpoints import load_model
from par_demo.dependency import dependency_map, information_rings
from par_demo.heldout import HeldoutGrids
from par_demo.editing import encode_picture, load_editing_tokenizer
from par_demo.pictures import read_picture
from par_demo.presets import EMBEDDED
from par_demo.preview import decode_tokens
from par_demo.training_codes import shipped_estimator, shipped_orderings


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "par_demo", "dependency", *args],
                          capture_output=True, text=True, timeout=300)


def test_the_default_is_the_papers_estimator_over_the_shipped_training_pictures(tmp_path):
    out = tmp_path / "map.png"
    done = run("--cell", "4,8", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = shipped_estimator().dependency_map((4, 8))
    assert report["method"] == "estimator" and report["cell"] == [4, 8]
    assert report["pictures"] == expected.pictures
    assert report["entropy"][4][8] is None  # the known cell's own bound is -infinity
    entropy = np.array([[np.nan if v is None else v for v in row] for row in report["entropy"]])
    np.testing.assert_allclose(entropy, expected.entropy, atol=1e-3)
    np.testing.assert_allclose(report["prior_entropy"], expected.prior_entropy, atol=1e-3)
    assert report["information_error"] == round(expected.error, 4)
    rings = information_rings((4, 8), np.nan_to_num(expected.information))
    assert report["information_by_distance"] == {k: round(v, 4) for k, v in rings.items()}
    assert Image.open(out).width > Image.open(out).height


def test_orderings_draws_figure_11_of_the_shipped_training_pictures(tmp_path, capsys):
    out = tmp_path / "fig11.png"
    assert main(["orderings", "--parallel", "16", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = [r for r in shipped_orderings() if r.spec.parallel == 16]
    assert report["method"] == "estimator" and report["pictures"] == expected[0].pictures
    assert report["orderings"] == [{"ordering": r.spec.label,
                                    "mean_increase": round(r.mean_increase, 4),
                                    "error": round(r.error, 4)} for r in expected]
    assert Image.open(out).width > 2 * Image.open(out).height


def test_a_heldout_picture_gives_the_models_map_of_its_tokens(tmp_path):
    heldout = HeldoutGrids.load()
    loaded = load_model(EMBEDDED, download=False)
    picture = decode_tokens(loaded.tokenizer, heldout.codes[:1].reshape(1, -1), heldout.grid)[0]
    Image.fromarray(picture).save(tmp_path / "in.png")
    out = tmp_path / "map.png"
    done = run("--method", "model", "--image", str(tmp_path / "in.png"), "--cell", "3,12",
               "--class", "grinning face", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cell"] == [3, 12] and report["class"] == 0 and report["method"] == "model"
    tokens = encode_picture(load_editing_tokenizer(EMBEDDED),
                            read_picture(tmp_path / "in.png", EMBEDDED.image_size)).tokens
    expected = dependency_map(loaded.transformer, tokens, (3, 12), 0)
    np.testing.assert_allclose(report["entropy"], expected.entropy, atol=1e-3)
    np.testing.assert_allclose(report["prior_entropy"], expected.prior_entropy, atol=1e-3)
    assert report["entropy"][3][12] == 0
    assert Image.open(out).width > Image.open(out).height


def test_bad_requests_exit_with_a_message(tmp_path, capsys):
    Image.new("RGBA", (30, 20), (255, 200, 0, 255)).save(tmp_path / "in.png")
    (tmp_path / "text.png").write_text("not a picture")
    picture = str(tmp_path / "in.png")
    model = ["--method", "model"]
    cases = [
        (["--cell", "16,0"], "--cell must be ROW,COL with both in 0..15"),
        (["--cell", "centre"], "expected ROW,COL"),
        (["--cell", "1,1", "--image", picture], "--image: the estimator measures over"),
        (["--cell", "1,1", "--class", "0"], "--class: the estimator measures over"),
        (["--cell", "1,1", "--method", "guess"], "invalid choice: 'guess'"),
        (["--cell", "1,1", "--tokenizer", "VQ-16"], "--tokenizer: only with --pictures"),
        (["--cell", "1,1", "--limit", "5"], "--limit: only with --pictures"),
        (["--cell", "1,1", "--pictures", str(tmp_path / "none")], "--pictures: no folder at"),
        (["--cell", "1,1", "--pictures", str(tmp_path), "--tokenizer", "VQ-99"],
         "--tokenizer must be one of"),
        (["--cell", "1,1", "--pictures", str(tmp_path), "--image-size", "30"],
         "--image-size must be a multiple of the tokenizer's 4"),
        ([*model, "--image", picture, "--cell", "1,1", "--pictures", str(tmp_path)],
         "--pictures: only with the estimator"),
        ([*model, "--cell", "1,1"], "--image: the model method measures one picture"),
        ([*model, "--image", picture, "--cell", "16,0"], "--cell must be ROW,COL"),
        ([*model, "--image", str(tmp_path / "none.png"), "--cell", "1,1"],
         "--image: no file at"),
        ([*model, "--image", str(tmp_path / "text.png"), "--cell", "1,1"],
         "--image: not an image file"),
        ([*model, "--image", picture, "--cell", "1,1", "--class", "hippogriff"], "hippogriff"),
        ([*model, "--image", picture, "--cell", "1,1", "--model", "PAR-XL-4x"],
         "do not know which cell they predict"),
    ]
    for args, message in cases:
        try:
            code = main(["dependency", *args, "--out", str(tmp_path / "map.png")])
        except SystemExit as stop:  # argparse refuses what it cannot parse
            code = stop.code
        assert code == 2 and message in capsys.readouterr().err, args
    assert not (tmp_path / "map.png").exists()
    for args, message in [(["--parallel", "2"], "--parallel must be 4 or 16"),
                          (["--limit", "5"], "--limit: only with --pictures")]:
        assert main(["orderings", *args, "--out", str(tmp_path / "o.png")]) == 2
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "o.png").exists()
