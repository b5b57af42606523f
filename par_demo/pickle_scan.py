"""The globals a checkpoint's pickles would import, read from their opcodes without unpickling.

torch.load decides whether a file loads; this module says why one was refused, the same under
every torch version: a global outside what tensors are rebuilt from is code that unpickling would
run. It walks the opcodes (pickletools.genops) of the data.pkl inside a torch zip archive, or of
the pickles at the head of a legacy (non-zip) file, and resolves GLOBAL, INST and STACK_GLOBAL;
the last names its global by the two strings below it on the stack, so the stack is modelled.
"""
from __future__ import annotations

import _compat_pickle
import os
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
LEGACY_PICKLES = 5  # magic number, protocol, system info, the object, its storage keys
STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
              "SHORT_BINUNICODE", "BINUNICODE8"}
PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
EXTENSION_OPS = {"EXT1", "EXT2", "EXT4"}  # globals looked up in copyreg's extension registry
DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
MAX_LINE = 1 << 20  # protocol 0 arguments end with a newline; no global's name is this long
MARK = object()  # the stack model's MARK; every value that is not a string is None

# what torch.save writes for tensors and their containers (torch's weights-only defaults), and
# argparse.Namespace, in which the official training scripts store their arguments
TENSOR_PARTS = frozenset({
    "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
    "torch._tensor._rebuild_from_type_v2", "_codecs.encode", "builtins.bytearray",
    "builtins.set", "builtins.complex", "argparse.Namespace"})


@dataclass(frozen=True)
class PickleScan:
    imports: tuple[str, ...]  # every global the pickles import, as module.name, in order
    problem: str | None  # why the data cannot be unpickled, or None


class _Bounded:
    """A stream that reads no further than its size, so a hostile length field (2**62 bytes) or a
    line without end costs no memory."""

    def __init__(self, stream: BinaryIO, size: int):
        self._stream, self._left = stream, size

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def readline(self) -> bytes:
        data = self._stream.readline(min(MAX_LINE, self._left))
        self._left -= len(data)
        return data

    def at_end(self) -> bool:
        return self._left <= 0


class _Malformed(ValueError):
    """The pickle cannot be read on: the scanner's own stop, a ValueError like genops' own."""


def code_globals(scan: PickleScan) -> tuple[str, ...]:
    """The globals that are not parts of tensors: unpickling would call them."""
    return tuple(dict.fromkeys(g for g in scan.imports if not _builds_tensors(g)))


def scan_checkpoint(path: Path) -> PickleScan:
    """The globals of a torch zip archive's pickles, or of a legacy file's leading pickles."""
    with open(path, "rb") as f:
        if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            f.seek(0)
            return _scan_pickles(_Bounded(f, os.fstat(f.fileno()).st_size), LEGACY_PICKLES)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return PickleScan((), "its zip archive is damaged or cut short (the file is truncated)")
    with archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".pkl")]
        if not members:
            return PickleScan((), "its zip archive holds no pickle (data.pkl)")
        imports: list[str] = []
        for member in members:
            try:  # RuntimeError: encrypted; NotImplementedError: an unknown compression
                with archive.open(member) as f:
                    scan = _scan_pickles(_Bounded(f, member.file_size), 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
                return PickleScan(tuple(imports),
                                  f"{member.filename} in its zip archive is damaged")
            imports += scan.imports
            if scan.problem:
                return PickleScan(tuple(imports), scan.problem)
        return PickleScan(tuple(imports), None)


def _scan_pickles(stream: _Bounded, limit: int) -> PickleScan:
    """The globals of up to `limit` consecutive pickles; stops cleanly where the data ends."""
    imports: list[str] = []
    for _ in range(limit):
        if stream.at_end():
            break
        try:
            _scan_one(stream, imports)
        except ValueError:  # an unknown opcode, an argument cut off, a stack that does not add up
            return PickleScan(tuple(imports), "its pickle data ends early (the file is truncated)"
                              if stream.at_end() else "its pickle data is not valid pickle opcodes")
    return PickleScan(tuple(imports), None)


def _scan_one(stream: _Bounded, imports: list[str]) -> None:
    stack: list = []
    memo: dict[int, object] = {}
    protocol = 0
    for op, arg, _ in pickletools.genops(stream):
        name = op.name
        if name == "PROTO":
            protocol = arg
        if name in ("GLOBAL", "INST"):
            imports.append(_global(*arg.split(" ", 1), protocol))
        elif name in EXTENSION_OPS:
            imports.append(f"copyreg extension {arg}")
        elif name == "STACK_GLOBAL":
            module, attr = _pop(stack, 2)
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise _Malformed("STACK_GLOBAL needs two strings")
            imports.append(_global(module, attr, protocol))
            stack.append(None)
            continue
        if name in PUT_OPS or name == "MEMOIZE":
            if not stack:
                raise _Malformed("memo write from an empty stack")
            memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
        elif name in GET_OPS:
            stack.append(memo.get(arg))
        elif name == "DUP":
            stack.extend(_pop(stack, 1) * 2)
        else:
            _apply(stack, op, arg)
        if name == "STOP":
            return


def _apply(stack: list, op, arg) -> None:
    """The opcode's effect on the stack model, as pickletools.dis works it out."""
    before = op.stack_before
    if pickletools.markobject in before or (op.name == "POP" and stack and stack[-1] is MARK):
        if MARK not in stack:
            raise _Malformed(f"{op.name} without a MARK")
        while stack.pop() is not MARK:
            pass
        marked = pickletools.markobject in before
        before = before[:before.index(pickletools.markobject)] if marked else []
    _pop(stack, len(before))
    for kind in op.stack_after:
        if kind is pickletools.markobject:
            stack.append(MARK)
        else:
            stack.append(arg if op.name in STRING_OPS else None)


def _pop(stack: list, count: int) -> list:
    if count == 0:
        return []
    if len(stack) < count or MARK in stack[-count:]:
        raise _Malformed("stack underflow")
    values = stack[-count:]
    del stack[-count:]
    return values


def _global(module: str, attr: str, protocol: int) -> str:
    """module.attr as Python's unpickler would import it (protocols 0-2 use Python 2 names)."""
    if not (DOTTED_NAME.fullmatch(module) and DOTTED_NAME.fullmatch(attr)):
        raise _Malformed(f"{module!r} {attr!r} is not an importable name")
    if protocol < 3:
        module, attr = _compat_pickle.NAME_MAPPING.get(
            (module, attr), (_compat_pickle.IMPORT_MAPPING.get(module, module), attr))
    return f"{module}.{attr}"


def _builds_tensors(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if name in TENSOR_PARTS:
        return True
    if module == "torch._utils":
        return attr.startswith("_rebuild_")
    if module == "torch.storage":
        return attr in ("TypedStorage", "UntypedStorage")
    if module == "torch":  # dtypes, quantisation schemes, legacy storage and tensor classes
        value = getattr(torch, attr, None)
        return (isinstance(value, (torch.dtype, torch.qscheme))
                or isinstance(value, type) and attr.endswith(("Storage", "Tensor")))
    return False
