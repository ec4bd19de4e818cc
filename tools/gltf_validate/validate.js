#!/usr/bin/env node
// Validates a .glb with the Khronos glTF validator (npm gltf-validator) and prints one JSON line with the
// report's issue counts, then one line per error/warning. Exit code: 0 clean (warnings allowed), 1 errors,
// 2 the file could not be read or validated.
//   node tools/gltf_validate/validate.js FILE.glb
'use strict';
const fs = require('fs');
const validator = require('gltf-validator');

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.js FILE.glb');
  process.exit(2);
}
let bytes;
try {
  bytes = new Uint8Array(fs.readFileSync(file));
} catch (e) {
  console.error(`cannot read ${file}: ${e.message}`);
  process.exit(2);
}
const severities = ['error', 'warning', 'info', 'hint'];
validator.validateBytes(bytes, {maxIssues: 100}).then((report) => {
  const issues = report.issues;
  console.log(JSON.stringify({
    file,
    validator: report.validatorVersion,
    numErrors: issues.numErrors,
    numWarnings: issues.numWarnings,
    numInfos: issues.numInfos,
    numHints: issues.numHints,
  }));
  for (const m of issues.messages) {
    console.log(`${severities[m.severity] || m.severity} ${m.code} ${m.pointer || ''} ${m.message}`);
  }
  process.exit(issues.numErrors > 0 ? 1 : 0);
}, (error) => {
  console.error(`validation failed: ${error}`);
  process.exit(2);
});
