"""Training configs of every stage, and the profiles that bundle them.

toy: tiny architectures and a handful of steps, for the test suite.
cpu: the first generation (assets/gen1/) as trained on 2 CPU cores, and the evaluation's judge.
gpu: the first generation's architectures, sized so that each stage trains in under 20 minutes on
     one H100 (see docs/training.md for the arithmetic).
cpu-gen2, cpu-gen2-decoder: the shipped second generation, trained on 2 CPU cores.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import get_args, get_origin, get_type_hints

from par_demo.presets import EMBEDDED, EMBEDDED_GEN1, EMBEDDED_GEN2, EMOJI_TOKENIZER_GEN1, EMOJI_TOKENIZER_GEN2
from par_demo.models.transformer import ModelArgs
from par_demo.models.vq import VQArgs
from par_demo.orders import ScheduleSpec
from par_demo.train.runtime import OptimConfig

GRID = 16  # tokens per side of a 64 px image
GEN3_CLASSES = 1714  # training emoji of data/emoji64_extra.npz; the generator checks the data


@dataclass(frozen=True)
class TokenizerTraining:
    vq: VQArgs = replace(EMOJI_TOKENIZER_GEN1.args, with_encoder=True)
    steps: int = 20_000
    batch_size: int = 128
    optim: OptimConfig = OptimConfig(lr=4e-4, weight_decay=0.0, warmup_steps=500)
    mse_weight: float = 1.0
    l1_weight: float = 1.0  # L1 keeps flat emoji colours and edges crisper than MSE alone
    restart_every: int = 200  # re-seed codes unused for this many steps from encoder outputs
    # train the decoder alone: the codes, and any generator trained on them, stay valid
    decoder_only: bool = False
    flip_p: float = 0.5  # horizontal flips
    log_every: int = 100
    eval_every: int = 2000
    save_every: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class ScheduleMixture:
    """The schedules the generator trains on, drawn uniformly per example."""

    specs: tuple[ScheduleSpec, ...] = tuple(
        ScheduleSpec(grid=GRID, order=order, parallel=n, init_tokens=init)
        for order in ("raster", "distant") for n in (1, 4, 16)
        for init in ((True,) if n == 1 else (True, False)))
    random_share: float = 0.1  # examples on a random order instead (any-order robustness)
    random_pool: int = 64  # distinct random orders, built once


@dataclass(frozen=True)
class GeneratorTraining:
    model: ModelArgs = EMBEDDED_GEN1.args
    mixture: ScheduleMixture = ScheduleMixture()
    steps: int = 12_000
    batch_size: int = 256
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=0.05, warmup_steps=500)
    class_dropout_p: float = 0.1  # the null class, for classifier-free guidance
    # the token, residual and feed-forward dropout of training (None: the model's own); a model
    # that must memorise a few drawings per class underfits with it
    dropout: float | None = None
    # bf16 autocast on the CPU: 1.45x faster a step on an AVX512-bf16 CPU, slower without one
    cpu_bf16: bool = False
    flip_p: float = 0.5  # train on the token grid of the mirrored image half the time
    # groups whose mirror image is wrong
    unflipped_classes: tuple[str, ...] = ("country flag", "letter and keycap")
    log_every: int = 100
    save_every: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class ClassifierTraining:
    width: int = 32  # channels of the first stage; doubled per stage
    feature_dim: int = 128  # the features the Frechet distance compares
    steps: int = 3000
    batch_size: int = 128
    optim: OptimConfig = OptimConfig(lr=2e-3, weight_decay=0.05, warmup_steps=100)
    label_smoothing: float = 0.1
    zoom: float = 0.15  # random scale augmentation, +-15 %
    log_every: int = 100
    save_every: int = 1000
    seed: int = 0


EVAL_SCHEDULES = (
    ScheduleSpec(grid=GRID, order="raster", parallel=1),
    ScheduleSpec(grid=GRID, order="distant", parallel=1),
    ScheduleSpec(grid=GRID, order="raster", parallel=4, init_tokens=True),
    ScheduleSpec(grid=GRID, order="distant", parallel=4, init_tokens=True),
    ScheduleSpec(grid=GRID, order="distant", parallel=4, init_tokens=False),
    ScheduleSpec(grid=GRID, order="distant", parallel=16, init_tokens=True),
    ScheduleSpec(grid=GRID, order="distant", parallel=16, init_tokens=False),
)


# The paper's Table 3 extended with PAR's rivals at step budgets near distant 4x's 67 and
# distant 16x's 31 (ZipAR cannot go below 3G - 2 = 46 steps at 16 x 16)
RIVAL_SCHEDULES = (
    ScheduleSpec(grid=GRID, order="zipar", parallel=1, window=1),  # 46 steps
    ScheduleSpec(grid=GRID, order="zipar", parallel=1, window=2),  # 60
    ScheduleSpec(grid=GRID, order="zipar", parallel=1, window=3),  # 74
    ScheduleSpec(grid=GRID, order="diagonal", parallel=1),  # 31
    ScheduleSpec(grid=GRID, order="random-cosine", parallel=1, steps=31),
    ScheduleSpec(grid=GRID, order="random-cosine", parallel=1, steps=46),
    ScheduleSpec(grid=GRID, order="random-cosine", parallel=1, steps=67),
)


@dataclass(frozen=True)
class EvalConfig:
    schedules: tuple[ScheduleSpec, ...] = EVAL_SCHEDULES
    images_per_class: int = 12  # generated per class and ordering
    batch_size: int = 128
    cfg_scale: float = EMBEDDED.sampling.cfg_scale
    temperature: float = EMBEDDED.sampling.temperature
    top_k: int = 0
    timing_images: int = 3  # single-image CPU generations timed per ordering
    cpu_threads: int = 2  # the demo's target machine
    grid_side: int = 2  # sample grid: a side x side block of samples per class
    grid_classes_per_row: int = 8
    seed: int = 0


@dataclass(frozen=True)
class Profile:
    tokenizer: TokenizerTraining = TokenizerTraining()
    generator: GeneratorTraining = GeneratorTraining()
    classifier: ClassifierTraining = ClassifierTraining()
    evaluation: EvalConfig = EvalConfig()


TOKENIZER_GEN2 = replace(EMOJI_TOKENIZER_GEN2.args, with_encoder=True)

_TOY_MODEL = replace(EMBEDDED_GEN1.args, dim=64, n_layer=2, n_head=4)

# continues the pilot's export (--init-from; pilot: 400 steps at one rate from the widened gen2
# file, then 500 with the class embedding at 10x the rate, since each of its rows is drawn once in
# about 50 steps); 3000 steps at about 2 s each in bf16 fit one session, with the held-out losses
# (2.5 minutes at one thread) every 500 steps, not every 100
_CPU_GEN3 = GeneratorTraining(model=replace(EMBEDDED_GEN2.args, num_classes=GEN3_CLASSES),
                              steps=3000, batch_size=32, log_every=50, save_every=500,
                              cpu_bf16=True,
                              optim=OptimConfig(lr=6e-4, warmup_steps=30,
                                                lr_scales=(("cls_embedding", 10.0),)))

PROFILES: dict[str, Profile] = {
    "toy": Profile(
        tokenizer=TokenizerTraining(steps=4, batch_size=4, restart_every=2, log_every=1,
                                    eval_every=4, save_every=2,
                                    optim=OptimConfig(lr=1e-3, warmup_steps=1)),
        generator=GeneratorTraining(model=_TOY_MODEL, steps=4, batch_size=4, log_every=1,
                                    save_every=2, mixture=ScheduleMixture(random_pool=2),
                                    optim=OptimConfig(lr=1e-3, warmup_steps=1)),
        classifier=ClassifierTraining(width=32, feature_dim=16, steps=4, batch_size=8,
                                      log_every=1, save_every=2,
                                      optim=OptimConfig(lr=1e-3, warmup_steps=1)),
        evaluation=EvalConfig(images_per_class=1, batch_size=32, timing_images=1),
    ),
    "cpu": Profile(
        tokenizer=TokenizerTraining(steps=400, batch_size=32, restart_every=100, log_every=20,
                                    eval_every=200, save_every=100,
                                    optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=50)),
        # 4000 steps at about 2 s each (batch 32, 2 cores): the held-out losses were still
        # falling at 1661; held-out losses every 500 steps cost about 80 s each.
        generator=GeneratorTraining(steps=4000, batch_size=32, log_every=50, save_every=500,
                                    optim=OptimConfig(lr=1e-3, warmup_steps=30)),
        # width 16, 4000 steps: 70.1 % held-out in 0.35 s per step; width 32 reached 68.5 % at
        # 3000 steps in 1.1 s per step (one thread)
        classifier=ClassifierTraining(width=16, steps=4000, batch_size=64, log_every=100,
                                      save_every=500),
        evaluation=EvalConfig(images_per_class=12, batch_size=128, timing_images=3),
    ),
    "gpu": Profile(),
    # the second-generation tokenizer (issue 19), trained on 2 cores at one thread
    "cpu-gen2": Profile(
        tokenizer=TokenizerTraining(vq=TOKENIZER_GEN2, steps=4000, batch_size=32,
                                    restart_every=100, log_every=50, eval_every=500,
                                    save_every=100,
                                    optim=OptimConfig(lr=1e-3, weight_decay=0.0, warmup_steps=50)),
        # the codes of data/emoji64_extra.npz (Fluent Emoji Flat added to training); a schedule
        # ended at 4800, then continued from that file to 9000 (docs/training.md)
        generator=GeneratorTraining(model=EMBEDDED_GEN2.args, steps=9000, batch_size=32,
                                    log_every=50, save_every=500,
                                    optim=OptimConfig(lr=1e-3, warmup_steps=30)),
    ),
    # the third generation (issue 32): the gen2 architecture with one class per training emoji
    # (assets/emoji_classes_gen3.json), warm-started from the shipped gen2 file widened by
    # par_demo.train.per_emoji; its codes are data/emoji64_extra_codes_gen3.npz
    "cpu-gen3": Profile(generator=_CPU_GEN3),
    # a new phase of the per-emoji model (--start-from the shipped file): with dropout and flips
    # the 3000 steps of cpu-gen3 barely fit the drawings (training loss 2.46-2.51 against 2.47
    # held-out unconditional), and a mirror image is another picture to learn
    "cpu-gen3-fit": Profile(
        generator=replace(_CPU_GEN3, steps=4000, dropout=0.0, flip_p=0.0),
    ),
    # the same with a fourth block on top (par_demo.train.grow): a guided step costs about 1.3x
    "cpu-gen3-deep": Profile(
        generator=replace(_CPU_GEN3, model=replace(_CPU_GEN3.model, n_layer=4), steps=4000,
                          dropout=0.0, flip_p=0.0),
    ),
    # a decoder-only phase of the gen2 tokenizer (--start-from its exported file): sharper
    # pictures from the same codes, so the gen2 generator's training stays valid
    "cpu-gen2-decoder": Profile(
        tokenizer=TokenizerTraining(vq=TOKENIZER_GEN2, decoder_only=True, restart_every=0,
                                    steps=3000, batch_size=32, log_every=50, eval_every=500,
                                    save_every=100,
                                    optim=OptimConfig(lr=3e-4, weight_decay=0.0, warmup_steps=50)),
    ),
}


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def from_dict(cls: type, d: dict):
    """Rebuild a (nested) config dataclass from its asdict / JSON form."""
    hints = get_type_hints(cls)
    return cls(**{f.name: _convert(hints[f.name], d[f.name]) for f in fields(cls) if f.name in d})


def _convert(tp, value):
    if is_dataclass(tp):
        return from_dict(tp, value)
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value))
    return value
