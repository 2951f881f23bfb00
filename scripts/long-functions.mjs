// Lists the longest functions of the TypeScript sources (default src/): function declarations,
// methods, constructors, accessors, and function expressions or arrow functions of 10 lines or
// more, by lines from their first to their last line. A nested function counts in its parent too.
//
//   node scripts/long-functions.mjs [--max N] [--top N] [DIR...]
//
// With --max N it exits 1 when a function is longer than N lines.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const ts = createRequire(path.join(root, 'package.json'))('typescript');

const args = process.argv.slice(2);
let max = Infinity;
let top = 10;
const dirs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--max') max = Number(args[++i]);
  else if (args[i] === '--top') top = Number(args[++i]);
  else dirs.push(args[i]);
}
if (dirs.length === 0) dirs.push(path.join(root, 'src'));

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return files(p);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function nameOf(node, sf) {
  if (node.name) return node.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)))
    return parent.name.getText(sf);
  return '(anonymous)';
}

const found = [];
for (const file of dirs.flatMap(files)) {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      const named = ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node) || ts.isAccessor(node);
      if (named || lines >= 10) found.push({ where: `${path.relative(root, file)}:${first + 1}`, name: nameOf(node, sf), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
found.sort((a, b) => b.lines - a.lines);
for (const f of found.slice(0, top)) console.log(`${String(f.lines).padStart(5)}  ${f.name}  ${f.where}`);
const over = found.filter((f) => f.lines > max);
if (over.length) {
  console.error(`${over.length} function(s) longer than ${max} lines`);
  process.exit(1);
}
