"""A FHIR server's transaction endpoint, as small as the push test needs (tests/e2e/fhir.rs,
issue #18): POST /fhir takes a `transaction` Bundle, checks it with the FHIR model classes of
fhir.resources (R4B), applies its conditional updates (`PUT Type?identifier=system|value`)
to a store kept in a JSON file — so it survives being killed and started again, as a real
server's database does — and answers a `transaction-response`. GET /state tells what it holds:
how many resources of each type, and how many conditional updates created one."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fhir.resources.R4B import get_fhir_model_class

port, state_file = int(sys.argv[1]), sys.argv[2]
state = {"resources": {}, "created": 0, "updated": 0, "bundles": 0}
if os.path.exists(state_file):
    with open(state_file, encoding="utf-8") as f:
        state = json.load(f)


def save():
    tmp = state_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, state_file)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        kinds = {}
        for key in state["resources"]:
            kind = key.split("?", 1)[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        self.answer(200, {"types": kinds, "created": state["created"],
                          "updated": state["updated"], "bundles": state["bundles"],
                          "keys": sorted(state["resources"])})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            get_fhir_model_class("Bundle").model_validate(body)
            assert body["type"] == "transaction"
        except Exception as e:  # refused: a real server answers 400 with an OperationOutcome
            self.answer(400, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "invalid", "diagnostics": str(e)[:500]}]})
            return
        out = []
        for e in body["entry"]:
            url = e["request"]["url"]
            assert e["request"]["method"] == "PUT" and "?identifier=" in url, url
            if url in state["resources"]:
                state["updated"] += 1
                status = "200 OK"
            else:
                state["created"] += 1
                status = "201 Created"
            state["resources"][url] = e["resource"]
            out.append({"response": {"status": status}})
        state["bundles"] += 1
        save()
        self.answer(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": out})


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
