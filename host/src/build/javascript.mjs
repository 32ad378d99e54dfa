// The two steps of building a TypeScript or JavaScript agent:
//   node javascript.mjs bundle <agent file> <sdk folder> <bundle.js>
//     esbuild strips the types and bundles the agent, what it imports, and the SDK
//     (imported as '@flue/runtime' or 'flue') into one ES module; errors go to stderr
//     as `file:line:column: error: message`.
//   node javascript.mjs componentize <bundle.js> <wit folder> <out.wasm>
//     componentize-js compiles the bundle for the `flue:agent/agent` world with every
//     optional engine feature off, so the component imports nothing but that world.

import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [step, ...args] = process.argv.slice(2);
const nodeModules = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules');

if (step === 'bundle') {
  const [agentFile, sdk, bundle] = args;
  try {
    await build({
      entryPoints: [path.join(sdk, 'entry.js')],
      outfile: bundle,
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
} else if (step === 'componentize') {
  const [bundle, wit, out] = args;
  try {
    const { component } = await componentize({
      sourcePath: bundle,
      witPath: wit,
      worldName: 'agent',
      disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
    });
    await writeFile(out, component);
  } catch (e) {
    console.error(`error: the agent did not compile: ${e.message ?? e}`);
    process.exit(1);
  }
} else {
  console.error(`unknown step '${step}': use bundle or componentize`);
  process.exit(2);
}
