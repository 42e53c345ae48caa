/**
 * The CLI never loads a plugin adapter (plugins/shield.<name>): an adapter is the plugin itself,
 * with its hooks and everything it imports. The CLI takes what it needs (the config schemas) from
 * the plugins/shield/checks and plugins/shield/core modules instead.
 *
 * One command is the exception by design: `explain` runs the instance's shield plugins in-process
 * (bin/explain*.ts). bin/haraka-shield.ts loads it only when that command runs, never at start, so
 * no other command pulls it in.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { CONFIG_SCHEMAS } from '../../bin/haraka-shield';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin');
const PLUGINS = path.join(ROOT, 'plugins');
const ADAPTER = /^shield\.[a-z0-9_-]+$/;

/** the adapters this package ships: plugins/shield.<name>.ts */
const adapters = fs
  .readdirSync(PLUGINS)
  .filter((f) => /^shield\.[a-z0-9_-]+\.ts$/.test(f) && !f.endsWith('.d.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();

/** explain runs the plugins, so it loads the adapters (by the names config/plugins gives) */
const RUNS_PLUGINS = /^explain(-[a-z]+)?\.ts$/;

const binSources = fs
  .readdirSync(BIN)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !RUNS_PLUGINS.test(f))
  .map((f) => path.join(BIN, f));

interface ModuleRef {
  line: number;
  /** the module specifier, or null when it is not a string literal (a computed require/import) */
  spec: string | null;
  text: string;
}

/** every import, export ... from, import = require, require() and import() of a source file */
function moduleRefs(file: string): ModuleRef[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const refs: ModuleRef[] = [];
  const add = (node: ts.Node, arg: ts.Node | undefined): void => {
    const spec = arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) ? arg.text : null;
    refs.push({ line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, spec, text: node.getText(sf).slice(0, 120) });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      add(node, node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

/** the import declarations at the top level of a file: what loads when the module loads */
function staticImports(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  return sf.statements.filter(ts.isImportDeclaration).filter((d) => !d.importClause?.isTypeOnly).map((d) => (d.moduleSpecifier as ts.StringLiteral).text);
}

/** the .ts file a relative specifier names, or null for a package or a missing file */
function resolveLocal(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec).replace(/\.js$/, '');
  for (const f of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(f)) return f;
  return null;
}

function isAdapter(file: string): boolean {
  return path.dirname(file) === PLUGINS && ADAPTER.test(path.basename(file).replace(/\.(ts|js)$/, ''));
}

const rel = (f: string): string => path.relative(ROOT, f);

describe('the CLI loads no plugin adapter', () => {
  it('finds the sources it checks', () => {
    assert.ok(binSources.length >= 2, `bin sources: ${binSources.map(rel).join(', ')}`);
    assert.ok(adapters.length >= 5, `adapters: ${adapters.join(', ')}`);
  });

  it('bin/*.ts import or require no plugins/shield.<name> adapter, and no module by a computed name', () => {
    const bad: string[] = [];
    for (const file of binSources) {
      for (const ref of moduleRefs(file)) {
        // a computed name (the old `require(path.join(PKG_ROOT, 'plugins', `${name}.js`))`) can load anything
        if (ref.spec === null) bad.push(`${rel(file)}:${ref.line} computed module name: ${ref.text}`);
        else if (/(^|\/)plugins\/shield\.[a-z0-9_-]+(\.js|\.ts)?$/.test(ref.spec)) bad.push(`${rel(file)}:${ref.line} ${ref.text}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('no module the CLI imports, directly or through others, is an adapter', () => {
    const seen = new Set<string>();
    const via = new Map<string, string>();
    const queue = [...binSources];
    const bad: string[] = [];
    while (queue.length) {
      const file = queue.shift() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      if (isAdapter(file)) {
        const chain = [file];
        for (let f = via.get(file); f; f = via.get(f)) chain.unshift(f);
        bad.push(chain.map(rel).join(' -> '));
        continue;
      }
      for (const ref of moduleRefs(file)) {
        const next = ref.spec === null ? null : resolveLocal(file, ref.spec);
        if (next && RUNS_PLUGINS.test(path.basename(next))) continue;
        if (next && !seen.has(next)) {
          if (!via.has(next)) via.set(next, file);
          queue.push(next);
        }
      }
    }
    assert.ok(seen.has(path.join(PLUGINS, 'shield', 'checks', 'relay-config.ts')), 'the walk reaches the checks modules');
    assert.deepEqual(bad, []);
  });

  it('explain, which runs the plugins, is loaded only when that command runs', () => {
    const cli = path.join(BIN, 'haraka-shield.ts');
    assert.deepEqual(staticImports(cli).filter((m) => /explain/.test(m)), []);
    for (const file of binSources) {
      if (file === cli) continue;
      assert.deepEqual(moduleRefs(file).filter((r) => r.spec !== null && /(^|\/)explain/.test(r.spec)).map((r) => `${rel(file)}:${r.line}`), []);
    }
  });

  it('`config` has a schema for shield.ini and every adapter, the same one the adapter exports', () => {
    assert.deepEqual(
      CONFIG_SCHEMAS.map(([file]) => file),
      ['shield.ini', ...adapters.map((n) => `${n}.ini`)],
    );
    for (const name of adapters) {
      // the test may load the adapters; the CLI may not
      const mod = require(path.join(PLUGINS, name)) as { SCHEMA?: unknown };
      const entry = CONFIG_SCHEMAS.find(([file]) => file === `${name}.ini`);
      assert.ok(mod.SCHEMA, `${name} exports SCHEMA`);
      assert.equal(entry?.[1], mod.SCHEMA, `${name}.ini: the CLI's schema is the adapter's`);
    }
  });
});
