"""A folder of pictures through a tokenizer, for the paper's estimator (how the paper measured
Figure 9 on ImageNet with VQ-16): a tiny tokenizer in-process, the shipped one through the CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from par_demo.estimator import DependencyEstimator, codebook_features
from par_demo.folder_codes import centre_square, encode_folder, picture_files, tokenizer_codebook
from par_demo.heldout import HeldoutGrids
from par_demo.checkpoints import load_model
from par_demo.editing import load_editing_tokenizer
from par_demo.models.vq import VQArgs, VQModel
from par_demo.presets import EMBEDDED
from par_demo.preview import decode_tokens

TINY = VQArgs(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32,
              encoder_ch_mult=(1, 1), decoder_ch_mult=(1, 1), num_res_blocks=0)


def tiny_tokenizer() -> VQModel:
    torch.manual_seed(0)
    model = VQModel(TINY).eval()
    torch.nn.init.normal_(model.quantize.embedding.weight)  # spread codes: init is near zero
    return model


def write_pictures(folder, count: int, seed: int = 0) -> None:
    g = np.random.default_rng(seed)
    for i in range(count):
        sub = folder / f"class{i % 3}"  # ImageNet keeps one folder per class
        sub.mkdir(parents=True, exist_ok=True)
        size = (int(g.integers(16, 40)), int(g.integers(16, 40)))
        pixels = g.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"{i}.png")


def test_pictures_are_centre_cropped_square(tmp_path):
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = (255, 0, 0)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    square = centre_square(tmp_path / "wide.png", 8)
    assert square.shape == (8, 8, 3) and (square == (255, 0, 0)).all()


def test_a_folder_becomes_one_grid_per_readable_picture_through_the_tokenizer(tmp_path):
    write_pictures(tmp_path, 14)
    (tmp_path / "class0" / "notes.png").write_text("not a picture")
    (tmp_path / "readme.txt").write_text("ignored: not a picture file")
    tokenizer = tiny_tokenizer()
    files = picture_files(tmp_path)
    assert len(files) == 15 and all(f.suffix == ".png" for f in files)
    folder = encode_folder(tokenizer, files, size=16, batch=4)
    assert folder.codes.shape == (14, 8, 8) and len(folder.files) == 14
    assert len(folder.skipped) == 1 and "notes.png" in folder.skipped[0]
    for i in (0, 13):  # batching changes nothing: each grid is its picture's
        x = torch.as_tensor(centre_square(folder.files[i], 16)).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            alone = tokenizer.encode(x / 127.5 - 1).codes[0].numpy()
        assert np.array_equal(folder.codes[i], alone)
    book = tokenizer_codebook(tokenizer)
    np.testing.assert_allclose(np.linalg.norm(book, axis=1), 1, atol=1e-6)  # l2-normalised
    estimator = DependencyEstimator(codebook_features(folder.codes, book))
    assert estimator.dependency_map((3, 3)).entropy.shape == (8, 8)
    assert len(picture_files(tmp_path, limit=5)) == 5
    with pytest.raises(ValueError, match="--pictures: no folder at"):
        picture_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="--pictures: no picture files"):
        picture_files(tmp_path / "empty")


def test_the_cli_measures_a_folder_through_the_shipped_tokenizer(tmp_path):
    heldout = HeldoutGrids.load()
    loaded = load_model(EMBEDDED, download=False)
    pictures = decode_tokens(loaded.tokenizer, heldout.codes[:24].reshape(24, -1), heldout.grid)
    for i, picture in enumerate(pictures):
        Image.fromarray(picture).save(tmp_path / f"{i:02d}.png")
    done = subprocess.run([sys.executable, "-m", "par_demo", "dependency", "--pictures",
                           str(tmp_path), "--limit", "20", "--cell", "8,8", "--out",
                           str(tmp_path / "map.png")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pictures"] == 20 and report["tokenizer"] == EMBEDDED.tokenizer.name
    assert report["image_size"] == 64 and report["skipped"] == []
    tokenizer = load_editing_tokenizer(EMBEDDED).eval()
    folder = encode_folder(tokenizer, picture_files(tmp_path, 20), 64)
    expected = DependencyEstimator(codebook_features(folder.codes, tokenizer_codebook(tokenizer)))
    np.testing.assert_allclose(report["prior_entropy"],
                               expected.dependency_map((8, 8)).prior_entropy, atol=1e-3)
    done = subprocess.run([sys.executable, "-m", "par_demo", "orderings", "--pictures",
                           str(tmp_path), "--limit", "20", "--parallel", "16",
                           "--context-radius", "1", "--out",
                           str(tmp_path / "fig11.png")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pictures"] == 20 and len(report["orderings"]) == 4
    assert report["orderings"][0]["ordering"] == "distant 16x, with initial tokens"
