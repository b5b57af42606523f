"""Reading a visitor's picture and mask files: what is accepted and how, and clear refusals."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from par_demo.masks import CellMask, read_mask, region_mask
from par_demo.pictures import EditError, read_picture


def png_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def tiff_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "TIFF")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (no real pixel data behind it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def test_transparency_is_composited_on_white_and_any_shape_becomes_the_model_size():
    rgba = np.zeros((100, 300, 4), np.uint8)
    rgba[:, :150] = (200, 0, 0, 255)  # left half opaque red, right half transparent
    picture = read_picture(png_bytes(Image.fromarray(rgba)), 64)
    assert picture.image.shape == (64, 64, 3) and picture.source_size == (300, 100)
    assert "transparency composited on white" in picture.notes
    assert (picture.image[:10] == 255).all()  # padded on white above the wide picture
    assert tuple(picture.image[32, 5]) == (200, 0, 0) and (picture.image[32, 60] == 255).all()
    assert picture.original.shape == (100, 300, 3)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    picture = read_picture(out.getvalue(), 64)
    assert picture.image[32, 32, 0] > 200 and picture.image[32, 32, 2] < 50
    assert any("first of its 2 frames" in note for note in picture.notes)


def test_sixteen_bit_greyscale_and_cmyk_are_converted():
    grey16 = Image.fromarray(np.full((32, 32), 65535 // 2, np.uint16))
    picture = read_picture(png_bytes(grey16), 64)
    assert abs(int(picture.image[10, 10, 0]) - 127) <= 1
    assert "16-bit greyscale reduced to 8 bits" in picture.notes
    out = io.BytesIO()
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(out, "JPEG", quality=95)
    picture = read_picture(out.getvalue(), 64)
    assert "CMYK converted to RGB" in picture.notes
    assert picture.image[32, 32, 0] > 200 and picture.image[32, 32, 1] < 60


@pytest.mark.parametrize("data,message", [
    (b"certainly not a picture", "picture: not an image file"),
    (png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))[:60], "picture: the file is damaged"),
    (png_bytes(Image.new("RGB", (1, 1))), "1x1 pixels is too small"),
    (png_claiming(6000, 6000), "6000x6000 pixels is too large"),
    (png_claiming(20000, 20000), "too many pixels"),
    (tiff_bytes(Image.new("F", (32, 32))), "picture: floating-point pixels are not supported"),
], ids=["not-an-image", "truncated", "1x1", "huge", "bomb", "float"])
def test_bad_pictures_are_refused_naming_the_field(data, message):
    with pytest.raises(EditError, match=message):
        read_picture(data, 64)


def test_a_truncated_picture_is_refused_as_damaged():
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = png_bytes(Image.fromarray(noise))
    with pytest.raises(EditError, match="picture: the file is damaged or truncated"):
        read_picture(data[:len(data) // 2], 64)


@pytest.mark.parametrize("region,count", [("left", 128), ("right", 128), ("top", 128),
                                          ("bottom", 128), ("centre", 64), ("border", 192)])
def test_region_presets(region, count):
    mask = region_mask(region, 16)
    assert mask.count == count


def test_an_unknown_region_is_refused():
    with pytest.raises(EditError, match="region: unknown 'middle'; choose one of left"):
        region_mask("middle", 16)


def test_a_brush_layer_is_read_from_its_alpha_at_any_scale():
    layer = np.zeros((512, 512, 4), np.uint8)
    layer[:, 256:] = (255, 0, 255, 255)  # the painted right half, at the editor's size
    mask = read_mask(Image.fromarray(layer), (64, 64), 16)
    assert np.array_equal(mask.selected, region_mask("right", 16).selected)


def test_an_opaque_mask_is_read_from_its_light_pixels_and_snapped_to_cells():
    grey = np.zeros((64, 64), np.uint8)
    grey[:, 48:] = 255  # the last 4 columns of cells
    grey[:, 46] = 255  # one pixel column of cell column 11: a quarter of each cell, regenerated
    grey[0, 36:39] = 255  # 3 pixels of the 16 of cell (0, 9): kept
    mask = read_mask(png_bytes(Image.fromarray(grey)), (64, 64), 16).selected.reshape(16, 16)
    assert mask[:, 11:].all() and not mask[0, 9] and mask.sum() == 16 * 5


def test_a_mask_of_other_proportions_is_refused():
    with pytest.raises(EditError, match="mask: 64x32 pixels does not fit the 64x64 picture"):
        read_mask(png_bytes(Image.new("L", (64, 32), 255)), (64, 64), 16)


def test_a_mask_of_a_wide_picture_is_padded_like_the_picture():
    grey = np.zeros((100, 200), np.uint8)
    grey[:, 100:] = 255
    mask = read_mask(png_bytes(Image.fromarray(grey)), (400, 200), 16).selected.reshape(16, 16)
    assert not mask[:4].any() and not mask[12:].any()  # the white padding above and below
    assert mask[4:12, 8:].all() and not mask[4:12, :8].any()
    assert isinstance(CellMask(16, mask.reshape(-1)).cells, np.ndarray)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(EditError, match="picture: no file at"):
        read_picture(tmp_path / "gone.png", 64)
    (tmp_path / "in.png").write_bytes(png_bytes(Image.new("RGB", (20, 40), (9, 9, 9))))
    assert read_picture(str(tmp_path / "in.png"), 64).source_size == (20, 40)
