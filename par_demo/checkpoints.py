"""Finding a preset's weight files (assets/ or the Hugging Face cache) and loading them safely.

Weights load without executing pickled code: safetensors directly, `.pt` files through torch's
weights-only unpickler. The state dict may sit under `model`, `module` or `state_dict`, or bare,
and must hold exactly the keys and shapes of the architecture.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError, safe_open

from par_demo.classes import ASSETS
from par_demo.models.fast import pack_feed_forward
from par_demo.models.packed import pack_linears
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.pickle_scan import ZIP_MAGIC, code_globals, scan_checkpoint
from par_demo.presets import ModelPreset, TokenizerPreset, WeightSource, get_preset


class CheckpointError(RuntimeError):
    """A weight file that is missing, unreadable, unsafe or of the wrong architecture."""


def local_weight_file(source: WeightSource, cache_dir: str | Path | None = None) -> Path | None:
    """The file if it is already on this machine; never touches the network."""
    if source.repo_id is None:
        path = ASSETS / source.filename
        return path if path.is_file() else None
    try:
        return Path(hf_hub_download(source.repo_id, source.filename, revision=source.revision,
                                    cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint; the hub client itself retries for half a minute."""
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def weight_file(source: WeightSource, cache_dir: str | Path | None = None,
                download: bool = True) -> Path:
    """The file, from assets/, the local Hugging Face cache, or downloaded from the hub."""
    path = local_weight_file(source, cache_dir)
    if path is not None:
        return path
    where = "assets/" if source.repo_id is None else f"{source.repo_id} (not in the local cache)"
    if source.repo_id is None or not download or os.environ.get("HF_HUB_OFFLINE"):
        raise CheckpointError(f"{source.filename} is missing from {where}; {source.fetch_hint}")
    if not hub_reachable():
        raise CheckpointError(f"{source.filename} is not in the local cache and the hub "
                              f"({constants.ENDPOINT}) cannot be reached; {source.fetch_hint}")
    try:
        return Path(hf_hub_download(source.repo_id, source.filename, revision=source.revision,
                                    cache_dir=cache_dir))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise CheckpointError(
            f"could not download {source.filename} from {source.repo_id} ({type(err).__name__}); "
            f"{source.fetch_hint}") from err


STATE_DICT_KEYS = ("model", "module", "state_dict")
PICKLE_MAGIC = b"\x80"  # the legacy format opens with a pickle protocol marker
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # torch colours some hints for terminals


def _torch_load(path: Path):
    try:  # memory-mapped, so a 3B checkpoint is not read into RAM twice
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def _first_line(err: BaseException) -> str:
    text = _ANSI.sub("", str(err)).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _not_a_file(path: Path) -> str | None:
    """What is wrong with `path` before its contents are read, or None."""
    if not path.exists():
        return f"{path} does not exist"
    if path.is_dir():
        return f"{path} is a directory, not a weight file"
    if path.stat().st_size == 0:
        return f"{path.name} is empty (0 bytes)"
    return None


def _runs_code(path: Path, code: tuple[str, ...]) -> str:
    return (f"refusing {path.name}: loading it would execute pickled code (it calls "
            f"{', '.join(code[:3])}). Only plain tensor checkpoints are loaded.")


def _refusal(path: Path, err: BaseException) -> str:
    """Why torch.load refused a file, from what its pickles would import, not from torch's text."""
    scan = scan_checkpoint(path)
    code = code_globals(scan)
    if code:
        return _runs_code(path, code)
    if scan.problem:
        return f"{path.name} is malformed: {scan.problem}"
    if isinstance(err, pickle.UnpicklingError):
        return f"{path.name} is not a readable checkpoint: its pickle data is malformed"
    return f"{path.name} is corrupt or truncated: {_first_line(err)}"


def _read_safetensors(path: Path, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: _in_format(f.get_tensor(k), dtype) for k in f.keys()}


