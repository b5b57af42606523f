"""What the model says about how tokens depend on each other: the paper's Figures 9 and 11,
computed by the any-order (target-aware) model on real token grids.

Every number is the entropy (nats, temperature 1, no guidance) of the distribution one slot
predicts, laid out in the slots a schedule would use (models/slots.py) and teacher-forced with
the picture's own tokens (train/teacher_forcing.py):

- prior entropy of cell q: the class slot predicting q (q generated first);
- entropy of q given cell c: the two-step order c, q, with c's true token fed back;
- entropy of a cell under a schedule: its slot when the whole grid is teacher-forced with it.

A released (not target-aware) model's slots do not say which cell they predict, so it answers
only along its own schedule (`schedule_entropy`); the other functions refuse it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from par_demo.models.transformer import Transformer
from par_demo.orders import Schedule, ScheduleSpec, build_schedule
from par_demo.presets import ModelPreset
from par_demo.train.teacher_forcing import layout_bank, teacher_forcing_batch

BATCH_ROWS = 128  # sequences per forward: bounds the [B, S, vocab] logits held at once
# what a parallel ordering's entropy is compared with: its own order one token per step (the
# paper's Figure 11), or raster 1x (the best-trained one-per-step order: one baseline for all)
BASELINES = ("same order", "raster 1x")


class DependencyUnsupported(ValueError):
    """A model that cannot be asked about arbitrary cells."""


def dependency_refusal(preset: ModelPreset) -> str | None:
    """Why `preset` cannot draw dependency maps or compare orderings, or None when it can."""
    if preset.args.target_aware:
        return None
    return (f"{preset.name} cannot be asked about arbitrary cells: its transition tokens do not "
            f"know which cell they predict, so it only answers along the schedule it was "
            f"trained for ({preset.runs.label}). It can show the entropy of each token along "
            f"that schedule for a run it generated.")


def _require_any_order(model: Transformer) -> None:
    if not model.args.target_aware:
        raise DependencyUnsupported(
            "this model is not target-aware: its slots do not say which cell they predict, so "
            "it answers only along its own schedule (use schedule_entropy)")


@dataclass(frozen=True)
class SlotScores:
    """Per slot of each teacher-forced sequence: [B, S] each."""

    target: np.ndarray  # cell the slot predicts
    entropy: np.ndarray  # nats
    nll: np.ndarray  # -log p(true token), nats


@torch.no_grad()
def score_slots(model: Transformer, schedules: list[Schedule], rows_B: np.ndarray,
                grids_BL: np.ndarray, cond_B: np.ndarray, slots: int | None = None) -> SlotScores:
    """Teacher-force example b with schedules[rows_B[b]] (all of one length) on its grid; only
    the first `slots` slots when given (no slot sees a later one, so the rest change nothing)."""
    device = next(model.parameters()).device
    bank = layout_bank(schedules).to(device)
    targets, entropies, nlls = [], [], []
    for i in range(0, len(rows_B), BATCH_ROWS):
        batch = teacher_forcing_batch(
            torch.as_tensor(grids_BL[i:i + BATCH_ROWS], device=device).long(),
            torch.as_tensor(cond_B[i:i + BATCH_ROWS], device=device).long(),
            torch.as_tensor(rows_B[i:i + BATCH_ROWS], device=device).long(), bank)
        if slots is not None:
            batch = batch.first_slots(slots)
        logits_BSV = model(batch.cond, batch.tokens, batch.slots, mask_BSS=batch.mask)
        logp_BSV = torch.log_softmax(logits_BSV.float(), dim=-1)
        entropies.append(torch.special.entr(logp_BSV.exp()).sum(-1).cpu())
        nlls.append(-logp_BSV.gather(-1, batch.targets[..., None])[..., 0].cpu())
        targets.append(batch.slots.target.expand_as(batch.targets).cpu())
    return SlotScores(*(torch.cat(t).numpy() for t in (targets, entropies, nlls)))


def _cond(model: Transformer, class_id: int | None) -> int:
    """The class slot's id: the null class (the model's unconditional mode) for None."""
    n = model.args.num_classes
    if class_id is None:
        return n
    if not 0 <= int(class_id) < n:
        raise ValueError(f"class must be in 0..{n - 1} or None (unconditional), got {class_id}")
    return int(class_id)


def _check_grids(model: Transformer, grids: np.ndarray) -> np.ndarray:
    """Token grids [N, G, G] or [N, G*G] as [N, G*G] int64, checked against the model."""
    a = model.args
    flat = np.asarray(grids).reshape(len(grids), -1)
    if flat.shape[1] != a.grid * a.grid:
        raise ValueError(f"token grids must be {a.grid}x{a.grid}, got {np.asarray(grids).shape}")
    if flat.min() < 0 or flat.max() >= a.vocab_size:
        raise ValueError(f"tokens must be in 0..{a.vocab_size - 1} (a complete grid), got "
                         f"{flat.min()}..{flat.max()}")
    return flat.astype(np.int64)


def two_step_order(spec: ScheduleSpec, first: int, second: int) -> Schedule:
    """The first two steps of a one-token-per-step order that generates `first`, then `second`."""
    return first_steps(spec, [first, second])


def first_steps(spec: ScheduleSpec, cells: list[int]) -> Schedule:
    """A one-token-per-step order that starts with `cells` and then takes the rest in raster
    order. Only its first steps are read; the rest keep every other cell unknown to them (a
    schedule that left cells out would keep them: known from the start, see subset_schedule)."""
    rest = np.setdiff1d(np.arange(spec.grid * spec.grid), cells)
    return Schedule(spec, tuple(np.array([c]) for c in [*cells, *rest]))


@dataclass(frozen=True)
class DependencyMap:
    """Figure 9 for one picture and one clicked cell; maps are [G, G] in nats."""

    cell: tuple[int, int]  # (row, col) of the clicked cell
    class_id: int | None  # None: unconditional (the null class)
    prior_entropy: np.ndarray  # each cell generated first, nothing known
    entropy: np.ndarray  # each cell generated right after the clicked one; 0 at the clicked cell

    @property
    def information(self) -> np.ndarray:
        """How much knowing the clicked cell's token lowers each cell's entropy (nats)."""
        return self.prior_entropy - self.entropy


def prior_entropy(model: Transformer, class_id: int | None) -> np.ndarray:
    """[G, G] entropy of each cell when it is generated first (it depends on no picture)."""
    _require_any_order(model)
    G = model.args.grid
    spec = ScheduleSpec(grid=G, order="random", parallel=1)
    schedules = [first_steps(spec, [q]) for q in range(G * G)]
    grids = np.zeros((G * G, G * G), dtype=np.int64)  # the class slot feeds no token
    scores = score_slots(model, schedules, np.arange(G * G), grids,
                         np.full(G * G, _cond(model, class_id)), slots=1)
    return scores.entropy[:, 0].reshape(G, G)


def dependency_map(model: Transformer, tokens: np.ndarray, cell: tuple[int, int],
                   class_id: int | None) -> DependencyMap:
    """Prior entropy and entropy given the clicked cell's token, for every cell of `tokens`."""
    _require_any_order(model)
    G = model.args.grid
    flat = _check_grids(model, np.asarray(tokens)[None])[0]
    row, col = (int(v) for v in cell)
    if not (0 <= row < G and 0 <= col < G):
        raise ValueError(f"cell must be (row, col) with both in 0..{G - 1}, got {cell}")
    c = row * G + col
    others = np.array([q for q in range(G * G) if q != c])
    spec = ScheduleSpec(grid=G, order="random", parallel=1)
    schedules = [two_step_order(spec, c, int(q)) for q in others]
    scores = score_slots(model, schedules, np.arange(len(others)),
                         np.repeat(flat[None], len(others), 0),
                         np.full(len(others), _cond(model, class_id)), slots=2)
    given = np.zeros(G * G, dtype=np.float32)  # a known token leaves no uncertainty
    given[others] = scores.entropy[:, 1]
    return DependencyMap(cell=(row, col), class_id=class_id,
                         prior_entropy=prior_entropy(model, class_id),
                         entropy=given.reshape(G, G))


