"""Checks recorded HTTP exchanges against docs/api/openapi.yaml (issue 63).

The transport's tests (`crates/serve/tests/it/`) record every request
they send and every answer they receive, one JSON object a line:

    {"test", "client", "method", "path", "request_headers": {name: value},
     "request_body": text or null, "request_body_utf8": bool,
     "status", "headers": {name: value}, "body": text}

(header names in lower case). Each is checked against the document:

- A path and method of the document: the status is one of the
  operation's answers; the answer's media type is one of that answer's;
  a JSON body validates against its schema (JSON Schema 2020-12, the
  document's references resolved); a header the answer requires is
  there and fits its schema; an error's `code` is one its status is
  documented with.
- The request agrees with the document's schema: one answered 2xx
  validates against the request body's schema; one refused 400
  (`malformed_json`, `invalid_request`) with a JSON content type does
  not (the server's envelope checks are the schema's). A path parameter
  answered 200 fits its schema.
- A path the document does not have: 404 `not_found`. One of its paths
  with another method: 405 with `Allow` naming the document's methods.
  Both bodies are `Error`s.

With `--cover`, every status of every operation of the document, and
every error code, must have been seen at least once.

Usage:
  exchanges.py OPENAPI.yaml EXCHANGES.jsonl [--cover]
  exchanges.py OPENAPI.yaml --routes     (prints "METHOD PATH" a line)
Exits 1 with every failure listed.
"""
import json
import re
import sys

import jsonschema
import referencing
import yaml

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# The codes each status is documented with (the answers' descriptions).
CODES = {
    400: {"malformed_json", "invalid_request"},
    401: {"unauthorized"},
    404: {"unknown_scene", "not_found", "expired"},
    405: {"invalid_request"},
    409: {"event_id_reused"},
    413: {"too_large"},
    422: {"not_in_scene", "invalid_request"},
    429: {"overloaded"},
    500: {"internal"},
    503: {"unavailable"},
}


class Document:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        resource = referencing.Resource.from_contents(
            self.doc, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry = referencing.Registry().with_resource("urn:cepheid:openapi", resource)
        self.routes = []  # (regex, template, {method: operation})
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            ops = {m: op for m, op in item.items() if m in METHODS}
            self.routes.append((re.compile(pattern), template, ops))

    def validator(self, schema):
        if "$ref" in schema:
            schema = {"$ref": "urn:cepheid:openapi" + schema["$ref"]}
        else:
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        return jsonschema.Draft202012Validator(schema, registry=self.registry)

    def resolve(self, obj):
        while "$ref" in obj:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            obj = node
        return obj

    def route(self, path):
        for pattern, template, ops in self.routes:
            m = pattern.match(path)
            if m:
                return template, ops, m.groups()
        return None, None, None

    def operations(self):
        for _, template, ops in self.routes:
            for method, op in ops.items():
                yield method.upper(), template, op


def first_error(validator, value):
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.path)
    return f"{e.message}" + (f" (at {where})" if where else "")


