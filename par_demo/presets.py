"""Model presets: architecture, weight files, class names, the schedule each runs and its sampling
defaults. Plain descriptions: nothing here loads weights or samples (see checkpoints.py and
sampler.py, which build on this).
"""
from __future__ import annotations

from dataclasses import dataclass, replace, field

from par_demo.classes import ClassNames, class_table
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import ModelArgs
from par_demo.models.vq import VQArgs
from par_demo.orders import Schedule, ScheduleError, ScheduleSpec, build_schedule
from par_demo.sampling import SamplingConfig

PAR_REPO = "Epiphqny/PAR"
LLAMAGEN_REPO = "FoundationVision/LlamaGen"


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
    training_free: tuple[str, ...] = ()  # orders it also runs untrained (a raster model: zipar)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # paper defaults
    description: str = ""
    large: bool = False  # a released model: a GPU when there is one, else the CPU, slowly

    @property
    def image_size(self) -> int:
        return self.args.grid * self.tokenizer.args.downsample

    def class_names(self) -> ClassNames:
        return class_table(self.classes, self.args.num_classes)

    def check(self, spec: ScheduleSpec) -> Schedule:
        """The schedule `spec` on this model: the one answer to "can this model run it?".
        UnsupportedSchedule says why not."""
        if spec.grid != self.args.grid:
            raise UnsupportedSchedule(f"{self.name} generates a {self.args.grid}x{self.args.grid} "
                                      f"grid, not {spec.grid}x{spec.grid}")
        try:
            schedule = build_schedule(spec)
            fillers = slot_layout(schedule).num_fillers
        except ScheduleError as err:
            raise UnsupportedSchedule(str(err)) from None
        if (self.runs is not None and schedule != build_schedule(self.runs)
                and spec.order not in self.training_free):
            also = (f" (and runs {', '.join(self.training_free)} training-free)"
                    if self.training_free else "")
            raise UnsupportedSchedule(f"{self.name} was trained for {self.runs.label} only{also}; "
                                      f"{spec.label} would give garbage")
        if self.runs is None and fillers > self.args.num_fillers:
            raise UnsupportedSchedule(f"{spec.label} needs {fillers} learnable transition "
                                      f"tokens; {self.name} has {self.args.num_fillers}")
        return schedule

    def unsupported_reason(self, spec: ScheduleSpec) -> str | None:
        """Why this model cannot run `spec`, or None when it can."""
        try:
            self.check(spec)
        except UnsupportedSchedule as err:
            return str(err)
        return None


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
        # ZipAR needs a model that predicts the next raster cell (models/raster_slots.py)
        training_free=("zipar",) if parallel == 1 else (),
        sampling=SamplingConfig(cfg_scale=cfg), description=description, large=True,
    )


EMOJI_TOKENIZER_GEN1 = TokenizerPreset(
    "emoji-VQ",
    # the smallest VQ-16 layout for 64 px -> 16 x 16: 32 channels (GroupNorm's 32 groups) at
    # every level, one res block per decoder level; ~6-8 ms per 64 px decode on 2 CPU cores
    VQArgs(codebook_size=512, codebook_embed_dim=8, z_channels=32, ch=32,
           encoder_ch_mult=(1, 1, 1), decoder_ch_mult=(1, 1, 1), num_res_blocks=0,
           with_encoder=False),
    WeightSource("gen1/emoji_tokenizer.safetensors"),
)

# The second generation (issue 19): twice the codes and one more residual block per level (two
# in the decoder), 1.5x the decode time of the first on one thread, 26.3 dB held-out against 23.5
EMOJI_TOKENIZER_GEN2 = TokenizerPreset(
    "emoji-VQ-gen2",
    replace(EMOJI_TOKENIZER_GEN1.args, codebook_size=1024, num_res_blocks=1),
    WeightSource("emoji_tokenizer.safetensors"),
)
TOKENIZERS = {t.name: t for t in (EMOJI_TOKENIZER_GEN1, EMOJI_TOKENIZER_GEN2)}