def one_token_per_step(schedule: Schedule) -> Schedule:
    """The same cell order, one token per step."""
    spec = replace(schedule.spec, parallel=1, regions=schedule.spec.regions_per_side)
    return Schedule(spec, tuple(schedule.sequence[i:i + 1] for i in range(len(schedule.sequence))))


def _cell_means(model: Transformer, schedule: Schedule, grids_NL: np.ndarray,
                cond_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, G*G] entropy and -log p of each cell's true token, teacher-forced with `schedule`."""
    scores = score_slots(model, [schedule], np.zeros(len(grids_NL), dtype=np.int64), grids_NL,
                         cond_N)
    entropy = np.empty_like(scores.entropy)
    nll = np.empty_like(scores.nll)
    rows = np.arange(len(grids_NL))[:, None]
    entropy[rows, scores.target] = scores.entropy
    nll[rows, scores.target] = scores.nll
    return entropy, nll


@dataclass(frozen=True)
class EntropyIncrease:
    """Figure 11 for one ordering, averaged over a set of real pictures; maps are [G, G] nats."""

    spec: ScheduleSpec  # the parallel ordering
    baseline: str  # one of BASELINES
    pictures: int
    parallel_entropy: np.ndarray  # each cell's entropy when generated by `spec`
    sequential_entropy: np.ndarray  # ... when the baseline runs one token per step
    parallel_loss: float  # teacher-forced loss (mean -log p of the true tokens) under `spec`
    sequential_loss: float  # ... under the baseline

    @property
    def increase(self) -> np.ndarray:
        return self.parallel_entropy - self.sequential_entropy

    @property
    def mean_increase(self) -> float:
        return float(self.increase.mean())


