// Builds one TypeScript or JavaScript agent into a component:
//   node javascript.mjs <agent file> <sdk folder> <wit folder> <out.wasm>
// esbuild strips the types and bundles the agent with the SDK (imported as
// '@flue/runtime' or 'flue'); componentize-js compiles the bundle for the
// `flue:agent/agent` world with every optional engine feature off, so the component
// imports nothing but that world. Errors go to stderr as `file:line:column: message`.

import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [agentFile, sdk, wit, out] = process.argv.slice(2);
const nodeModules = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules');
const bundled = out.replace(/\.wasm$/, '.js');

try {
  await build({
    entryPoints: [path.join(sdk, 'entry.js')],
    outfile: bundled,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    nodePaths: [nodeModules],
    alias: {
      'flue-agent-module': agentFile,
      '@flue/runtime': path.join(sdk, 'flue.js'),
      flue: path.join(sdk, 'flue.js'),
    },
    external: ['flue:agent/*'],
    logLevel: 'silent',
  });
} catch (e) {
  for (const m of e.errors ?? [{ text: String(e) }]) {
    const at = m.location;
    const where = at ? `${at.file}:${at.line}:${at.column + 1}: ` : '';
    console.error(`${where}error: ${m.text}${at ? `\n    ${at.lineText}` : ''}`);
  }
  process.exit(1);
}

try {
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: 'agent',
    disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
  });
  await writeFile(out, component);
} catch (e) {
  console.error(`error: ${agentFile} did not compile: ${e.message ?? e}`);
  process.exit(1);
}
