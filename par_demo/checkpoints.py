"""Model presets, finding their weight files (assets/ or the Hugging Face cache) and safe loading.

Weights load without executing pickled code: safetensors directly, `.pt` files through torch's
weights-only unpickler. The state dict may sit under `model`, `module` or `state_dict`, or bare,
and must hold exactly the keys and shapes of the architecture.
"""
from __future__ import annotations

import argparse
import os
import pickle
import socket
from urllib.parse import urlparse
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file

from par_demo.classes import ASSETS, ClassNames, class_table
from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.models.vq import VQArgs, VQModel
from par_demo.orders import Schedule, ScheduleError, ScheduleSpec, build_schedule
from par_demo.models.slots import slot_layout
from par_demo.sampler import SamplingConfig

PAR_REPO = "Epiphqny/PAR"
LLAMAGEN_REPO = "FoundationVision/LlamaGen"


class CheckpointError(RuntimeError):
    """A weight file that is missing, unreadable, unsafe or of the wrong architecture."""


class UnsupportedSchedule(ValueError):
    """A schedule the chosen model was not trained to run."""


@dataclass(frozen=True)
class WeightSource:
    filename: str
    repo_id: str | None = None  # None: a file shipped in assets/
    revision: str | None = None

    @property
    def fetch_hint(self) -> str:
        if self.repo_id is None:
            return f"it ships in the repository as assets/{self.filename}"
        return f"fetch it with `hf download {self.repo_id} {self.filename}` on a machine online"


@dataclass(frozen=True)
class TokenizerPreset:
    name: str
    args: VQArgs
    weights: WeightSource


@dataclass(frozen=True)
class ModelPreset:
    name: str
    args: ModelArgs
    weights: WeightSource
    tokenizer: TokenizerPreset
    classes: str  # class-name table: imagenet | emoji | numbered
    runs: ScheduleSpec | None  # the one schedule it was trained for; None: any schedule
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # paper defaults
    description: str = ""
    large: bool = False  # needs a GPU to be usable interactively

    @property
    def image_size(self) -> int:
        return self.args.grid * self.tokenizer.args.downsample

    def class_names(self) -> ClassNames:
        return class_table(self.classes, self.args.num_classes)

    def unsupported_reason(self, spec: ScheduleSpec) -> str | None:
        """Why this model cannot run `spec`, or None when it can."""
        if spec.grid != self.args.grid:
            return f"{self.name} generates a {self.args.grid}x{self.args.grid} grid, not {spec.grid}x{spec.grid}"
        try:
            schedule = build_schedule(spec)
            fillers = slot_layout(schedule).num_fillers
        except ScheduleError as err:
            return str(err)
        if self.runs is not None:
            if schedule != build_schedule(self.runs):
                return (f"{self.name} was trained for {self.runs.label} only; "
                        f"{spec.label} would give garbage")
            return None
        if fillers > self.args.num_fillers:
            return (f"{spec.label} needs {fillers} learnable transition tokens; "
                    f"{self.name} has {self.args.num_fillers}")
        return None

    def check(self, spec: ScheduleSpec) -> Schedule:
        reason = self.unsupported_reason(spec)
        if reason:
            raise UnsupportedSchedule(reason)
        return build_schedule(spec)


VQ16 = TokenizerPreset("VQ-16", VQArgs(with_encoder=False),
                       WeightSource("vq_ds16_c2i.pt", LLAMAGEN_REPO))

XL = dict(dim=1280, n_layer=36, n_head=20)
XXL = dict(dim=1536, n_layer=48, n_head=24)
B3 = dict(dim=3200, n_layer=24, n_head=32)


def _released(name, size, parallel, cfg, filename, repo, description) -> ModelPreset:
    runs = ScheduleSpec(grid=24, order="distant" if parallel > 1 else "raster", parallel=parallel)
    return ModelPreset(
        name=name, args=ModelArgs(**size, num_fillers=parallel - 1),
        weights=WeightSource(filename, repo), tokenizer=VQ16, classes="imagenet", runs=runs,
        sampling=SamplingConfig(cfg_scale=cfg), description=description, large=True,
    )


EMOJI_TOKENIZER = TokenizerPreset(
    "emoji-VQ",
    # the smallest VQ-16 layout for 64 px -> 16 x 16: 32 channels (GroupNorm's 32 groups) at
    # every level, one res block per decoder level; ~6-8 ms per 64 px decode on 2 CPU cores
    VQArgs(codebook_size=512, codebook_embed_dim=8, z_channels=32, ch=32,
           encoder_ch_mult=(1, 1, 1), decoder_ch_mult=(1, 1, 1), num_res_blocks=0,
           with_encoder=False),
    WeightSource("emoji_tokenizer.safetensors"),
)

