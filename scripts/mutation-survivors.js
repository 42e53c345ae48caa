#!/usr/bin/env node
'use strict';
/*
 * Reads Stryker's JSON report (npm run mutate writes reports/mutation/mutation.json) and prints
 *  1. the mutation score per file and per folder (same formula as Stryker: detected = killed +
 *     timeout; score = detected / (detected + survived + no coverage); "covered" leaves out the
 *     mutants no test reached; compile and runtime errors and ignored mutants do not count), and
 *  2. every surviving and not-covered mutant, one a line:
 *       file:line  mutator  original -> replacement   [status]
 *
 * usage: node scripts/mutation-survivors.js [--report FILE] [--scores-only | --mutants-only] [FILTER...]
 * A FILTER keeps the files whose path contains it (e.g. checks/ or core/policy.ts).
 */
const fs = require('node:fs');
const path = require('node:path');

// piped into head: stop quietly
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const args = process.argv.slice(2);
let report = path.join(__dirname, '..', 'reports', 'mutation', 'mutation.json');
let scores = true;
let mutants = true;
const filters = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--report') report = args[++i];
  else if (a === '--scores-only') mutants = false;
  else if (a === '--mutants-only') scores = false;
  else if (a === '-h' || a === '--help') {
    process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 12).join('\n') + '\n');
    process.exit(0);
  } else filters.push(a);
}

const data = JSON.parse(fs.readFileSync(report, 'utf8'));
const files = Object.keys(data.files)
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no file in ${report} matches ${filters.join(' ')}\n`);
  process.exit(1);
}

function count(list) {
  const c = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, errors: 0, ignored: 0, pending: 0 };
  for (const m of list) {
    if (m.status === 'Killed') c.killed++;
    else if (m.status === 'Timeout') c.timeout++;
    else if (m.status === 'Survived') c.survived++;
    else if (m.status === 'NoCoverage') c.noCoverage++;
    else if (m.status === 'CompileError' || m.status === 'RuntimeError') c.errors++;
    else if (m.status === 'Ignored') c.ignored++;
    else c.pending++;
  }
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  c.score = valid ? (100 * detected) / valid : NaN;
  c.covered = detected + c.survived ? (100 * detected) / (detected + c.survived) : NaN;
  return c;
}

if (scores) {
  const rows = [];
  const folders = new Map();
  for (const f of files) {
    const ms = data.files[f].mutants;
    rows.push([f, count(ms)]);
    const dir = path.posix.dirname(f) + '/';
    folders.set(dir, (folders.get(dir) ?? []).concat(ms));
  }
  const all = files.flatMap((f) => data.files[f].mutants);
  const table = [['All files', count(all)], ...[...folders].sort().map(([d, ms]) => [d, count(ms)]), ...rows];
  const w = Math.max(...table.map(([n]) => n.length));
  const pct = (x) => (Number.isNaN(x) ? 'n/a' : x.toFixed(2)).padStart(7);
  const n = (x) => String(x).padStart(8);
  process.stdout.write(`${'file'.padEnd(w)} |   score | covered |   killed |  timeout | survived |   no cov |   errors\n`);
  for (const [name, c] of table) {
    process.stdout.write(`${name.padEnd(w)} | ${pct(c.score)} | ${pct(c.covered)} | ${n(c.killed)} | ${n(c.timeout)} | ${n(c.survived)} | ${n(c.noCoverage)} | ${n(c.errors)}\n`);
  }
  if (mutants) process.stdout.write('\n');
}

const oneLine = (s, max = 70) => {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

if (mutants) {
  for (const f of files) {
    const { source, mutants: ms } = data.files[f];
    const lines = source.split('\n');
    // locations are 1-based lines and 1-based columns; the end column is exclusive
    const text = ({ start, end }) => {
      if (start.line === end.line) return lines[start.line - 1].slice(start.column - 1, end.column - 1);
      const parts = [lines[start.line - 1].slice(start.column - 1)];
      for (let l = start.line; l < end.line - 1; l++) parts.push(lines[l]);
      parts.push(lines[end.line - 1].slice(0, end.column - 1));
      return parts.join('\n');
    };
    const left = ms
      .filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')
      .sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column);
    for (const m of left) {
      const status = m.status === 'NoCoverage' ? '  [no coverage]' : '';
      const stat = m.static ? ' [static]' : '';
      process.stdout.write(`${f}:${m.location.start.line}  ${m.mutatorName}  ${oneLine(text(m.location))} -> ${oneLine(m.replacement ?? '')}${status}${stat}\n`);
    }
  }
}
