// Compile JSON Schemas with ajv in strict mode, and optionally validate objects against them.
//
//   node check-schemas.js SCHEMA.json... [--instances FILE]
//
// FILE maps a schema file's base name to a list of objects that must validate against it.
// Prints one JSON document: {"compiled": [...], "errors": {...}, "validated": n}; exits 1
// when a schema does not compile or an object does not validate. relay's schema tests run
// it: ajv shares no code with Python's jsonschema, so a schema both accept is one that
// consumers in other languages can load too.
"use strict";

const fs = require("fs");
const path = require("path");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const args = process.argv.slice(2);
const at = args.indexOf("--instances");
const instancesFile = at >= 0 ? args[at + 1] : null;
const schemaFiles = at >= 0 ? args.slice(0, at).concat(args.slice(at + 2)) : args;
const instances = instancesFile ? JSON.parse(fs.readFileSync(instancesFile, "utf8")) : {};

const result = { compiled: [], errors: {}, validated: 0 };
for (const file of schemaFiles) {
  const name = path.basename(file);
  // strict: unknown keywords, ignored keywords and dangling references are errors, not
  // warnings. Union types ("object" or "null") are standard JSON Schema: allowed.
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  let validate;
  try {
    validate = ajv.compile(JSON.parse(fs.readFileSync(file, "utf8")));
  } catch (error) {
    result.errors[name] = String(error.message || error);
    continue;
  }
  result.compiled.push(name);
  for (const [index, value] of (instances[name] || []).entries()) {
    if (validate(value)) {
      result.validated += 1;
    } else {
      const found = validate.errors.slice(0, 5).map((e) => `${e.instancePath || "(root)"}: ${e.message}`);
      result.errors[`${name}[${index}]`] = found.join("; ");
    }
  }
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(Object.keys(result.errors).length ? 1 : 0);
