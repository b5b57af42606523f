"""Extra emoji drawings from Iconify JSON sets on npm, matched to catalogue emoji by code points.

An Iconify set package holds `icons.json` (SVG bodies) and `chars.json` (code points -> icon
name). Only sets that are openly licensed and not share-alike belong in EXTRA_SETS:

* `fluent-flat`: Microsoft Fluent Emoji Flat, `@iconify-json/fluent-emoji-flat` (MIT).

`@iconify-json/fxemoji` (Mozilla Firefox OS emoji; drawings CC-BY-4.0 by Mozilla's LICENSE.md,
Apache-2.0 by the package) was left out: its `chars.json` is empty, so its icons cannot be
matched to emoji by code points.

Rendering SVG needs `pip install cairosvg` (it draws with the system's libcairo2). It is a
training-time dependency only: the app never renders SVG.
"""
from __future__ import annotations

import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

VARIATION_SELECTOR = "fe0f"  # presentation only: emoji-datasource writes it, Iconify's chars don't


@dataclass(frozen=True)
class ExtraSet:
    style: str  # the dataset's `style` of its rows
    package: str
    version: str
    license: str
    zoom: float  # about the centre, so the drawing fills the frame like emoji-datasource's PNGs


EXTRA_SETS = {
    # the icons have a 2/32 margin; emoji-datasource's 64 px drawings span about 62 px
    "fluent-flat": ExtraSet("fluent-flat", "@iconify-json/fluent-emoji-flat", "1.2.6",
                            "MIT (Microsoft Fluent Emoji Flat)", zoom=1.1),
}


@dataclass(frozen=True)
class IconSet:
    icons: dict  # icons.json: {"icons": {name: {"body", ...}}, "width", "height", ...}
    chars: dict[str, str]  # code points (lower-case hex joined by "-") -> icon name


def extra_tarball(folder: Path, extra: ExtraSet) -> Path:
    """Where `npm pack` writes the package: @scope/name -> scope-name-version.tgz."""
    return folder / f"{extra.package.lstrip('@').replace('/', '-')}-{extra.version}.tgz"


def fetch_extra_sets(folder: Path, extras: list[ExtraSet]) -> None:
    missing = [e for e in extras if not extra_tarball(folder, e).is_file()]
    if not missing:
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", *(f"{e.package}@{e.version}" for e in missing),
                    "--pack-destination", str(folder)], check=True, stdout=subprocess.DEVNULL)


def read_icon_set(path: Path) -> IconSet:
    with tarfile.open(path, "r:gz") as tar:
        def member(name: str) -> dict:
            f = tar.extractfile(f"package/{name}")
            if f is None:
                raise FileNotFoundError(f"{name} is not a file in {path.name}")
            return json.loads(f.read())
        return IconSet(icons=member("icons.json"), chars=member("chars.json"))


def code_key(code_points: str) -> str:
    """'2764-FE0F' and '2764' name the same emoji."""
    return "-".join(p for p in code_points.lower().split("-") if p != VARIATION_SELECTOR)


def match_groups(icon_set: IconSet, groups: list[str]) -> dict[str, str]:
    """Icon name of each catalogue emoji (base code points) that the set draws. Skin-tone
    icons never match: groups are base emoji, and a tone's code points differ from its base's."""
    by_key = {code_key(code): name for code, name in icon_set.chars.items()}
    found = {g: by_key.get(code_key(g)) for g in groups}
    return {g: name for g, name in found.items() if name in icon_set.icons["icons"]}


def icon_svg(icon_set: IconSet, name: str, zoom: float) -> str:
    """A standalone SVG of one icon, its view box shrunk about the centre by `zoom`."""
    icon = icon_set.icons["icons"][name]
    width = icon.get("width", icon_set.icons.get("width", 16))
    height = icon.get("height", icon_set.icons.get("height", 16))
    left = icon.get("left", icon_set.icons.get("left", 0))
    top = icon.get("top", icon_set.icons.get("top", 0))
    w, h = width / zoom, height / zoom
    x, y = left + (width - w) / 2, top + (height - h) / 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="{x} {y} {w} {h}">{icon["body"]}</svg>')


def render_png(svg: str, size: int) -> bytes:
    """RGBA PNG of `svg` at size x size."""
    try:
        import cairosvg
    except ImportError as e:  # a training-time dependency: the app does not need it
        raise ImportError("rendering the extra emoji sets needs the `cairosvg` package: "
                          "pip install cairosvg") from e
    return cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size)


def extra_drawings(path: Path, extra: ExtraSet, groups: list[str],
                   size: int) -> dict[str, bytes]:
    """PNG bytes of the set's drawing of each of `groups` it draws, in the order of `groups`."""
    icon_set = read_icon_set(path)
    names = match_groups(icon_set, groups)
    return {g: render_png(icon_svg(icon_set, name, extra.zoom), size) for g, name in names.items()}
