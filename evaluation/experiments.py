"""Comparing two proportions in a randomized experiment, safely under repeated looks.

Two kinds of inference are reported for a variant arm against control:

- **Fixed horizon**: the difference with Newcombe's hybrid score 95% interval (Newcombe,
  "Interval estimation for the difference between independent proportions", Stat Med 1998,
  method 10, https://doi.org/10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I)
  and the pooled two-proportion z-test. Valid only when looked at once, at the sample size
  fixed in advance (``sample_size_per_arm``).
- **Always valid**: the mixture sequential probability ratio test (mSPRT) of Johari,
  Pekelis and Walsh, "Always valid inference: continuous monitoring of A/B tests",
  Operations Research 2022 (https://doi.org/10.1287/opre.2021.2135), with a normal mixture
  of variance tau^2 over the difference and the usual normal approximation to it. Its
  p-value (the running minimum of 1/Lambda) and confidence sequence (the running
  intersection) stay valid however often the data are looked at, so a dashboard watched
  daily does not mislead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


def wilson_interval(events: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion (Newcombe's building block)."""
    if n == 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    events: int, n: int, control_events: int, control_n: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p - p_control (method 10)."""
    p1, p0 = events / n, control_events / control_n
    l1, u1 = wilson_interval(events, n, alpha)
    l0, u0 = wilson_interval(control_events, control_n, alpha)
    difference = p1 - p0
    return (
        difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
    )


def two_proportion_p_value(events: int, n: int, control_events: int, control_n: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (events + control_events) / (n + control_n)
    variance = pooled * (1 - pooled) * (1 / n + 1 / control_n)
    if variance == 0:
        return 1.0
    z = (events / n - control_events / control_n) / math.sqrt(variance)
    return 2 * (1 - _NORMAL.cdf(abs(z)))


def sample_size_per_arm(
    baseline: float, difference: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Patients per arm to detect ``difference`` from ``baseline`` with a two-sided test
    (the standard normal-approximation formula, e.g. Fleiss, Statistical Methods for Rates
    and Proportions, 3rd ed. 2003, eq. 4.14 without continuity correction)."""
    p1, p0 = baseline + difference, baseline
    if not 0 < p1 < 1:
        raise ValueError("baseline + difference must lie strictly between 0 and 1")
    mean = (p0 + p1) / 2
    z_alpha, z_beta = _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        p0 * (1 - p0) + p1 * (1 - p1)
    )
    return math.ceil((numerator / difference) ** 2)


def _variance(events: int, n: int, control_events: int, control_n: int, pooled: bool) -> float:
    """Variance of the difference: pooled (under no difference, for the test) or not (for
    the confidence sequence); a floor keeps it defined while an arm has all or no events."""
    if pooled:
        p = (events + control_events) / (n + control_n)
        variance = p * (1 - p) * (1 / n + 1 / control_n)
    else:
        p1, p0 = events / n, control_events / control_n
        variance = p1 * (1 - p1) / n + p0 * (1 - p0) / control_n
    return max(variance, 0.25 / (n + control_n) ** 2)


def msprt_likelihood_ratio(difference: float, variance: float, tau: float) -> float:
    """Lambda of the mSPRT for H0: no difference (Johari et al. 2022, normal mixture)."""
    t2 = tau * tau
    exponent = t2 * difference * difference / (2 * variance * (variance + t2))
    return math.sqrt(variance / (variance + t2)) * math.exp(min(exponent, 700.0))


def _confidence_half_width(variance: float, tau: float, alpha: float) -> float:
    t2 = tau * tau
    return math.sqrt(
        variance
        * (variance + t2)
        / t2
        * (2 * math.log(1 / alpha) + math.log((variance + t2) / variance))
    )


@dataclass(frozen=True)
class Look:
    """Cumulative counts at one look: events and patients in the arm and in control."""

    events: int
    n: int
    control_events: int
    control_n: int


@dataclass(frozen=True)
class Comparison:
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    """Fixed-horizon: valid at the planned sample size, looked at once."""
    always_valid_p: float
    always_valid_low: float
    always_valid_high: float
    """Always valid: may be looked at after every patient."""
    n: int
    control_n: int
    rate: float
    control_rate: float


MIN_PER_ARM = 30
"""Looks start once both arms have this many patients: before that the normal
approximation the mSPRT relies on is poor (as in practice, a burn-in before monitoring)."""


def compare(
    looks: Sequence[Look], tau: float, alpha: float = 0.05, min_per_arm: int = MIN_PER_ARM
) -> Comparison:
    """Both inferences at the last look, the always-valid ones accumulated over every look
    from the burn-in on."""
    last = looks[-1]
    if last.n == 0 or last.control_n == 0:
        raise ValueError("both arms need patients to compare")
    always_p, low, high = 1.0, -1.0, 1.0
    for look in looks:
        if min(look.n, look.control_n) < min_per_arm:
            continue
        counts = (look.events, look.n, look.control_events, look.control_n)
        difference = look.events / look.n - look.control_events / look.control_n
        always_p = min(
            always_p, 1 / msprt_likelihood_ratio(difference, _variance(*counts, pooled=True), tau)
        )
        half = _confidence_half_width(_variance(*counts, pooled=False), tau, alpha)
        low, high = max(low, difference - half), min(high, difference + half)
    difference = last.events / last.n - last.control_events / last.control_n
    ci_low, ci_high = newcombe_interval(
        last.events, last.n, last.control_events, last.control_n, alpha
    )
    return Comparison(
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=two_proportion_p_value(last.events, last.n, last.control_events, last.control_n),
        always_valid_p=min(1.0, always_p),
        always_valid_low=low,
        always_valid_high=high,
        n=last.n,
        control_n=last.control_n,
        rate=last.events / last.n,
        control_rate=last.control_events / last.control_n,
    )


def cumulative_looks(
    arm: Sequence[int], control: Sequence[int], order: Sequence[str]
) -> list[Look]:
    """Looks after each patient, patients taken in ``order`` ("arm" or "control") with
    their 0/1 outcomes from ``arm`` and ``control`` in turn."""
    looks = []
    events = n = control_events = control_n = 0
    arm_iter, control_iter = iter(arm), iter(control)
    for who in order:
        if who == "arm":
            events += next(arm_iter)
            n += 1
        else:
            control_events += next(control_iter)
            control_n += 1
        looks.append(Look(events, n, control_events, control_n))
    return looks


def stopping_recommendation(
    comparisons: dict[str, Comparison], planned_per_arm: int, alpha: float
) -> str:
    """Stop early only on always-valid evidence; otherwise run to the planned size."""
    detected = [name for name, c in comparisons.items() if c.always_valid_p < alpha]
    if detected:
        return "stop: a difference is established (always-valid p < alpha) for " + ", ".join(
            detected
        )
    smallest = min((min(c.n, c.control_n) for c in comparisons.values()), default=0)
    if smallest >= planned_per_arm:
        return (
            f"stop: the planned {planned_per_arm} patients per arm are reached without an "
            "established difference; read the fixed-horizon intervals"
        )
    return f"continue: {smallest} of {planned_per_arm} planned patients in the smallest arm"
