"""Class-name tables and turning what a person typed (an index or a name) into a class index."""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ASCII_DIGITS = "0123456789"
INDEX = re.compile(r"-?[0-9]+")  # not \d, which matches every Unicode digit


class ClassError(ValueError):
    """An unknown or ambiguous class, an index outside the table or not in ASCII digits."""


@dataclass(frozen=True)
class ClassNames:
    names: tuple[str, ...]  # display name of each class index
    synonyms: tuple[tuple[str, ...], ...]  # every name a class answers to, lower case

    def __len__(self) -> int:
        return len(self.names)

    def label(self, index: int) -> str:
        return f"{index}: {self.names[index]}"

    def resolve(self, query: int | str) -> int:
        """A class index from an index, a name, or a label ("4: heart"); unknown or ambiguous
        names, non-ASCII digits and a label whose index and name disagree raise ClassError."""
        if isinstance(query, int):
            return self._in_range(query)
        text = str(query).strip()
        foreign = next((ch for ch in text if ch.isnumeric() and ch not in ASCII_DIGITS), None)
        if foreign is not None:  # int() would read some of these, str.isdigit() others
            what = unicodedata.name(foreign, "a non-ASCII numeral").lower()
            raise ClassError(f"a class index takes the digits 0-9 only, not {foreign!r} ({what})")
        if INDEX.fullmatch(text):
            return self._index(text)
        head, colon, tail = text.partition(":")
        if colon and INDEX.fullmatch(head.strip()):
            index = self._index(head.strip())
            name = tail.strip()
            if name and not any(name.lower() in s for s in self.synonyms[index]):
                raise ClassError(f"{text!r} disagrees with itself: class {index} is "
                                 f"{self.names[index]!r}, but {self._meaning(name)}; give the "
                                 "index or the name")
            return index
        return self._by_name(text)

    def _index(self, digits: str) -> int:
        """A class index written out; a sign is refused ("-0" is no class 0)."""
        if digits.startswith("-"):
            raise ClassError(f"class index {digits} is out of range 0..{len(self.names) - 1}")
        return self._in_range(int(digits))

    def _in_range(self, index: int) -> int:
        if not 0 <= index < len(self.names):
            raise ClassError(f"class index {index} is out of range 0..{len(self.names) - 1}")
        return index

    def _meaning(self, name: str) -> str:
        matches = self._matches(name)
        if not matches:
            return f"no class is called {name!r}"
        if len(matches) == 1:
            return f"{name!r} is class {self.label(matches[0])}"
        return f"{name!r} names other classes ({self._listed(matches)})"

    def _matches(self, text: str) -> list[int]:
        """The class of that name, else the classes it is another name of ("dog" is the dog, not
        the dog face whose short name it also is), else those with a name that contains it."""
        key = text.lower()
        named = [i for i, name in enumerate(self.names) if name.lower() == key]
        if named:
            return named
        exact = [i for i, syn in enumerate(self.synonyms) if key in syn]
        return exact or [i for i, syn in enumerate(self.synonyms) if any(key in s for s in syn)]

    def _listed(self, indices: list[int]) -> str:
        shown = ", ".join(self.label(i) for i in indices[:8])
        return shown + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")

    def _by_name(self, text: str) -> int:
        matches = self._matches(text)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ClassError(f"no class is called {text!r}")
        raise ClassError(f"{text!r} matches several classes: {self._listed(matches)}; "
                         "give the index")


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


@lru_cache(maxsize=None)
def per_emoji_classes() -> ClassNames:
    """One class per training emoji (the third generation): its name, then its short names and
    the emoji character itself, so "owl", "🦉" and "red apple" all find their class."""
    table = json.loads((ASSETS / "emoji_classes_gen3.json").read_text())
    return ClassNames(tuple(c["name"] for c in table),
                      tuple((c["name"], *(s.replace("_", " ") for s in c["short_names"]),
                             c["char"]) for c in table))


@lru_cache(maxsize=None)
def heldout_siblings() -> dict[str, int]:
    """Each held-out emoji's nearest training sibling's class (par_demo.train.per_emoji)."""
    return json.loads((ASSETS / "emoji_heldout_siblings.json").read_text())


def heldout_class(kind: str, emoji: str, group: int) -> int:
    """The class an unseen picture of `emoji` (of 32-way `group`) is drawn as: its group, or
    with one class per emoji, its nearest training sibling (held-out emoji have no class)."""
    return heldout_siblings()[emoji] if kind == "emoji-per-emoji" else group


def numbered_classes(count: int) -> ClassNames:
    """Placeholder names for models trained without a name table (test checkpoints)."""
    names = tuple(f"class {i}" for i in range(count))
    return ClassNames(names, tuple((n,) for n in names))


def class_table(kind: str, count: int) -> ClassNames:
    """The names of a preset's classes: "imagenet", "emoji", "emoji-per-emoji" or "numbered"."""
    if kind == "imagenet":
        return imagenet_classes()
    if kind == "emoji":
        return emoji_classes()
    if kind == "emoji-per-emoji":
        return per_emoji_classes()
    return numbered_classes(count)
