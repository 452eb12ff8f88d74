"""Outbreak (aberration) detection on counts of a syndrome in an area: counts -> alarms.

Public-health surveillance watches a time series of counts -- emergency-department visits
with an influenza-like illness per day, laboratory reports of Salmonella per week -- and
raises an *alarm* when a count is higher than the recent or seasonal past explains. An
alarm is a prompt for an epidemiologist to look, not a confirmed outbreak.

Two families of methods are implemented, both pure functions of the counts:

* EARS C1, C2 and C3 (CDC Early Aberration Reporting System) for *daily* counts with
  little history: a Shewhart-type chart on a 7-day moving baseline (`ears_c1`,
  `ears_c2`, `ears_c3`).
* The improved Farrington algorithm of Noufaily et al. (2013) -- the quasi-Poisson
  regression used for routine weekly surveillance in England and Wales (HPA, later
  PHE/UKHSA) -- for *weekly* counts with years of history and seasonality
  (`farrington_flexible`, `farrington_series`), following the reference implementation
  ``surveillance::farringtonFlexible`` with Noufaily's options.

Plus tools to evaluate them on simulated series with injected outbreaks
(`simulate_series`, `detection_performance`).

Every method returns one `Alarm` per evaluated time point. Points without the history a
method needs are *not evaluated*: the EARS functions return alarms only for evaluable
indices (C1 from index 7, C2 from 9, C3 from 11, 0-based), and the Farrington functions
raise ``ValueError`` for an index without enough history.

References
----------
* Hutwagner L, Thompson W, Seeman GM, Treadwell T. The bioterrorism preparedness and
  response Early Aberration Reporting System (EARS). Journal of Urban Health 2003;
  80(2 Suppl 1):i89-i96.
* Hutwagner L, Browne T, Seeman GM, Fleischauer AT. Comparing aberration detection
  methods with simulated data. Emerging Infectious Diseases 2005;11(2):314-316.
  https://wwwnc.cdc.gov/eid/article/11/2/04-0587 (C1/C2: "the current value being
  greater than the mean plus 3 standard deviations").
* Fricker RD Jr, Hegler BL, Dunfee DA. Comparing syndromic surveillance detection
  methods: EARS' versus a CUSUM-based methodology. Statistics in Medicine 2008;
  27(17):3407-3429. https://doi.org/10.1002/sim.3197
* Farrington CP, Andrews NJ, Beale AD, Catchpole MA. A statistical algorithm for the
  early detection of outbreaks of infectious disease. Journal of the Royal Statistical
  Society Series A 1996;159(3):547-563. https://doi.org/10.2307/2983331
* Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A. An improved
  algorithm for outbreak detection in multiple surveillance systems. Statistics in
  Medicine 2013;32(7):1206-1222. https://doi.org/10.1002/sim.5595
* Salmon M, Schumacher D, Hoehle M. Monitoring count time series in R: aberration
  detection in public health surveillance. Journal of Statistical Software 2016;
  70(10):1-35. https://doi.org/10.18637/jss.v070.i10
* R package ``surveillance`` (Hoehle, Meyer, Paul, Salmon et al.), functions ``earsC``,
  ``farringtonFlexible``, ``sts_creation``: https://CRAN.R-project.org/package=surveillance
  (source read: github.com/cran/surveillance, R/earsC.R, R/farringtonFlexible.R,
  R/algo_farrington.R, R/sts_creation.R).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

# --------------------------------------------------------------------------------------
# Constants -- each one from the sources above.
# --------------------------------------------------------------------------------------

# EARS: a 7-day baseline (Hutwagner 2003; Fricker 2008 section 2; earsC `baseline = 7`).
EARS_BASELINE_DAYS = 7
# C2 and C3 leave a 2-day guard band between baseline and the current day: baseline days
# t-9 .. t-3 (Fricker 2008; earsC: "a 2-day lag in the baseline definition").
EARS_GUARD_DAYS = 2
# C3 sums the current and the 2 previous days (Fricker 2008; earsC Details).
C3_DAYS_SUMMED = 3
# C3 sums max(0, C2 - 1): the 1 is the CUSUM-like reference value (Fricker 2008; earsC).
C3_REFERENCE = 1.0
# C1 and C2 alarm when the count exceeds the baseline mean by more than 3 standard
# deviations (Hutwagner et al. 2005 table footnotes; Fricker 2008). earsC's default
# alpha = 0.001 is the normal-quantile version of it; its code comment: "This corresponds
# to an Z(1-zAlpha) of about 3".
C1_C2_THRESHOLD = 3.0
# C3 alarms when its statistic exceeds 2 (Fricker 2008); earsC's default for C3 is
# alpha = 0.025, commented in its code as "This corresponds to an Z(1-zAlpha) of about 2"
# and described in its documentation as "the one made at the CDC".
C3_THRESHOLD = 2.0
# Minimum standard deviation: earsC `minSigma = 0` by default (no floor). Its help page
# mentions Howard Burkom's suggestion of 0.5 or 1 for sparse data; we keep the default.
EARS_DEFAULT_MIN_SIGMA = 0.0

# Farrington / Noufaily, defaults of surveillance::farringtonFlexible with the options the
# package documents as the improved method of Noufaily et al. (2013).
WEEKS_PER_YEAR = 52  # farringtonFlexible with freq = 52: reference weeks are k - 52 * j
FARRINGTON_YEARS_BACK = 5  # `b = 5`
FARRINGTON_WINDOW = 3  # `w = 3`: half-width of the window around each reference week
FARRINGTON_ALPHA = 0.05  # `alpha = 0.05`, one-sided (1 - alpha) upper quantile
NOUFAILY_N_PERIODS = 10  # `noPeriods = 10` (Noufaily 2013; farringtonFlexible example)
NOUFAILY_PAST_WEEKS_NOT_INCLUDED = 26  # `pastWeeksNotIncluded = 26` (Noufaily 2013)
NOUFAILY_REWEIGHT_THRESHOLD = 2.58  # `weightsThreshold = 2.58` (1 in Farrington 1996)
FARRINGTON_P_TREND = 0.05  # `pThresholdTrend = 0.05` (Farrington 1996; see note below)
FARRINGTON_MIN_YEARS_FOR_TREND = 3  # trend only with >= 3 years of data (Farrington 1996)
LIMIT54_CASES = 5  # `limit54 = c(5, 4)`: no alarm with fewer than 5 cases ...
LIMIT54_WEEKS = 4  # ... in the last 4 weeks, current week included (Farrington 1996, 3.8)

# IRLS settings of R's glm(): glm.control(epsilon = 1e-8, maxit = 25), and the Poisson
# family's starting values mustart = y + 0.1 (stats::poisson()$initialize).
_GLM_EPSILON = 1e-8
_GLM_MAX_ITER = 25
_GLM_MUSTART_OFFSET = 0.1

# Simulation, after surveillance::sts_creation ("baseline and outbreaks are created as in
# Noufaily 2012"): outbreak cases spread over a discretised lognormal(meanlog 0, sdlog 0.5)
# with at most 20 time steps (lognormDiscrete(Dmax = 20, logmu = 0, sigma = 0.5)).
OUTBREAK_LOGNORMAL_MEANLOG = 0.0
OUTBREAK_LOGNORMAL_SDLOG = 0.5
OUTBREAK_MAX_STEPS = 20


@dataclass(frozen=True)
class Alarm:
    """One evaluated time point of a detection method.

    `threshold` is the count above which the point alarms (the upper bound, for plots);
    `statistic` is the C1/C2/C3 statistic for EARS and observed / threshold (the
    exceedance score) for Farrington. `alarm` is authoritative.
    """

    index: int
    observed: float
    expected: float
    threshold: float
    statistic: float
    alarm: bool


# --------------------------------------------------------------------------------------
# EARS C1, C2, C3
# --------------------------------------------------------------------------------------


def _as_counts(counts: Sequence[float]) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    if values.ndim != 1:
        raise ValueError("counts must be a one-dimensional sequence")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("counts must be finite and non-negative")
    return values


def _standardise(difference: float, sigma: float) -> float:
    """(observed - mean) / sigma, with sigma = 0 handled like earsC's comparison.

    With sigma = 0 (and min_sigma = 0, earsC's default) earsC's upper bound is the mean
    itself, so any count above the mean alarms: the statistic is +inf then, -inf below
    the mean and 0 for a count equal to the mean (0/0, no excess).
    """
    if sigma > 0:
        return difference / sigma
    if difference > 0:
        return math.inf
    if difference < 0:
        return -math.inf
    return 0.0


@dataclass(frozen=True)
class _Standardised:
    index: int
    observed: float
    mean: float
    sigma: float
    statistic: float


def _standardised_counts(
    counts: Sequence[float], guard: int, min_sigma: float
) -> list[_Standardised]:
    """(Y(t) - mean) / sd for every t with a full baseline (t >= 7 + guard)."""
    if min_sigma < 0:
        raise ValueError("min_sigma must be >= 0")
    values = _as_counts(counts)
    start = EARS_BASELINE_DAYS + guard
    if len(values) <= start:
        return []
    # The baseline of day t is the 7 days before t minus the guard band, window t - start:
    # mean and sample SD (n - 1, as R's sd()) of all windows at once, the SD floored at
    # min_sigma (earsC: pmax(sd, minSigma)).
    windows = np.lib.stride_tricks.sliding_window_view(values, EARS_BASELINE_DAYS)
    windows = windows[: len(values) - start]
    means = windows.mean(axis=1)
    sigmas = np.maximum(windows.std(axis=1, ddof=1), min_sigma)
    return [
        _Standardised(
            t,
            float(values[t]),
            float(mean),
            float(sigma),
            _standardise(float(values[t]) - float(mean), float(sigma)),
        )
        for t, mean, sigma in zip(range(start, len(values)), means, sigmas, strict=True)
    ]


def _shewhart(counts: Sequence[float], guard: int, min_sigma: float) -> list[Alarm]:
    return [
        Alarm(
            index=p.index,
            observed=p.observed,
            expected=p.mean,
            threshold=p.mean + C1_C2_THRESHOLD * p.sigma,
            statistic=p.statistic,
            alarm=bool(p.statistic > C1_C2_THRESHOLD),
        )
        for p in _standardised_counts(counts, guard, min_sigma)
    ]


def ears_c1(counts: Sequence[float], *, min_sigma: float = EARS_DEFAULT_MIN_SIGMA) -> list[Alarm]:
    """EARS C1-MILD: C1(t) = (Y(t) - mean) / sd over days t-7 .. t-1; alarm if C1 > 3.

    Evaluated from index 7 on (earsC: range from `baseline + 1`, 1-based). The SD is the
    sample SD (divisor 6) and is floored at `min_sigma` (earsC `minSigma`, default 0).
    """
    return _shewhart(counts, guard=0, min_sigma=min_sigma)


def ears_c2(counts: Sequence[float], *, min_sigma: float = EARS_DEFAULT_MIN_SIGMA) -> list[Alarm]:
    """EARS C2-MEDIUM: as C1 but the baseline is days t-9 .. t-3 (2-day guard band).

    Evaluated from index 9 on (earsC: from `baseline + 3`, 1-based).
    """
    return _shewhart(counts, guard=EARS_GUARD_DAYS, min_sigma=min_sigma)


def ears_c3(counts: Sequence[float], *, min_sigma: float = EARS_DEFAULT_MIN_SIGMA) -> list[Alarm]:
    """EARS C3-HIGH: C3(t) = sum over i = t-2 .. t of max(0, C2(i) - 1); alarm if C3 > 2.

    Evaluated from index 11 on (C2 is needed at t-2; earsC: from `baseline + 5`).
    `expected` is the C2 baseline mean at t. `threshold` is the count at t above which
    C3(t) exceeds 2 given the two previous days' terms L: mean + sd * (1 + 2 - L) when
    L <= 2, and -inf when L > 2 (then every count alarms).

    Note: surveillance's earsC (R/earsC.R) sets the C3 upper bound to
    `observed + sd * (zAlpha - L)`, so its C3 alarm reduces to L > zAlpha: it depends on
    days t-1 and t-2 only, not on today's count, and does not match the statistic its
    help page documents. The alarm here follows the published statistic (Fricker 2008;
    earsC Details): C3(t) > 2.
    """
    c2 = _standardised_counts(counts, guard=EARS_GUARD_DAYS, min_sigma=min_sigma)
    lags = C3_DAYS_SUMMED - 1
    alarms = []
    for position in range(lags, len(c2)):
        today = c2[position]
        previous = sum(max(0.0, p.statistic - C3_REFERENCE) for p in c2[position - lags : position])
        statistic = max(0.0, today.statistic - C3_REFERENCE) + previous
        if previous <= C3_THRESHOLD:
            threshold = today.mean + today.sigma * (C3_REFERENCE + C3_THRESHOLD - previous)
        else:
            threshold = -math.inf
        alarms.append(
            Alarm(
                index=today.index,
                observed=today.observed,
                expected=today.mean,
                threshold=threshold,
                statistic=statistic,
                alarm=bool(statistic > C3_THRESHOLD),
            )
        )
    return alarms


# --------------------------------------------------------------------------------------
# Poisson GLM by iteratively reweighted least squares (the quasi-Poisson fit of R's glm)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GlmFit:
    coef: np.ndarray  # on the log scale
    mu: np.ndarray  # fitted means
    converged: bool
    cov_unscaled: np.ndarray  # (X' W X)^-1, W = prior weight * mu
    hat: np.ndarray  # diagonal of the hat matrix W^1/2 X (X'WX)^-1 X' W^1/2
    dispersion: float  # Pearson: sum(w (y - mu)^2 / mu) / (n - p), as summary.glm
    df_residual: int


def _poisson_deviance(y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        y_log_y_over_mu = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(weights * (y_log_y_over_mu - (y - mu))))


def _fit_poisson_glm(
    design: np.ndarray, y: np.ndarray, prior_weights: np.ndarray | None = None
) -> _GlmFit:
    """Poisson log-link GLM fitted by IRLS, as R's glm.fit (same start, same stopping rule).

    Returns the quasi-Poisson quantities R's summary.glm and hatvalues() give: the
    Pearson dispersion and the hat values.
    """
    weights = np.ones_like(y) if prior_weights is None else np.asarray(prior_weights, float)
    mu = y + _GLM_MUSTART_OFFSET
    eta = np.log(mu)
    deviance_old = _poisson_deviance(y, mu, weights)
    coef = np.zeros(design.shape[1])
    converged = False
    for _ in range(_GLM_MAX_ITER):
        working_response = eta + (y - mu) / mu
        root_w = np.sqrt(weights * mu)
        coef = np.linalg.lstsq(design * root_w[:, None], working_response * root_w, rcond=None)[0]
        eta = design @ coef
        mu = np.exp(eta)
        deviance = _poisson_deviance(y, mu, weights)
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < _GLM_EPSILON:
            converged = True
            break
        deviance_old = deviance
    working_weights = weights * mu
    cov_unscaled = np.linalg.pinv(design.T @ (design * working_weights[:, None]))
    hat = working_weights * np.einsum("ij,jk,ik->i", design, cov_unscaled, design)
    df_residual = int(np.count_nonzero(weights > 0)) - int(np.linalg.matrix_rank(design))
    pearson = float(np.sum(weights * (y - mu) ** 2 / mu))
    dispersion = pearson / df_residual if df_residual > 0 else math.nan
    return _GlmFit(coef, mu, converged, cov_unscaled, hat, dispersion, df_residual)


# --------------------------------------------------------------------------------------
# Improved Farrington (Noufaily et al. 2013) as surveillance::farringtonFlexible
# --------------------------------------------------------------------------------------


def _reference_weeks(week_of_year: np.ndarray, index: int, years_back: int) -> list[int]:
    """The current week and the same week 1 .. years_back years before.

    52 weeks per year: the reference week j years back is 52 weeks before the one of
    year j - 1 (farringtonFlexible with freq = 52). If `week_of_year` there differs (an
    ISO year with a week 53 in between), the neighbour week with the same number is
    used instead, so the windows stay on the same calendar weeks.
    """
    references = [index]
    for _ in range(years_back):
        guess = references[-1] - WEEKS_PER_YEAR
        for candidate in (guess, guess - 1, guess + 1):
            if 0 <= candidate < index and week_of_year[candidate] == week_of_year[index]:
                guess = candidate
                break
        references.append(guess)
    return references


def _season_levels(n: int, references: list[int], window: int, n_periods: int) -> np.ndarray:
    """The seasonal factor of farringtonFlexible's blocks(): 0 = not in the baseline.

    Level `n_periods` is the window of +-`window` weeks around each reference week (and
    the current week's window); the weeks between two consecutive windows are cut into
    `n_periods - 1` blocks of (nearly) equal length, labelled 1 .. n_periods - 1 in time
    order, the first blocks one week longer when the division is not exact.
    """
    if references[-1] - window < 0:
        raise ValueError("not enough history: the oldest reference window starts before 0")
    levels = np.zeros(n, dtype=int)
    levels[references[0] - window : references[0] + 1] = n_periods
    for newer, reference in itertools.pairwise(references):
        levels[reference - window : reference + window + 1] = n_periods
        if n_periods == 1:
            continue
        gap = newer - 2 * window - 1 - reference
        if gap < n_periods - 1:
            raise ValueError("too many periods for the weeks between two reference windows")
        length, rest = divmod(gap, n_periods - 1)
        start = reference + window + 1
        for level in range(1, n_periods):
            block = length + (1 if level <= rest else 0)
            levels[start : start + block] = level
            start += block
    return levels


def _design(
    index: int, rows: np.ndarray, levels: np.ndarray, window_level: int, trend: bool
) -> np.ndarray:
    """Intercept, time trend (weeks relative to `index`), one dummy per non-window level.

    The window level is the reference category, so the prediction for the current week
    (time 0, window level) is exp(intercept). Levels without data are left out.
    """
    columns = [np.ones(len(rows))]
    if trend:
        columns.append((rows - index).astype(float))
    row_levels = levels[rows]
    for level in sorted(set(row_levels.tolist()) - {window_level}):
        columns.append((row_levels == level).astype(float))
    return np.column_stack(columns)


def _anscombe_residuals(y: np.ndarray, fit: _GlmFit, phi: float) -> np.ndarray:
    """Standardised Anscombe residuals (surveillance's anscombe.residuals; Farrington 1996):
    3/2 (y^(2/3) mu^(-1/6) - mu^(1/2)) / sqrt(phi (1 - h))."""
    raw = 1.5 * (y ** (2 / 3) * fit.mu ** (-1 / 6) - np.sqrt(fit.mu))
    with np.errstate(divide="ignore"):
        return raw / np.sqrt(phi * (1.0 - fit.hat))


def _outbreak_weights(residuals: np.ndarray, threshold: float) -> np.ndarray:
    """algo.farrington.assign.weights: s^-2 above the threshold, 1 otherwise, scaled so
    the weights sum to the number of baseline weeks (Farrington 1996)."""
    with np.errstate(divide="ignore"):
        raw = np.where(residuals > threshold, residuals**-2.0, 1.0)
    return raw * (len(residuals) / raw.sum())


def _fit_reweighted(
    design: np.ndarray, y: np.ndarray, reweight_threshold: float
) -> tuple[_GlmFit, float] | None:
    """algo.farrington.fitGLM.flexible: fit, phi = max(dispersion, 1), down-weight weeks
    with large Anscombe residuals (past outbreaks), refit, phi = max(dispersion, 1)."""
    fit = _fit_poisson_glm(design, y)
    if not fit.converged:
        return None
    phi = max(fit.dispersion, 1.0)
    weights = _outbreak_weights(_anscombe_residuals(y, fit, phi), reweight_threshold)
    refit = _fit_poisson_glm(design, y, weights)
    return refit, max(refit.dispersion, 1.0)


def _upper_quantile(mu0: float, phi: float, alpha: float) -> float:
    """Noufaily's negative binomial plug-in threshold ("nbPlugin"): the (1 - alpha)
    quantile of a count with mean mu0 and variance phi * mu0, i.e. qnbinom(1 - alpha,
    size = mu0 / (phi - 1), prob = 1 / phi), or a Poisson quantile when phi = 1
    (algo.farrington.threshold.noufaily)."""
    if not math.isfinite(mu0):
        return math.inf
    if phi > 1:
        return float(stats.nbinom.ppf(1 - alpha, mu0 / (phi - 1), 1 / phi))
    return float(stats.poisson.ppf(1 - alpha, mu0))


def _exceedance_score(observed: float, threshold: float) -> float:
    """observed / threshold; a positive count over a 0 threshold is inf, 0 over 0 is 0."""
    if threshold > 0:
        return observed / threshold
    return math.inf if observed > 0 else 0.0


def farrington_flexible(
    counts: Sequence[float],
    week_of_year: Sequence[int],
    index: int,
    *,
    years_back: int = FARRINGTON_YEARS_BACK,
    window: int = FARRINGTON_WINDOW,
    alpha: float = FARRINGTON_ALPHA,
    n_periods: int = NOUFAILY_N_PERIODS,
    past_weeks_not_included: int = NOUFAILY_PAST_WEEKS_NOT_INCLUDED,
    reweight_threshold: float = NOUFAILY_REWEIGHT_THRESHOLD,
    p_threshold_trend: float = FARRINGTON_P_TREND,
) -> Alarm:
    """The improved Farrington algorithm (Noufaily et al. 2013) for week `index`.

    Weekly counts, 52 weeks per year (week_of_year only re-aligns reference weeks across
    an ISO week 53, see `_reference_weeks`). Follows surveillance::farringtonFlexible
    with noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
    thresholdMethod = "nbPlugin", b = 5, w = 3, alpha = 0.05:

    1. Baseline: all weeks from `years_back` years + `window` weeks ago up to 27 weeks ago
       (the current week and the 26 before it are left out, so an emerging outbreak does
       not inflate its own baseline). A 10-level factor models seasonality: one level
       for the 7-week windows around the same week in past years, 9 levels for blocks of
       (about) 5 weeks in between (Noufaily 2013; farringtonFlexible's blocks()).
       With n_periods = 1 and past_weeks_not_included = window only the windows are
       used, as in the original algorithm of Farrington et al. (1996).
    2. Quasi-Poisson log-linear GLM with linear trend, fitted by IRLS; dispersion
       phi = max(Pearson dispersion, 1).
    3. Reweighting: weeks with standardised Anscombe residual > 2.58 get weight
       gamma * s^-2, the others gamma; refit; phi = max(dispersion, 1).
    4. The trend is kept only if significant at 5% (t-test with the quasi-Poisson
       dispersion), the prediction does not exceed the largest baseline count (no
       extrapolation), and years_back >= 3; otherwise steps 2-3 are redone without it.
       (farringtonFlexible's help: "0.05 in the original method, 1 advised in the
       improved method", i.e. Noufaily et al. keep the trend unless it extrapolates;
       pass p_threshold_trend=1.0 for that. The default here is the package's 0.05.)
    5. Threshold: the (1 - alpha) quantile of a negative binomial with the predicted
       mean mu0 and variance phi * mu0 (Poisson if phi = 1); estimation error ignored.
    6. Alarm if the count exceeds the threshold, is not 0, and the last 4 weeks
       (current included) have at least 5 cases (Farrington 1996's rule; below it the
       threshold is still reported -- farringtonFlexible reports NA -- but no alarm).

    `expected` is mu0, `statistic` is observed / threshold (inf for a positive count over
    a 0 threshold, 0 for 0 over 0). If the GLM does not converge, with or without trend,
    the week is reported with NaN expected/threshold/statistic and no alarm (R: NA). This
    happens with an all-zero baseline, whose log-mean diverges to -inf (R's glm does not
    converge there either).
    """
    values = _as_counts(counts)
    weeks = np.asarray(week_of_year, dtype=int)
    if weeks.shape != values.shape:
        raise ValueError("week_of_year must have the same length as counts")
    if not 0 <= index < len(values):
        raise ValueError("index out of range")
    if years_back < 1 or window < 0 or n_periods < 1 or not 0 < alpha < 1:
        raise ValueError("invalid years_back, window, n_periods or alpha")

    references = _reference_weeks(weeks, index, years_back)
    levels = _season_levels(len(values), references, window, n_periods)
    levels[max(0, index - past_weeks_not_included) : index + 1] = 0
    rows = np.flatnonzero(levels)
    y = values[rows]
    observed = float(values[index])

    trend = True
    fitted = _fit_reweighted(_design(index, rows, levels, n_periods, trend), y, reweight_threshold)
    if fitted is not None:
        fit, _ = fitted
        prediction = math.exp(fit.coef[0])
        se = math.sqrt(fit.dispersion * fit.cov_unscaled[1, 1])
        # A perfect fit (dispersion 0) gives se = 0: no evidence for a trend, p = 1.
        p_value = 2 * float(stats.t.sf(abs(fit.coef[1]) / se, fit.df_residual)) if se > 0 else 1.0
        trend = (
            p_value < p_threshold_trend
            and prediction <= float(y.max())
            and years_back >= FARRINGTON_MIN_YEARS_FOR_TREND
        )
    if not trend or fitted is None:
        trend = False
        fitted = _fit_reweighted(
            _design(index, rows, levels, n_periods, trend), y, reweight_threshold
        )
    if fitted is None:
        return Alarm(index, observed, math.nan, math.nan, math.nan, False)

    fit, phi = fitted
    expected = math.exp(fit.coef[0])
    threshold = _upper_quantile(expected, phi, alpha)
    recent = float(values[max(0, index - LIMIT54_WEEKS + 1) : index + 1].sum())
    statistic = _exceedance_score(observed, threshold)
    alarm = recent >= LIMIT54_CASES and observed > threshold and observed != 0
    return Alarm(index, observed, expected, threshold, statistic, alarm)


def farrington_series(
    counts: Sequence[float], week_of_year: Sequence[int], start: int, **options: Any
) -> list[Alarm]:
    """`farrington_flexible` for every week from `start` to the end of the series.

    `options` are the keyword options of `farrington_flexible`.
    """
    values = _as_counts(counts)
    weeks = np.asarray(week_of_year, dtype=int)
    return [farrington_flexible(values, weeks, i, **options) for i in range(start, len(values))]


# --------------------------------------------------------------------------------------
# Evaluation on injected outbreaks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionPerformance:
    """How a method did on series with known outbreaks.

    sensitivity: share of outbreaks with at least one alarm during the outbreak (among
        outbreaks with at least one evaluated time step).
    false_alarms_per_year: alarms outside outbreaks per `steps_per_year` evaluated
        non-outbreak steps (365 for daily, 52 for weekly data).
    median_days_to_detection: median over detected outbreaks of (first alarm - start),
        in time steps (0 = alarmed on the first day/week); None if none was detected.
    """

    sensitivity: float
    false_alarms_per_year: float
    median_days_to_detection: float | None


def detection_performance(
    alarms: Sequence[Alarm], outbreaks: Sequence[tuple[int, int]], steps_per_year: int
) -> DetectionPerformance:
    """Score `alarms` against `outbreaks`, given as half-open intervals [start, stop).

    Only evaluated time points count: an outbreak none of whose steps was evaluated is
    left out, and false alarms are per evaluated step outside all outbreaks. With no
    scorable outbreak the sensitivity is NaN; with no step outside outbreaks the false
    alarm rate is NaN.
    """
    if steps_per_year <= 0:
        raise ValueError("steps_per_year must be positive")
    for start, stop in outbreaks:
        if stop <= start:
            raise ValueError("an outbreak interval needs start < stop")
    evaluated = {a.index: a.alarm for a in alarms}

    def in_outbreak(index: int) -> bool:
        return any(start <= index < stop for start, stop in outbreaks)

    delays: list[int] = []
    scorable = 0
    for start, stop in outbreaks:
        steps = [i for i in range(start, stop) if i in evaluated]
        if not steps:
            continue
        scorable += 1
        first = next((i for i in steps if evaluated[i]), None)
        if first is not None:
            delays.append(first - start)

    outside = [alarm for index, alarm in evaluated.items() if not in_outbreak(index)]
    return DetectionPerformance(
        sensitivity=len(delays) / scorable if scorable else math.nan,
        false_alarms_per_year=(
            float(sum(outside)) / len(outside) * steps_per_year if outside else math.nan
        ),
        median_days_to_detection=float(np.median(delays)) if delays else None,
    )


@dataclass(frozen=True)
class SimulatedSeries:
    """A simulated count series: `counts` = baseline + injected outbreak cases.

    `outbreaks` are half-open intervals [start, stop) from an outbreak's start to its last
    step with outbreak cases (outbreaks that drew 0 cases are omitted); `outbreak_cases[i]` is
    the number of cases of `outbreaks[i]`. `step_of_year` is 1 .. steps_per_year (the
    week of the year for weekly data).
    """

    counts: tuple[int, ...]
    baseline_mean: tuple[float, ...]
    outbreaks: tuple[tuple[int, int], ...]
    outbreak_cases: tuple[int, ...]
    step_of_year: tuple[int, ...]


def simulate_series(
    n_steps: int,
    *,
    seed: int,
    steps_per_year: int = WEEKS_PER_YEAR,
    theta: float,
    beta: float = 0.0,
    gamma1: float = 0.0,
    gamma2: float = 0.0,
    dispersion: float = 1.0,
    outbreak_starts: Sequence[int] = (),
    outbreak_k: float | Sequence[float] = 0.0,
) -> SimulatedSeries:
    """Counts like the simulation study of Noufaily et al. (2013), kept simple.

    Baseline (surveillance::sts_creation, one harmonic): at step t = 1 .. n_steps
        mu(t) = exp(theta + beta t + gamma1 cos(2 pi t / P) + gamma2 sin(2 pi t / P)),
    P = steps_per_year; counts are Poisson(mu) if dispersion = 1, otherwise negative
    binomial with mean mu and variance dispersion * mu.

    Outbreaks: an outbreak starting at (0-based) step s has Poisson(k * SD) cases, SD =
    sqrt(dispersion * mu(s)) the baseline standard deviation at its start, i.e. its size
    is k baseline SDs (`outbreak_k`: one k for all outbreaks or one per start). Note that
    sts_creation instead draws Poisson(k * mu * (1 + mu / size)), k times the variance.
    Each case lands floor(X) steps after s with X ~ lognormal(0, 0.5) (sts_creation's
    lognormDiscrete; X >= 20, probability ~1e-9, is put in the last of its 20 steps),
    so most cases fall in the first 2-3 steps: P(X < 1) = 0.5, P(X < 2) = 0.92. Cases
    beyond the end of the series are dropped.

    Deterministic for a given `seed` (numpy Generator).
    """
    if n_steps <= 0 or steps_per_year <= 0 or dispersion < 1:
        raise ValueError("need n_steps > 0, steps_per_year > 0 and dispersion >= 1")
    starts = [int(s) for s in outbreak_starts]
    multipliers = np.broadcast_to(np.asarray(outbreak_k, dtype=float), (len(starts),)).tolist()
    if any(not 0 <= s < n_steps for s in starts) or any(k < 0 for k in multipliers):
        raise ValueError("outbreak starts must lie within the series and k must be >= 0")

    rng = np.random.default_rng(seed)
    t = np.arange(1, n_steps + 1, dtype=float)
    angle = 2 * math.pi * t / steps_per_year
    mu = np.exp(theta + beta * t + gamma1 * np.cos(angle) + gamma2 * np.sin(angle))
    if dispersion == 1:
        counts = rng.poisson(mu)
    else:
        counts = rng.negative_binomial(mu / (dispersion - 1), 1 / dispersion)

    intervals: list[tuple[int, int]] = []
    sizes: list[int] = []
    for start, k in zip(starts, multipliers, strict=True):
        cases = int(rng.poisson(k * math.sqrt(dispersion * mu[start])))
        if cases == 0:
            continue
        delays = rng.lognormal(OUTBREAK_LOGNORMAL_MEANLOG, OUTBREAK_LOGNORMAL_SDLOG, cases)
        offsets = np.minimum(np.floor(delays), OUTBREAK_MAX_STEPS - 1).astype(int)
        positions = start + offsets
        positions = positions[positions < n_steps]
        if len(positions) == 0:
            continue
        np.add.at(counts, positions, 1)
        intervals.append((start, int(positions.max()) + 1))
        sizes.append(len(positions))

    return SimulatedSeries(
        counts=tuple(int(c) for c in counts),
        baseline_mean=tuple(float(m) for m in mu),
        outbreaks=tuple(intervals),
        outbreak_cases=tuple(sizes),
        step_of_year=tuple(int(i % steps_per_year) + 1 for i in range(n_steps)),
    )