EMBEDDED_GEN1 = ModelPreset(
    name="PAR-emoji gen1",
    # 3 layers at width 256: 4.3-5 ms per guided step on 2 CPU cores (4: 5-6.5, 8: ~10), so a
    # 4x-distant image with a preview per step stays under a second
    args=ModelArgs(dim=256, n_layer=3, n_head=8, multiple_of=64, vocab_size=512, grid=16,
                   num_classes=32, num_fillers=15, target_aware=True),
    weights=WeightSource("gen1/emoji_generator.safetensors"),
    tokenizer=EMOJI_TOKENIZER_GEN1, classes="emoji", runs=None,
    # guidance 3 (step 8500, temperature 0.9): class accuracy of distant 4x rose 36 -> 38 -> 42 %
    # from 1.5 to 3 at a flat Frechet distance, and 1536-sample runs at 3, 4 and 5 are equal
    # (44-45 %). Temperature 0.9 cut the distance of every multi-token ordering by 1.2-3.1
    # units at equal or better accuracy (assets/MODEL_CARD.md)
    sampling=SamplingConfig(cfg_scale=3.0, temperature=0.9),
    description="Our any-order model on 64 px emoji: one set of weights runs every ordering.",
)

# The second generation (issue 19), the one the app runs: width 288 for the 1024 codes of the
# gen2 tokenizer, trained on the data with Fluent Emoji Flat added. A guided step is bound by
# reading the weights, so it costs about their ratio: 1.3-1.4x gen1's at 2 threads (width 320
# cost 1.7x, over issue 19's 1.5x; benchmarks/generator_sizes.py).
EMBEDDED_GEN2 = replace(
    EMBEDDED_GEN1, name="PAR-emoji gen2 (32 groups)",
    args=replace(EMBEDDED_GEN1.args, dim=288, vocab_size=EMOJI_TOKENIZER_GEN2.args.codebook_size),
    weights=WeightSource("gen2/emoji_generator.safetensors"),
    tokenizer=EMOJI_TOKENIZER_GEN2,
    # guidance 4 (temperature 0.9, 1536 distant-4x samples): at step 4800 class accuracy 44.9 %
    # at 3, 48.6 % at 4, 50.1 % at 5 with Frechet distances 8.71, 8.78, 9.03; at step 9000 (the
    # shipped file, another judge) 51.1 % and 8.90 at 4, 47.7 % and 9.72 at 5 (MODEL_CARD.md)
    sampling=SamplingConfig(cfg_scale=4.0, temperature=0.9))
# The third generation (issue 32): the gen2 architecture with one class per training emoji
# (assets/emoji_classes_gen3.json), warm-started from gen2 with each emoji's embedding at its group's
EMBEDDED_GEN3 = replace(
    EMBEDDED_GEN2, name="PAR-emoji (embedded)",
    args=replace(EMBEDDED_GEN2.args, num_classes=1714),
    weights=WeightSource("emoji_generator.safetensors"), classes="emoji-per-emoji",
    # guidance 2: a model that has learnt its drawings overshoots into speckled colour at 4 (a
    # 64-emoji probe: 84 % against 45 % recognisable by pixels); the third session's file at 2
    # against 4 (512 distant-4x samples): 12.7 % against 9.4 %, Frechet distance 3.64 against 6.46
    sampling=SamplingConfig(cfg_scale=2.0, temperature=0.9),
    description="Our any-order model on 64 px emoji, one class per emoji: one set of weights "
                "runs every ordering.")
# what the app runs; gen2 (the 32-group baseline of every earlier figure) stays selectable, gen1
# stays for training and comparisons
EMBEDDED = EMBEDDED_GEN3
EMBEDDED_GENERATIONS = (EMBEDDED_GEN1, EMBEDDED_GEN2, EMBEDDED_GEN3)


def embedded_generation(args: ModelArgs) -> ModelPreset:
    """The embedded generation with this architecture (exported files name their architecture in
    their training config; preset names changed when gen2 became the embedded model)."""
    for preset in EMBEDDED_GENERATIONS:
        if preset.args == args:
            return preset
    raise ValueError(f"the generator {args} is none of the embedded generations "
                     f"{', '.join(p.name for p in EMBEDDED_GENERATIONS)}")


PRESETS: dict[str, ModelPreset] = {p.name: p for p in [
    EMBEDDED,
    EMBEDDED_GEN2,
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
