"""A calibrated risk model that can say, for one patient, which features moved the risk.

``RiskModel`` is what the registry stored before models were updates of the LACE index
(models/updating.py): the fitted base pipeline (scaler and logistic regression, or
gradient-boosted trees), its Platt calibration, the feature order and the training means
of the features. Versions registered so then must still load, to be served or rolled
back to.

Contributions are occlusion effects on the base model's log-odds: for each feature, the
change in log-odds when the patient's value is replaced by the training mean. For a linear
model this is exactly coefficient x (value - mean), the usual linear attribution; for trees
it is the model's own response to that one change, computed by the model itself, so it is
faithful to what the model does (though, unlike SHAP, it ignores interactions' sharing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV

SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "models.risk_model.RiskModel",
    "models.updating.UpdatedRiskModel",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types beyond scikit-learn's public estimators that a stored model may contain.

Models are stored in the skops format, which (unlike pickle) instantiates only types on a
list at load time: a tampered artifact cannot run arbitrary code in the service.
"""


class RiskModel(ClassifierMixin, BaseEstimator):
    def __init__(
        self,
        calibrated: CalibratedClassifierCV,
        feature_names: Sequence[str],
        reference: Sequence[float],
    ) -> None:
        self.calibrated = calibrated
        self.feature_names = feature_names
        self.reference = reference

    @property
    def classes_(self) -> NDArray[np.int64]:
        return self.calibrated.classes_

    @property
    def base(self) -> BaseEstimator:
        """The uncalibrated model (fitted on all training data; ``ensemble=False``)."""
        return self.calibrated.calibrated_classifiers_[0].estimator

    def _matrix(self, X: object) -> NDArray[np.float64]:
        if hasattr(X, "columns"):
            X = X[list(self.feature_names)].to_numpy(dtype=float)  # type: ignore[index,attr-defined]
        return np.asarray(X, dtype=float)

    def predict_proba(self, X: object) -> NDArray[np.float64]:
        return self.calibrated.predict_proba(self._matrix(X))

    def predict(self, X: object) -> NDArray[np.int64]:
        return self.calibrated.predict(self._matrix(X))

    def assess(self, row: Sequence[float]) -> tuple[float, dict[str, float]]:
        """One patient's calibrated risk and each feature's effect on its log-odds.

        One call of the base model scores the patient and every occluded copy together
        (the risk is the calibrator applied to the first row): the same numbers as
        ``predict_proba`` at a fraction of the per-call overhead, which matters at the bedside.
        """
        x = np.asarray(row, dtype=float)
        occluded = np.tile(x, (len(x) + 1, 1))
        for j, mean in enumerate(self.reference):
            occluded[j + 1, j] = mean
        log_odds = self.base.decision_function(occluded)  # type: ignore[attr-defined]
        calibrator = self.calibrated.calibrated_classifiers_[0].calibrators[0]
        risk = float(calibrator.predict(log_odds[:1])[0])
        return risk, {
            name: float(log_odds[0] - log_odds[j + 1]) for j, name in enumerate(self.feature_names)
        }
