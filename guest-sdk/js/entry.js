// The component's exports for a TypeScript or JavaScript agent: the author's module
// (bundled in as 'flue-agent-module') behind the `flue:agent/agent` world. Every error
// leaves as the export's `err` string; an `Error` thrown out of an export would trap.

import agent from 'flue-agent-module';
import { __callTool, __create, __describe } from 'flue';

export async function create(ctx) {
  try {
    return await __create(agent, ctx);
  } catch (e) {
    throw { payload: __describe(e) };
  }
}

export async function callTool(name, args) {
  try {
    return await __callTool(name, args);
  } catch (e) {
    throw { payload: __describe(e) };
  }
}