def _in_format(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A floating tensor in `dtype` (None: as stored); integer buffers stay as they are."""
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def read_state_dict(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint without running pickled code. With `dtype`, floating tensors are
    converted one at a time as they are read, so the whole state is never held twice (a `.pt`
    is memory-mapped: its stored copy stays in the page cache, not in the process's memory)."""
    path = Path(path)
    problem = _not_a_file(path)
    if problem:
        raise CheckpointError(problem)
    if path.suffix == ".safetensors":
        try:
            return _read_safetensors(path, dtype)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path.name} is not a readable safetensors file: "
                                  f"{_first_line(err)}") from None
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if not head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        code = code_globals(scan_checkpoint(path))  # a protocol 0 pickle has no magic byte
        if code:
            raise CheckpointError(_runs_code(path, code))
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint: it is neither a zip "
                              "archive nor a pickle (another format, or random bytes)")
    try:
        # argparse.Namespace is how the official training scripts store their arguments
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = _torch_load(path)
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError) as err:
        raise CheckpointError(_refusal(path, err)) from None
    for key in STATE_DICT_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} holds no state dict (looked under "
                              f"{', '.join(STATE_DICT_KEYS)} and at the top level)")
    return {k: _in_format(v, dtype) for k, v in obj.items()}


def check_finite(name: str, state: dict[str, torch.Tensor]) -> None:
    """Weights holding NaN or infinity would make every image noise: refuse them."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{name} holds non-finite weights (NaN or infinity) in "
                              f"{len(bad)} tensor{'s' if len(bad) > 1 else ''} "
                              f"(e.g. {', '.join(bad[:3])})")


def check_keys(name: str, state: dict[str, torch.Tensor], expected: dict[str, torch.Size]) -> None:
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if extra:
        problems.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)} "
                        f"instead of {tuple(expected[k])})")
    if problems:
        raise CheckpointError(f"{name} does not match the architecture: " + "; ".join(problems))


def _materialise(module: torch.nn.Module, state: dict, name: str, device, dtype) -> torch.nn.Module:
    expected = {k: v.shape for k, v in module.state_dict().items()}
    check_keys(name, state, expected)
    check_finite(name, state)
    module.load_state_dict(state, assign=True)
    return module.to(device=device, dtype=dtype).eval()


def load_transformer(preset: ModelPreset, path: Path, device="cpu", dtype=torch.float32):
    """The generator in `dtype`, converted tensor by tensor while reading (no second copy), with
    each feed-forward's w1 and w3 packed for the fast step (models/fast.py)."""
    with torch.device("meta"):
        model = Transformer(preset.args)
    state = read_state_dict(path, dtype if torch.device(device).type == "cpu" else None)
    return pack_feed_forward(_materialise(model, state, path.name, device, dtype))


def load_tokenizer(preset: TokenizerPreset, path: Path, device="cpu"):
    state = read_state_dict(path)
    if not preset.args.with_encoder:
        state = {k: v for k, v in state.items() if not k.startswith(("encoder.", "quant_conv."))}
    with torch.device("meta"):
        model = VQModel(preset.args)
    return _materialise(model, state, path.name, device, torch.float32)


@dataclass
class LoadedModel:
    preset: ModelPreset
    transformer: Transformer
    tokenizer: VQModel


def load_model(preset: ModelPreset | str, device="cpu", dtype=torch.float32,
               cache_dir: str | Path | None = None, download: bool = True,
               packed: bool = False) -> LoadedModel:
    """Load a preset's generator and tokenizer; a missing or bad file raises CheckpointError.
    `packed`: the generator's bf16 matrices in oneDNN's layout for CPU steps (models/packed.py)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    gen_path = weight_file(preset.weights, cache_dir, download)
    tok_path = weight_file(preset.tokenizer.weights, cache_dir, download)
    transformer = load_transformer(preset, gen_path, device, dtype)
    if packed:
        pack_linears(transformer)
    tokenizer = load_tokenizer(preset.tokenizer, tok_path, device)
    return LoadedModel(preset, transformer, tokenizer)
