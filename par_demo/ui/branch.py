"""Branching the Generate tab's run (on the Edit tab): from the step its replay slider stands on,
4 new seeds continue the run side by side on one step clock. Like Generate, the button says
beforehand when there is nothing to branch, a seed typed in is used, and a refusal is a status
line. The engine is editing.plan_branch; the stream is runs.branch_stream."""
from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np

from par_demo.editing import plan_branch
from par_demo.ui import api_docs, widgets as w
from par_demo.ui.errors import fail, friendly
from par_demo.ui.inputs import SEED_RANGE, boolean, number, usable_preset
from par_demo.ui.runs import EditRunPlan, RunRecord, branch_stream, replay_compare
from par_demo.ui.session import stoppable

BRANCHES = 4  # new seeds a branch continues with
PAPER_POINT = (
    "**The paper's point (Figure 5):** the sequential initial tokens fix the global layout. "
    "Branches taken *after* the initial tokens share the layout and differ only in details; "
    "branches taken at step 0 share nothing and come out as different pictures.")
NO_RUN = ("finish a run on the Generate tab first; a branch continues it from the step its "
          "replay slider stands on")


# ---------------------------------------------------------------- a branch

def plan_branch_request(record, step, seed) -> EditRunPlan:
    if not isinstance(record, RunRecord) or not record.complete:
        fail(NO_RUN, title="No finished run")
    preset = usable_preset(record.model)
    steps_done = number(step, "step", 0, record.num_steps - 1, integer=True)
    seed = number(seed, "seed", *SEED_RANGE, integer=True)
    tokens = record.tokens[max(steps_done - 1, 0)].astype(np.int64)
    edit_plan = plan_branch(preset, record.schedule, tokens, steps_done)
    seeds = [(seed + i) % (SEED_RANGE[1] + 1) for i in range(BRANCHES)]
    return EditRunPlan(preset.name, record.class_id, record.class_label, (edit_plan,) * BRANCHES,
                       tuple(replace(record.config, seed=s) for s in seeds),
                       tuple(f"seed {s}" for s in seeds),
                       tuple(record.tokens[:steps_done]))


@dataclass
class BranchOut:
    branch_frame: Any = w.skip()
    branch_status: Any = w.skip()
    branches: Any = None


@friendly
def branch(record, step, seed, request: gr.Request = None):
    """Continue the Generate tab's run from `step` (steps done; 0 = before any token) with 4
    new seeds side by side, on one step clock."""
    plan = plan_branch_request(record, step, seed)
    done = plan.edits[0].prefix.steps_done
    init = record.schedule.num_init_steps
    where = ("at step 0: nothing is shared" if done == 0 else
             f"after {done} of {record.num_steps} steps"
             + (" (inside the initial tokens)" if done < init else
                (" (after the initial tokens: the layout is shared)" if init else "")))
    yield BranchOut(branch_status=f"Branching {BRANCHES} seeds {where} …")
    with closing(stoppable(branch_stream(plan), w.session_of(request))) as frames:
        for (records, frame), stopped in frames:
            finished = all(r.complete for r in records)
            state = ("■ Stopped · " if stopped else "✓ **Done** · " if finished else "")
            yield BranchOut(frame, f"{state}{BRANCHES} branches {where}: "
                            f"{plan.edits[0].steps} steps each, seeds "
                            f"{', '.join(str(c.seed) for c in plan.configs)}", records)
            if stopped:
                return


@dataclass
class BranchRefused:
    """As Generate's refusal: a calm line, and no earlier branches standing as its answer."""
    branch_frame: Any = None
    branch_status: Any = ("✗ **Not branched**: the request was refused (the message says "
                          "why). The previous branches are cleared.")
    branches: Any = None


def branch_refused() -> BranchRefused:
    return BranchRefused()


# ---------------------------------------------------------------- before and after a branch

@dataclass
class BranchCheck:
    branch_check: str  # from which step the button branches, or why it cannot
    branch_button: Any


