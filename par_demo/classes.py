"""Class-name tables and turning what a person typed (an index or a name) into a class index."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


class ClassError(ValueError):
    """An unknown or ambiguous class."""


@dataclass(frozen=True)
class ClassNames:
    names: tuple[str, ...]  # display name of each class index
    synonyms: tuple[tuple[str, ...], ...]  # every name a class answers to, lower case

    def __len__(self) -> int:
        return len(self.names)

    def label(self, index: int) -> str:
        return f"{index}: {self.names[index]}"

    def resolve(self, query: int | str) -> int:
        """A class index from an index or a name; unknown or ambiguous names raise ClassError."""
        text = str(query).strip()
        if isinstance(query, int) or text.lstrip("-").isdigit():
            index = int(text)
            if not 0 <= index < len(self.names):
                raise ClassError(f"class index {index} is out of range 0..{len(self.names) - 1}")
            return index
        key = text.lower()
        if ":" in key and key.split(":", 1)[0].strip().isdigit():
            return self.resolve(key.split(":", 1)[0])
        exact = [i for i, syn in enumerate(self.synonyms) if key in syn]
        if len(exact) == 1:
            return exact[0]
        partial = exact or [i for i, syn in enumerate(self.synonyms)
                            if any(key in s for s in syn)]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise ClassError(f"no class is called {text!r}")
        shown = ", ".join(self.label(i) for i in partial[:8])
        more = f" and {len(partial) - 8} more" if len(partial) > 8 else ""
        raise ClassError(f"{text!r} matches several classes: {shown}{more}; give the index")


@lru_cache(maxsize=None)
def imagenet_classes() -> ClassNames:
    """The 1000 ImageNet-1k classes in index order (WordNet lemmas, from timm's data files)."""
    rows = [line.rstrip("\n").split("\t", 1)
            for line in (ASSETS / "imagenet1k_classes.tsv").read_text().splitlines()]
    lemmas = [tuple(s.strip() for s in lemma.split(",")) for _, lemma in rows]
    return ClassNames(tuple(lem[0] for lem in lemmas),
                      tuple(tuple(s.lower() for s in lem) for lem in lemmas))


@lru_cache(maxsize=None)
def emoji_classes() -> ClassNames:
    """The emoji classes of the embedded model (merged emoji-datasource subcategories)."""
    table = json.loads((ASSETS / "emoji_classes.json").read_text())
    return ClassNames(tuple(c["name"] for c in table),
                      tuple((c["name"].lower(),) for c in table))


def numbered_classes(count: int) -> ClassNames:
    """Placeholder names for models trained without a name table (test checkpoints)."""
    names = tuple(f"class {i}" for i in range(count))
    return ClassNames(names, tuple((n,) for n in names))


def class_table(kind: str, count: int) -> ClassNames:
    """The names of a preset's classes: "imagenet", "emoji" or "numbered"."""
    if kind == "imagenet":
        return imagenet_classes()
    if kind == "emoji":
        return emoji_classes()
    return numbered_classes(count)