def unique_members(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a member given twice")
    return dict(pairs)


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


def check(doc, ex, seen, codes):
    """The faults of one exchange, as strings."""
    faults = []
    method, status = ex["method"].upper(), ex["status"]
    path = ex["path"].split("?")[0]
    headers = ex.get("headers", {})
    media = media_type(headers.get("content-type"))
    body = ex.get("body", "")
    parsed = None
    if media == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError as e:
            faults.append(f"the answer says JSON and is not: {e}")
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        code = parsed["error"].get("code")
        codes.add(code)
        if status in CODES and code not in CODES[status]:
            faults.append(f"{status} with code {code!r}: the document gives {sorted(CODES[status])}")
    error_schema = doc.validator({"$ref": "#/components/schemas/Error"})

    template, ops, params = doc.route(path)
    if (template is None or method.lower() not in ops) and status == 401:
        # A token asked for before the route is looked at.
        if parsed is None or first_error(error_schema, parsed):
            faults.append("the answer is no `Error`")
        return faults
    if template is None or method.lower() not in ops:
        if template is None:
            if status != 404:
                faults.append(f"a path the document does not have answered {status}, not 404")
        else:
            if status != 405:
                faults.append(f"{method} {template} is not in the document and answered {status}, not 405")
            allow = {m.strip().upper() for m in headers.get("allow", "").split(",") if m.strip()}
            if allow != {m.upper() for m in ops}:
                faults.append(f"405 Allow {sorted(allow)}, the document has {sorted(m.upper() for m in ops)}")
        if parsed is None or first_error(error_schema, parsed):
            faults.append("the answer is no `Error`")
        return faults

    op = ops[method.lower()]
    seen.add((method, template, str(status)))
    responses = op.get("responses", {})
    answer = responses.get(str(status)) or responses.get("default")
    if answer is None:
        faults.append(f"{method} {template}: status {status} is not among {sorted(responses)}")
        return faults
    answer = doc.resolve(answer)
    content = answer.get("content", {})
    if content and media not in content:
        faults.append(f"{method} {template} {status}: content type {media!r} is not among {sorted(content)}")
    elif media == "application/json" and parsed is not None:
        fault = first_error(doc.validator(content[media]["schema"]), parsed)
        if fault:
            faults.append(f"{method} {template} {status}: the answer does not fit its schema: {fault}")
    for name, spec in answer.get("headers", {}).items():
        value = headers.get(name.lower())
        if value is None:
            if spec.get("required"):
                faults.append(f"{method} {template} {status}: no {name} header")
            continue
        schema = spec.get("schema", {})
        if schema.get("type") == "integer":
            try:
                value = int(value)
            except ValueError:
                faults.append(f"{name}: {value!r} is no integer")
                continue
        fault = first_error(doc.validator(schema), value)
        if fault:
            faults.append(f"{method} {template} {status}: header {name}: {fault}")

    # The request against the document's schemas.
    if status == 200:
        for spec, value in zip([p for p in op.get("parameters", []) if p["in"] == "path"], params):
            fault = first_error(doc.validator(spec["schema"]), value)
            if fault:
                faults.append(f"answered 200 with the path parameter {spec['name']} {value!r}: {fault}")
    if "requestBody" in op:
        request_media = media_type(ex.get("request_headers", {}).get("content-type"))
        request = doc.resolve(op["requestBody"])["content"].get(request_media)
        if request is not None:
            try:
                # A member given twice is no valid request (I-JSON).
                value = (
                    json.loads(ex["request_body"], object_pairs_hook=unique_members)
                    if ex.get("request_body_utf8", True)
                    else None
                )
                is_json = ex.get("request_body_utf8", True)
            except (TypeError, ValueError, RecursionError):
                value, is_json = None, False
            valid = is_json and first_error(doc.validator(request["schema"]), value) is None
            code = parsed.get("error", {}).get("code") if isinstance(parsed, dict) else None
            if 200 <= status < 300 and not valid:
                why = first_error(doc.validator(request["schema"]), value) if is_json else "not JSON"
                faults.append(f"answered {status} to a request its schema refuses: {why}")
            if status == 400 and code in ("malformed_json", "invalid_request") and valid:
                faults.append(f"refused ({code}) a request its schema takes")
            if code == "malformed_json" and is_json:
                faults.append("said malformed_json of a body that is JSON")
    return faults


def main(args):
    doc = Document(args[0])
    if args[1:] == ["--routes"]:
        for method, template, _ in doc.operations():
            print(f"{method} {template}")
        return 0
    cover = "--cover" in args[2:]
    seen, codes, failures, count = set(), set(), [], 0
    with open(args[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            ex = json.loads(line)
            count += 1
            for fault in check(doc, ex, seen, codes):
                failures.append(
                    f"line {n} ({ex.get('test')}, {ex.get('client')}): {ex['method']} {ex['path']} -> {ex['status']}: {fault}"
                )
    if cover:
        for method, template, op in doc.operations():
            for status in op.get("responses", {}):
                if (method, template, status) not in seen:
                    failures.append(f"never seen: {method} {template} {status}")
        enum = doc.doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        for code in enum:
            if code not in codes:
                failures.append(f"never seen: the error code {code}")
    for failure in failures:
        print(failure, file=sys.stderr)
    statuses = len(seen)
    print(f"{count} exchanges checked, {statuses} documented answers seen, {len(codes)} error codes, {len(failures)} faults")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
