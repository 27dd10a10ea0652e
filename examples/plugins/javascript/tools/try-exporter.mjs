#!/usr/bin/env node
// Runs an exporter component outside Pharos, to check it before loading it: calls
// `configure` with a configuration and `collect` a few times, and prints what it returned
// in the Prometheus text format. Works for a component in any language.
//
//   node examples/plugins/javascript/tools/try-exporter.mjs COMPONENT.wasm CONFIG.json [COLLECTS]
//
// CONFIG.json is the plugin's `config` object alone (what Pharos passes to `configure`);
// `-` reads it from standard input. Exits 1 when configure or collect return an error.
//
// How: jco transpiles the component into an ES module plus core wasm files (cached under
// examples/plugins/javascript/build/try/), which Node runs with jco's WASI shim. That shim
// is not Pharos's sandbox: it grants the plugin the real clock, random and stdio; Pharos
// itself denies everything but what the plugin's configuration allows.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const jsDir = resolve(here, '..');

const [wasmArg, configArg, collectsArg = '2'] = process.argv.slice(2);
if (!wasmArg || !configArg) {
  console.error('usage: try-exporter.mjs COMPONENT.wasm CONFIG.json|- [COLLECTS]');
  process.exit(2);
}
const wasm = resolve(wasmArg);
const configText = configArg === '-' ? readFileSync(0, 'utf8') : readFileSync(configArg, 'utf8');
const collects = Number.parseInt(collectsArg, 10);

// Transpile once per distinct component (keyed by its hash).
const bytes = readFileSync(wasm);
const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
const name = basename(wasm, '.wasm');
const outDir = join(jsDir, 'build', 'try', `${name}-${hash}`);
if (!existsSync(join(outDir, `${name}.js`))) {
  mkdirSync(outDir, { recursive: true });
  // The host side of the `log` import: print each line with its level.
  writeFileSync(
    join(outDir, 'host-log.js'),
    'export function log(level, message) { console.error(`[plugin ${level}] ${message}`); }\n',
  );
  execFileSync(
    join(jsDir, 'node_modules', '.bin', 'jco'),
    ['transpile', wasm, '--quiet', '--name', name, '-o', outDir,
      '--map', 'pharos:plugin/log@0.1.0=./host-log.js'],
    { stdio: 'inherit' },
  );
}
const { exporterApi } = await import(pathToFileURL(join(outDir, `${name}.js`)).href);

// A `result` error arrives as a thrown ComponentError whose payload is the plugin-error.
function describe(e) {
  const p = e && e.payload;
  return p && p.tag ? `${p.tag}: ${p.val}` : String(e);
}

function fmt(v) {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels, extra = []) {
  const all = [...labels, ...extra];
  if (all.length === 0) return '';
  const esc = (s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `{${all.map((l) => `${l.name}="${esc(l.value)}"`).join(',')}}`;
}

function render(families) {
  const lines = [];
  for (const f of families) {
    const type = f.points.tag;
    lines.push(`# HELP ${f.name} ${f.help}`);
    lines.push(`# TYPE ${f.name} ${type}`);
    if (f.unit !== undefined) lines.push(`# UNIT ${f.name} ${f.unit}`);
    for (const p of f.points.val) {
      const ts = p.timestamp !== undefined ? ` ${p.timestamp}` : '';
      if (type === 'histogram') {
        for (const b of p.buckets) {
          lines.push(`${f.name}_bucket${labelText(p.labels, [{ name: 'le', value: fmt(b.upperBound) }])} ${b.cumulativeCount}${ts}`);
        }
        if (!p.buckets.some((b) => b.upperBound === Infinity)) {
          lines.push(`${f.name}_bucket${labelText(p.labels, [{ name: 'le', value: '+Inf' }])} ${p.count}${ts}`);
        }
        lines.push(`${f.name}_sum${labelText(p.labels)} ${fmt(p.sum)}${ts}`);
        lines.push(`${f.name}_count${labelText(p.labels)} ${p.count}${ts}`);
      } else if (type === 'summary') {
        for (const q of p.quantiles) {
          lines.push(`${f.name}${labelText(p.labels, [{ name: 'quantile', value: fmt(q.quantile) }])} ${fmt(q.value)}${ts}`);
        }
        lines.push(`${f.name}_sum${labelText(p.labels)} ${fmt(p.sum)}${ts}`);
        lines.push(`${f.name}_count${labelText(p.labels)} ${p.count}${ts}`);
      } else {
        lines.push(`${f.name}${labelText(p.labels)} ${fmt(p.value)}${ts}`);
      }
    }
  }
  return lines.join('\n');
}

try {
  exporterApi.configure(configText);
} catch (e) {
  console.log(`configure failed: ${describe(e)}`);
  process.exit(1);
}
console.log('configure: ok');
for (let i = 1; i <= collects; i++) {
  let families;
  try {
    families = exporterApi.collect();
  } catch (e) {
    console.log(`collect ${i} failed: ${describe(e)}`);
    process.exit(1);
  }
  console.log(`--- collect ${i}: ${families.length} families`);
  console.log(render(families));
}
