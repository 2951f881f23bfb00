#!/usr/bin/env node
// scripts/bench-table.mjs LABEL=FILE... — one Markdown table of several `npm run bench` results
// (bench/results/latest.json, e.g. from `scripts/matrix.sh --bench`): a row per target, a column
// per environment with the figure and its ratio to the baseline measured in the same run.
//   node scripts/bench-table.mjs "Debian 12, PG 15, Node 18=a.json" "sid, PG 18, Node 24=b.json"
import { readFileSync } from 'node:fs';

const runs = process.argv.slice(2).map((arg) => {
  const at = arg.lastIndexOf('=');
  if (at <= 0) throw new Error(`expected LABEL=FILE, got ${arg}`);
  return { label: arg.slice(0, at), data: JSON.parse(readFileSync(arg.slice(at + 1), 'utf8')) };
});
if (runs.length === 0) {
  console.error('usage: bench-table.mjs LABEL=latest.json...');
  process.exit(2);
}

const ids = [];
const what = new Map();
for (const r of runs) {
  for (const t of r.data.targets) {
    if (!what.has(t.id)) {
      ids.push(t.id);
      what.set(t.id, `${t.what} (target ${t.dir} ${t.target})`);
    }
  }
}

const cell = (t) => {
  if (!t) return 'n/a';
  if (typeof t.ratio !== 'number') return t.figure;
  const fmt = (r) => (r >= 10 ? r.toFixed(1) : r.toFixed(2));
  // the spread the bench printed beside the ratio: the fetch rows' pairings, SELECT 1's middle half
  const spread = [];
  if (typeof t.paired === 'number') spread.push(`run by run ${fmt(t.paired)}`);
  if (typeof t.worst === 'number') spread.push(`worst ${fmt(t.worst)}`);
  if (Array.isArray(t.middle)) spread.push(`middle half ${fmt(t.middle[0])}–${fmt(t.middle[1])}`);
  return `${t.figure} (${[fmt(t.ratio), ...spread].join(', ')}${t.met === false ? ', **not met**' : ''})`;
};

const lines = [
  `| # | what | ${runs.map((r) => r.label).join(' | ')} |`,
  `|---|---|${runs.map(() => '---').join('|')}|`,
];
for (const id of ids) {
  const cells = runs.map((r) => cell(r.data.targets.find((t) => t.id === id)));
  lines.push(`| ${id} | ${what.get(id)} | ${cells.join(' | ')} |`);
}
console.log(lines.join('\n'));
