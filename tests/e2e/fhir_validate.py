"""Validates FHIR resources with the FHIR model classes of PyPI's fhir.resources (its R4B
models, pydantic): reads a JSON array of resources from the file named first, prints a JSON
array of {"index", "resourceType", "error"} for those that fail (tests/e2e/fhir.rs, issue #18)."""
import json
import sys

from fhir.resources.R4B import get_fhir_model_class

problems = []
with open(sys.argv[1], encoding="utf-8") as f:
    resources = json.load(f)
for i, r in enumerate(resources):
    try:
        get_fhir_model_class(r["resourceType"]).model_validate(r)
    except Exception as e:  # any refusal is a finding
        problems.append({"index": i, "resourceType": r.get("resourceType"), "error": str(e)[:2000]})
json.dump(problems, sys.stdout)
