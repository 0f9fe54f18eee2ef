// Runs a ViewDefinition over an NDJSON file with Medplum's SQL on FHIR runner
// (`evalSqlOnFhir` of @medplum/core), a resource at a time as `meridian view run` does, and
// writes the rows as NDJSON: the peer bench/analytics/run.sh measures beside Meridian's.
//
//   node medplum.mjs VIEW.json RESOURCES.ndjson OUT.ndjson
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { evalSqlOnFhir } from '@medplum/core';

const [viewPath, inputPath, outputPath] = process.argv.slice(2);
if (!outputPath) {
  console.error('usage: node medplum.mjs VIEW.json RESOURCES.ndjson OUT.ndjson');
  process.exit(2);
}
const view = JSON.parse(readFileSync(viewPath, 'utf8'));
const out = createWriteStream(outputPath);
let buffered = [];
let resources = 0;
let rows = 0;
const lines = createInterface({ input: createReadStream(inputPath), crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  resources += 1;
  for (const row of evalSqlOnFhir(view, [JSON.parse(line)])) {
    buffered.push(JSON.stringify(row));
    rows += 1;
  }
  if (buffered.length >= 4096) {
    if (!out.write(buffered.join('\n') + '\n')) await new Promise((done) => out.once('drain', done));
    buffered = [];
  }
}
if (buffered.length) out.write(buffered.join('\n') + '\n');
await new Promise((done) => out.end(done));
console.error(`${rows} row(s) from ${resources} resource(s)`);