EMBEDDED = ModelPreset(
    name="PAR-emoji (embedded)",
    # 3 layers at width 256: 4.3-5 ms per guided step on 2 CPU cores (4: 5-6.5, 8: ~10), so a
    # 4x-distant image with a preview per step stays under a second
    args=ModelArgs(dim=256, n_layer=3, n_head=8, multiple_of=64, vocab_size=512, grid=16,
                   num_classes=32, num_fillers=15, target_aware=True),
    weights=WeightSource("emoji_generator.safetensors"),
    tokenizer=EMOJI_TOKENIZER, classes="emoji", runs=None,
    sampling=SamplingConfig(cfg_scale=2.0),
    description="Our any-order model on 64 px emoji: one set of weights runs every ordering.",
)

PRESETS: dict[str, ModelPreset] = {p.name: p for p in [
    EMBEDDED,
    _released("PAR-XL-4x", XL, 4, 1.5, "PAR-XL-4x.pt", PAR_REPO, "PAR, 775M, 4 tokens per step"),
    _released("PAR-XXL-4x", XXL, 4, 1.435, "PAR-XXL-4x.pt", PAR_REPO, "PAR, 1.4B, 4 tokens per step"),
    _released("PAR-3B-4x", B3, 4, 1.345, "PAR-3B-4x.pt", PAR_REPO, "PAR, 3.1B, 4 tokens per step"),
    _released("PAR-3B-16x", B3, 16, 1.5, "PAR-3B-16x.pt", PAR_REPO, "PAR, 3.1B, 16 tokens per step"),
    _released("LlamaGen-XL", XL, 1, 1.75, "c2i_XL_384.pt", LLAMAGEN_REPO,
              "LlamaGen baseline, 775M, one token per step"),
]}
DEFAULT_MODEL = EMBEDDED.name


def get_preset(name: str) -> ModelPreset:
    if name in PRESETS:
        return PRESETS[name]
    folded = {k.lower(): k for k in PRESETS}
    if name.lower() in folded:
        return PRESETS[folded[name.lower()]]
    raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(PRESETS)}")


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


def _torch_load(path: Path):
    try:  # memory-mapped, so a 3B checkpoint is not read into RAM twice
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint without running pickled code."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path.name} is not a readable safetensors file: {err}") from err
    try:
        # argparse.Namespace is how the official training scripts store their arguments
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = _torch_load(path)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing {path.name}: loading it would execute pickled code ({err}). "
            "Only plain tensor checkpoints are loaded.") from err
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path.name} is corrupt or truncated: {err}") from err
    for key in STATE_DICT_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} holds no state dict (looked under "
                              f"{', '.join(STATE_DICT_KEYS)} and at the top level)")
    return obj


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
    module.load_state_dict(state, assign=True)
    return module.to(device=device, dtype=dtype).eval()


def load_transformer(preset: ModelPreset, path: Path, device="cpu", dtype=torch.float32):
    with torch.device("meta"):
        model = Transformer(preset.args)
    return _materialise(model, read_state_dict(path), path.name, device, dtype)


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
    random_weights: bool  # an untrained stand-in: its images are noise

    @property
    def title(self) -> str:
        suffix = " [random weights: untrained stand-in]" if self.random_weights else ""
        return self.preset.name + suffix

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device


def random_model(preset: ModelPreset, device="cpu", seed: int = 0) -> LoadedModel:
    """The preset's architecture with seeded random weights (for tests and the stand-in)."""
    generator = torch.Generator().manual_seed(seed)
    transformer = Transformer(preset.args).init_weights(generator)
    # random init would leave logits at exactly zero: give the head some signal
    torch.nn.init.normal_(transformer.output.weight, std=0.02, generator=generator)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        tokenizer = VQModel(preset.tokenizer.args)
    return LoadedModel(preset, transformer.to(device).eval(), tokenizer.to(device).eval(), True)


def load_model(preset: ModelPreset | str, device="cpu", dtype=torch.float32,
               cache_dir: str | Path | None = None, download: bool = True) -> LoadedModel:
    """Load a preset's generator and tokenizer. The embedded model falls back to random weights
    while its trained files are absent; any other missing file raises CheckpointError."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if preset.weights.repo_id is None and local_weight_file(preset.weights) is None:
        return random_model(preset, device)
    gen_path = weight_file(preset.weights, cache_dir, download)
    tok_path = weight_file(preset.tokenizer.weights, cache_dir, download)
    transformer = load_transformer(preset, gen_path, device, dtype)
    tokenizer = load_tokenizer(preset.tokenizer, tok_path, device)
    return LoadedModel(preset, transformer, tokenizer, False)