def branch_check(record, step) -> BranchCheck:
    """Whether the Branch button can run, and from where; said before any click, as Generate
    says which combinations it cannot run."""
    if not isinstance(record, RunRecord) or not record.complete:
        return BranchCheck(f"✗ Nothing to branch yet: {NO_RUN}.", gr.update(interactive=False))
    last = record.num_steps - 1
    if not isinstance(step, (int, float)) or not 0 <= step <= last:
        return BranchCheck(
            f"✗ The Generate tab's replay slider stands on the last step ({record.num_steps}),"
            f" where nothing is left to generate: move it back, for instance to step "
            f"{record.schedule.num_init_steps or 1} to keep the layout.",
            gr.update(interactive=False))
    return BranchCheck(f"Branches the Generate run ({record.class_label}, {record.spec.label}) "
                       f"after step {int(step)} of {record.num_steps}.",
                       gr.update(interactive=True))


@dataclass
class BranchesRedrawn:
    branch_frame: Any


def branches_redrawn(records, final_overlay) -> BranchesRedrawn:
    """The finished branches with or without their Figure 3 order; nothing before a branch."""
    if not records or not all(isinstance(r, RunRecord) and r.tokens for r in records):
        return BranchesRedrawn(gr.skip())
    tick = max(r.steps_done for r in records) - 1
    return BranchesRedrawn(replay_compare(records, True, tick,
                                          boolean(final_overlay, "final overlay")))


@dataclass
class NewSeedOff:
    branch_new_seed: Any


def seed_typed() -> NewSeedOff:
    """A seed typed in is the seed wanted: the new-seed switch turns off."""
    return NewSeedOff(False)


# ---------------------------------------------------------------- the section

def build(gen: SimpleNamespace) -> SimpleNamespace:
    """The Branch section and its events; `gen` is the Generate tab, whose run it continues."""
    b = SimpleNamespace(branches=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS))
    with gr.Group():
        gr.Markdown("### Branch the Generate tab's run\nFrom the step its replay slider "
                    f"stands on (move it back from the last step first), {BRANCHES} new seeds "
                    "continue the run side by side (every model, the released ones with their "
                    "own schedule).  \n" + PAPER_POINT)
        b.branch_check = gr.Markdown(branch_check(None, None).branch_check,
                                     elem_classes=["par-reason"], elem_id="branch-check")
        with gr.Row(equal_height=True):
            b.branch_seed = gr.Number(value=0, precision=0, minimum=SEED_RANGE[0],
                                      maximum=SEED_RANGE[1], label="First seed",
                                      elem_id="branch-seed")
            b.branch_new_seed = gr.Checkbox(value=True, label="New seeds each branch",
                                            info="Off (or a seed typed in): the first seed "
                                            "above", elem_id="branch-new-seed")
            b.branch_button = gr.Button(f"Branch {BRANCHES} seeds from the replay step",
                                        variant="primary", interactive=False,
                                        elem_id="branch-run")
        b.branch_status = gr.Markdown(elem_classes=["par-status"], elem_id="branch-status")
        b.final_overlay = w.final_overlay_switch("branch-final-overlay")
        b.branch_frame = w.image("Branches side by side", elem_id="branch-frame")

    for trigger in [gen.step.change] + [run.then for run in gen.runs]:
        w.on(trigger, branch_check, [gen.run, gen.step], b, BranchCheck, **w.UI)
    w.on(b.branch_seed.input, seed_typed, None, b, NewSeedOff, **w.UI)
    w.bring_into_view(b.branch_button.click, "branch-status")
    w.on(b.branch_button.click, w.final_overlay_off, None, b, w.FinalOverlay, **w.UI)
    seeded = b.branch_button.click(w.next_seed, [b.branch_new_seed, b.branch_seed],
                                   b.branch_seed, **w.UI)
    b.branch_runs = [w.on(seeded.then, branch, [gen.run, gen.step, b.branch_seed], b, BranchOut,
                          api_name="branch", api_description=api_docs.BRANCH,
                          show_progress="minimal", **w.SCRIPTED, **w.RUN)]
    w.on(b.branch_runs[0].failure, branch_refused, None, b, BranchRefused, **w.UI)
    w.on(b.final_overlay.input, branches_redrawn, [b.branches, b.final_overlay], b,
         BranchesRedrawn, trigger_mode="always_last", api_visibility="private",
         concurrency_id="replay", concurrency_limit=4)
    return b