def entropy_increase(model: Transformer, token_grids: np.ndarray, classes: np.ndarray | None,
                     spec: ScheduleSpec, baseline: str = "same order") -> EntropyIncrease:
    """Per cell, entropy under `spec` minus entropy under the baseline (its own order one token
    per step, or raster 1x), teacher-forced on `token_grids` [N, G, G] with their `classes`
    (None: unconditional)."""
    _require_any_order(model)
    G = model.args.grid
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}; got {baseline!r}")
    if spec.grid != G:
        raise ValueError(f"the ordering is for a {spec.grid}x{spec.grid} grid, the model's is "
                         f"{G}x{G}")
    schedule = build_schedule(spec)
    grids = _check_grids(model, token_grids)
    if classes is None:
        cond = np.full(len(grids), _cond(model, None))
    else:
        cond = np.array([_cond(model, int(c)) for c in classes])
        if len(cond) != len(grids):
            raise ValueError(f"classes must give one class per grid: {len(cond)} for "
                             f"{len(grids)} grids")
    par_entropy, par_nll = _cell_means(model, schedule, grids, cond)
    sequential = (one_token_per_step(schedule) if baseline == "same order"
                  else build_schedule(ScheduleSpec(grid=G, order="raster", parallel=1)))
    seq_entropy, seq_nll = _cell_means(model, sequential, grids, cond)
    return EntropyIncrease(
        spec=spec, baseline=baseline, pictures=len(grids),
        parallel_entropy=par_entropy.mean(0).reshape(G, G),
        sequential_entropy=seq_entropy.mean(0).reshape(G, G),
        parallel_loss=float(par_nll.mean()), sequential_loss=float(seq_nll.mean()))


def schedule_entropy(model: Transformer, schedule: Schedule, tokens: np.ndarray,
                     class_id: int | None) -> np.ndarray:
    """[G, G] entropy of each cell along `schedule`, teacher-forced with `tokens`: what any model
    (released ones too, on their own schedule) can say about a run it generated."""
    grids = _check_grids(model, np.asarray(tokens)[None])
    entropy, _ = _cell_means(model, schedule, grids, np.array([_cond(model, class_id)]))
    G = model.args.grid
    return entropy[0].reshape(G, G)


def information_by_distance(maps: list[DependencyMap]) -> dict[int, float]:
    """Mean information at each Chebyshev distance from the clicked cell (distance 0 left out)."""
    sums: dict[int, list[float]] = {}
    for m in maps:
        G = m.entropy.shape[0]
        rows, cols = np.indices((G, G))
        distance = np.maximum(abs(rows - m.cell[0]), abs(cols - m.cell[1]))
        info = m.information
        for d in range(1, int(distance.max()) + 1):
            sums.setdefault(d, []).extend(info[distance == d].tolist())
    return {d: float(np.mean(v)) for d, v in sorted(sums.items())}


def information_rings(cell: tuple[int, int], information_GG: np.ndarray) -> dict[str, float]:
    """Mean information at Chebyshev distance 1, 2, 3 and 4 or more from `cell` (nats): the
    numbers the paper's Figure 9 is read by."""
    G = information_GG.shape[0]
    rows, cols = np.indices((G, G))
    distance = np.maximum(abs(rows - cell[0]), abs(cols - cell[1]))
    rings = {str(d): distance == d for d in (1, 2, 3)} | {"4+": distance >= 4}
    return {name: float(information_GG[ring].mean()) for name, ring in rings.items() if ring.any()}
