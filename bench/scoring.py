"""What the readmission model adds to an encounter-discharge call, measured in-process.

For the latest discharges of the synthetic patients, the same evaluation is timed with the
rules alone (the baseline, measured in the same run) and with the rules plus the model
(features, calibrated risk, contributions and card). Printed: median and p95 per call for
each, the difference in milliseconds and the ratio. The model is the local store's
@champion, or one trained for the run into a temporary store.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cds_service.config import Settings, default_patients
from fhir_client.bundles import load_bundle, patient_bundles
from fhir_client.record import PatientRecord
from knowledge.library import load_library
from knowledge.rule import EvaluationContext
from models.cohort import build_cohort
from models.features import ReadmissionFeatures
from models.registry import CHAMPION, MlflowLocation, alias_version
from models.serving import ModelRecommender, ModelSlot
from models.tasks import READMISSION_30D
from models.training import TrainingOptions, train_task
from point_of_care.invocation import draft_medication_orders, validate_context


def _location(features: ReadmissionFeatures) -> MlflowLocation:
    location = Settings().mlflow
    if alias_version(location, READMISSION_30D.registered_model, CHAMPION) is not None:
        return location
    folder = Path(tempfile.mkdtemp(prefix="lhs-bench-mlflow-"))
    location = MlflowLocation(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts")
    print("no @champion in the local store: training one for this run ...")
    cohort = build_cohort(patient_bundles(default_patients()), READMISSION_30D, features, b"bench")
    train_task(READMISSION_30D, cohort, location, TrainingOptions(bootstrap_rounds=50))
    return location


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="discharges to evaluate")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    args = parser.parse_args()
    library = load_library()
    features = ReadmissionFeatures(library)
    slot = ModelSlot(_location(features), READMISSION_30D)
    slot.refresh()
    model = ModelRecommender(READMISSION_30D, slot, features)
    rules = [r for r in library.rules if READMISSION_30D.hook in r.hooks]

    contexts = []
    cohort = build_cohort(patient_bundles(default_patients()), READMISSION_30D, features, b"bench")
    wanted = {e.encounter for e in cohort.examples[-args.calls :]}
    for path in patient_bundles(default_patients()):
        resources = [e["resource"] for e in load_bundle(path)["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        record = PatientRecord.from_resources(patient["id"], resources)
        for encounter in record.resources("Encounter"):
            if f"Encounter/{encounter['id']}" in wanted:
                context = validate_context(
                    READMISSION_30D.hook,
                    {
                        "userId": "Practitioner/1",
                        "patientId": patient["id"],
                        "encounterId": encounter["id"],
                    },
                )
                contexts.append(
                    EvaluationContext(
                        READMISSION_30D.hook,
                        context,
                        record,
                        datetime(2021, 4, 1, tzinfo=UTC),
                        draft_medication_orders(context),
                    )
                )

    def rules_only(ctx: EvaluationContext) -> None:
        for rule in rules:
            rule.evaluate(ctx)

    def rules_and_model(ctx: EvaluationContext) -> None:
        rules_only(ctx)
        model.predict(ctx)

    timings: dict[str, list[float]] = {"rules": [], "rules + model": []}
    for _ in range(args.rounds):
        for name, run in (("rules", rules_only), ("rules + model", rules_and_model)):
            for ctx in contexts:
                started = time.perf_counter()
                run(ctx)
                timings[name].append((time.perf_counter() - started) * 1000)
    print(
        f"model {slot.task.registered_model} v{slot.current.version if slot.current else '?'}; "
        f"{len(contexts)} discharges x {args.rounds} rounds"
    )
    medians = {}
    for name, values in timings.items():
        values.sort()
        medians[name] = statistics.median(values)
        print(
            f"{name:<14} median {medians[name]:6.3f} ms   p95 {values[int(len(values) * 0.95)]:6.3f} ms"
        )
    added = medians["rules + model"] - medians["rules"]
    print(
        f"model adds {added:.3f} ms per call (median), ratio {medians['rules + model'] / medians['rules']:.2f}x"
    )


if __name__ == "__main__":
    main()
