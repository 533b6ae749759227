"""The statistics every verdict rests on: the order runs take, and how repeated figures are
summed up and judged. Standard library only, and no I/O, so bench/run --self-test can check each
helper on fixed inputs.

A figure measured R times is kept as a "spread": {"median", "min", "max", "runs"}. A target is
met only when the median meets it; when the runs fall on both sides of the threshold the verdict
says "within noise", since another R runs could well land the median on the other side."""

import operator
import statistics

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, "==": operator.eq}


def rounds(contenders, repeat, warmup=True):
    """The order of runs: one discarded warm-up round, then `repeat` rounds, each running every
    contender once, the order rotated by one each round (A B C, B C A, C A B, ...) so no contender
    always runs first, right after another, or last. Returns [(round, contender)], round 0 being
    the warm-up."""
    contenders = list(contenders)
    out = []
    if warmup:
        out += [(0, c) for c in contenders]
    for r in range(repeat):
        k = r % len(contenders) if contenders else 0
        out += [(r + 1, c) for c in contenders[k:] + contenders[:k]]
    return out


def median(values):
    """The median of the figures that exist (None ones are left out); None when none do."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    """{"median", "min", "max", "runs"} of the measured figures, None ones left out; None when
    there are none."""
    runs = [v for v in values if v is not None]
    if not runs:
        return None
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


def value_of(figure):
    """A figure as one number: a spread's median, or the number itself (results files from
    before --repeat hold plain numbers)."""
    if isinstance(figure, dict):
        return figure.get("median")
    return figure


def judge(figure, op, threshold):
    """(met, within_noise): met when the median satisfies `median OP threshold`; within_noise when
    some run satisfies it and some does not. met is None when there is no figure."""
    value = value_of(figure)
    if value is None:
        return None, False
    met = OPS[op](value, threshold)
    noise = False
    if isinstance(figure, dict) and len(figure.get("runs", [])) > 1:
        sides = {OPS[op](v, threshold) for v in figure["runs"]}
        noise = len(sides) == 2
    return met, noise


def paired_ratio(a, b):
    """The spread of a / b taken round by round: a and b map round -> figure, and only rounds
    where both were measured count, so a slow round slows both sides of its ratio. None when no
    round has both."""
    if not a or not b:
        return None
    return spread([a[r] / b[r] for r in sorted(a) if r in b and a[r] is not None and b[r]])
