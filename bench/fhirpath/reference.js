// Runs the same FHIRPath workload as the Rust bench (bench/fhirpath/src/main.rs) on the
// reference JavaScript engine, fhirpath.js, and prints the same figures.
//
// node reference.js WORKLOAD_JSON DATA_DIR [--bundles N] [--passes N]

'use strict';
const fs = require('fs');
const path = require('path');
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

const args = process.argv.slice(2);
const workloadFile = args[0];
const dataDir = args[1];
let limit = null;
let passes = 3;
let dump = null;
for (let i = 2; i < args.length; i++) {
  if (args[i] === '--bundles') limit = parseInt(args[++i], 10);
  else if (args[i] === '--passes') passes = Math.max(1, parseInt(args[++i], 10));
  else if (args[i] === '--dump') dump = args[++i];
}

// The same files in the same order as the Rust bench: sorted by file name.
let files = [];
for (const dir of ['bundles', 'bundles-over-4MiB']) {
  const full = path.join(dataDir, dir);
  if (!fs.existsSync(full)) continue;
  for (const name of fs.readdirSync(full)) {
    if (name.endsWith('.json')) files.push({ name, file: path.join(full, name) });
  }
}
files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
if (limit !== null) files = files.slice(0, limit);

const resources = [];
for (const { file } of files) {
  const bundle = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const entry of bundle.entry || []) {
    if (entry.resource) resources.push(entry.resource);
  }
}

const workload = JSON.parse(fs.readFileSync(workloadFile, 'utf8'));
const plans = {};
for (const [type, expressions] of Object.entries(workload)) {
  plans[type] = expressions.map((e) => fhirpath.compile(e, r4));
}

// --dump FILE: every evaluation's result as `resource-index expression-index JSON`, the
// format of the Rust bench's --dump, for comparing the two engines' answers.
if (dump !== null) {
  const lines = [];
  resources.forEach((resource, r) => {
    const plan = plans[resource.resourceType];
    if (!plan) return;
    plan.forEach((evaluate, e) => {
      let result;
      try {
        result = evaluate(resource);
      } catch (error) {
        result = 'error: ' + error.message;
      }
      lines.push(`${r} ${e} ${JSON.stringify(result)}`);
    });
  });
  fs.writeFileSync(dump, lines.join('\n') + '\n');
}

let best = Infinity;
let items = 0;
let errors = 0;
let evaluations = 0;
for (let pass = 0; pass < passes; pass++) {
  items = 0;
  errors = 0;
  evaluations = 0;
  const start = process.hrtime.bigint();
  for (const resource of resources) {
    const plan = plans[resource.resourceType];
    if (!plan) continue;
    for (const evaluate of plan) {
      evaluations++;
      try {
        items += evaluate(resource).length;
      } catch (e) {
        errors++;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.error(`pass ${pass + 1}: ${seconds.toFixed(3)} s`);
  best = Math.min(best, seconds);
}
console.log('engine: fhirpath.js ' + require('fhirpath/package.json').version + ' (Node ' + process.version + ')');
console.log(`resources: ${resources.length}`);
console.log(`evaluations: ${evaluations}`);
console.log(`result items: ${items}`);
console.log(`evaluation errors: ${errors}`);
console.log(`best pass seconds: ${best.toFixed(3)}`);
console.log(`resources per second: ${Math.round(resources.length / best)}`);
console.log(`evaluations per second: ${Math.round(evaluations / best)}`);
