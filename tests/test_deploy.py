"""deploy/'s Kubernetes manifest, checked offline against the Kubernetes API's own schemas (never applied here).

kubernetes-validate bundles the OpenAPI schemas of every Kubernetes release as
JSON Schema; strict mode also rejects fields the API does not have, which
kubectl would drop or refuse.
"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "grade-indexed-job.yaml"
#: The oldest release the manifest says it needs (native sidecars: an init container with restartPolicy Always).
OLDEST = "1.29.0"


def _job() -> dict:
    documents = [doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if doc]
    assert len(documents) == 1 and documents[0]["kind"] == "Job"
    return documents[0]


@pytest.mark.parametrize("version", [OLDEST, kubernetes_validate.latest_version()])
def test_the_indexed_job_is_valid_for_the_kubernetes_api(version: str) -> None:
    """Is the grading Job valid, field for field (strict), for Kubernetes 1.29 and the newest release known?"""
    kubernetes_validate.validate(_job(), version, strict=True)


def test_the_schema_check_rejects_a_field_the_api_does_not_have() -> None:
    """Does the check fail on a misspelt field deep in the pod and on a value of the wrong type?"""
    misspelt = _job()
    probe = misspelt["spec"]["template"]["spec"]["initContainers"][0]["startupProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError, match="'periodSecond' was unexpected"):
        kubernetes_validate.validate(misspelt, OLDEST, strict=True)
    wrong_type = _job()
    wrong_type["spec"]["completions"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, OLDEST, strict=True)


def test_the_job_grades_as_many_shards_as_it_runs_pods() -> None:
    """Do completions, parallelism and SHARDS agree, and does every pod grade on its sidecar engine?"""
    spec = _job()["spec"]
    grader = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == "grader")
    env = {item["name"]: item["value"] for item in grader["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["SHARDS"])
    engine = next(c for c in spec["template"]["spec"]["initContainers"] if c["name"] == "engine")
    assert engine["restartPolicy"] == "Always" and env["DOCKER_HOST"] in " ".join(engine["args"])
