// Write Flue agents in TypeScript or JavaScript.
//
// An agent is one module in `agents/` whose default export is `createAgent(init)`:
//
//   import { createAgent, defineTool } from '@flue/runtime';
//
//   export default createAgent((ctx) => ({
//     model: 'anthropic/claude-haiku-4-5',
//     instructions: 'Help the customer with their ticket.',
//     tools: [defineTool({
//       name: 'ticket_status',
//       description: 'Return the status of the current ticket.',
//       parameters: { type: 'object', properties: {} },
//       execute: async () => `ticket ${ctx.id}: open`,
//     })],
//   }));
//
// `flue build` bundles it with this module (imported as '@flue/runtime' or 'flue') and
// compiles it to a component of the `flue:agent/agent` world (wit/agent.wit).

import { complete as witComplete } from 'flue:agent/model@0.2.0';
import { history as witHistory, stateGet, stateSet } from 'flue:agent/session@0.2.0';
import { log as witLog } from 'flue:agent/log@0.2.0';

export { Type } from '@sinclair/typebox';

const THINKING_LEVELS = ['off', 'minimal', 'low', 'medium', 'high'];
const SANDBOXES = ['none', 'virtual', 'local'];
const PROFILE_KEYS = [
  'name', 'description', 'model', 'instructions', 'skills', 'tools', 'subagents',
  'thinkingLevel', 'compaction', 'agent',
];
const CONFIG_KEYS = [
  'profile', 'name', 'description', 'model', 'instructions', 'thinkingLevel', 'tools',
  'skills', 'subagents', 'compaction', 'sandbox', 'cwd', 'persist',
];

/** The agent: `init(ctx)` (may be async) returns its configuration for instance `ctx.id`. */
export function createAgent(init) {
  if (typeof init !== 'function') {
    throw new TypeError('createAgent(init) takes a function: (ctx) => config');
  }
  return Object.freeze({ __flueCreatedAgent: true, initialize: init });
}

/** A tool: `{ name, description, parameters (JSON Schema), execute(args) }`. */
export function defineTool(tool) {
  if (!tool || typeof tool.name !== 'string' || !tool.name) {
    throw new TypeError('defineTool needs a `name`');
  }
  if (typeof tool.execute !== 'function') {
    throw new TypeError(`tool '${tool.name}' needs an \`execute(args)\` function`);
  }
  return Object.freeze({ ...tool });
}

/** A partial configuration several agents share, or a subagent. */
export function defineAgentProfile(profile) {
  onlyKeys(profile, PROFILE_KEYS, 'defineAgentProfile()');
  return profile;
}

/** The model's file tools see a sandbox on the host's disk (`flue.toml` binds it). */
export function local() {
  return 'local';
}

/** The model's file tools see an in-memory file tree, kept with the session. */
export function virtual() {
  return 'virtual';
}

export const sandboxes = Object.freeze({ local, virtual });

/** A failed host call: `kind` is 'invalid', 'refused' or 'unavailable'. */
export class HostError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.name = 'HostError';
    this.kind = kind;
  }
}

/** Host calls a tool may make. Each throws a HostError when the host refuses. */
export const host = Object.freeze({
  /** Asks the model one question; `model` defaults to the agent's own. */
  complete(prompt, { system, model } = {}) {
    const answer = hostCall(() => witComplete({ prompt, system, model }));
    const usage = answer.usage;
    return {
      text: answer.text,
      model: answer.model,
      usage: { inputTokens: Number(usage.inputTokens), outputTokens: Number(usage.outputTokens) },
    };
  },
  /** The named session's messages, oldest first: `{ role, content, ... }`. */
  history(session = 'default') {
    return hostCall(() => witHistory(session)).map(message);
  },
  /** A value this instance stored with `setState`, or undefined. */
  getState(key) {
    return hostCall(() => stateGet(key));
  },
  /** Stores a value for this instance. */
  setState(key, value) {
    hostCall(() => stateSet(key, String(value)));
  },
  /** A line in the host's log, tagged with agent, instance and session. */
  log(message, level = 'info') {
    witLog(level, String(message));
  },
});

function hostCall(call) {
  try {
    return call();
  } catch (e) {
    const failure = e && e.payload;
    if (failure && typeof failure.tag === 'string') throw new HostError(failure.tag, failure.val);
    throw e;
  }
}

function message(m) {
  switch (m.tag) {
    case 'assistant':
      return {
        role: 'assistant',
        content: m.val.text,
        toolCalls: m.val.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: JSON.parse(c.arguments) })),
      };
    case 'tool':
      return { role: 'tool', content: m.val.content, toolCallId: m.val.toolCallId, name: m.val.name, isError: m.val.isError };
    default:
      return { role: m.tag, content: m.val };
  }
}

// ---- Used by the component's exports (the build's entry module), not by authors. ----

const handlers = new Map();

/** `create`: runs the agent's init and returns the WIT `agent-config`. */
export async function __create(agent, ctx) {
  if (!agent || !agent.__flueCreatedAgent) {
    throw new TypeError('the agent module must `export default createAgent(...)`');
  }
  const context = Object.freeze({
    agent: ctx.agent,
    id: ctx.id,
    env: Object.freeze(Object.fromEntries(ctx.env)),
    payload: ctx.payload === undefined ? undefined : parsePayload(ctx.payload),
  });
  const config = (await agent.initialize(context)) ?? {};
  onlyKeys(config, CONFIG_KEYS, 'createAgent() init');
  handlers.clear();
  return {
    profile: config.profile ? profile(config.profile) : undefined,
    model: model(config.model),
    instructions: str(config.instructions, 'instructions'),
    thinkingLevel: thinking(config.thinkingLevel),
    tools: tools(config.tools),
    skills: skills(config.skills),
    subagents: (config.subagents ?? []).map(subagent),
    compaction: compaction(config.compaction ?? config.profile?.compaction),
    sandbox: sandbox(config.sandbox),
    cwd: str(config.cwd, 'cwd'),
    persist: config.persist === undefined ? undefined : Boolean(config.persist),
  };
}

/** `call-tool`: runs a tool registered by the last `create`; returns its text. */
export async function __callTool(name, args) {
  const tool = handlers.get(name);
  if (!tool) throw new Error(`this agent has no tool named '${name}'`);
  const result = await tool.execute(args.trim() ? JSON.parse(args) : {});
  return typeof result === 'string' ? result : JSON.stringify(result ?? null);
}

/** An error's text for the host: `Name: message`, or a host call's failure as sent. */
export function __describe(e) {
  if (e && typeof e === 'object' && 'payload' in e && !(e instanceof Error)) {
    return typeof e.payload === 'string' ? e.payload : JSON.stringify(e.payload);
  }
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

function parsePayload(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function onlyKeys(object, allowed, where) {
  if (object === null || typeof object !== 'object') {
    throw new TypeError(`${where} must return an object`);
  }
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}: unknown field '${key}' (known: ${allowed.join(', ')})`);
    }
  }
}

function model(value) {
  if (value === undefined || value === null || value === false || value === '') return undefined;
  return str(value, 'model');
}

// The component carries strings only where WIT says string: anything else would trap.
function str(value, field) {
  if (value === undefined || value === null || typeof value === 'string') return value ?? undefined;
  throw new TypeError(`${field} must be a string, not ${typeof value} ${JSON.stringify(value)}`);
}

function u32(value, field) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
    throw new TypeError(`${field} must be a whole number from 0 to 2**32 - 1, not ${value}`);
  }
  return value;
}

function thinking(level) {
  if (level === undefined || level === null) return undefined;
  if (level === 'xhigh') return 'high';
  if (!THINKING_LEVELS.includes(level)) {
    throw new TypeError(`thinkingLevel '${level}' is not one of ${THINKING_LEVELS.join(', ')}`);
  }
  return level;
}

function sandbox(value) {
  if (value === undefined || value === null) return undefined;
  if (value === false) return 'none';
  if (!SANDBOXES.includes(value)) {
    throw new TypeError(`sandbox must be local(), virtual() or false, not ${String(value)}`);
  }
  return value;
}

function compaction(value) {
  if (value === undefined || value === null) return undefined;
  if (value === false) return { enabled: false };
  onlyKeys(value, ['enabled', 'maxTokens', 'keepRecent', 'contextWindowTokens', 'reserveTokens'], 'compaction');
  let maxTokens = value.maxTokens;
  if (maxTokens === undefined && value.contextWindowTokens !== undefined) {
    maxTokens = Math.max(value.contextWindowTokens - (value.reserveTokens ?? 16384), 0);
  }
  return {
    enabled: Boolean(value.enabled ?? true),
    maxTokens: u32(maxTokens, 'compaction maxTokens'),
    keepRecent: u32(value.keepRecent, 'compaction keepRecent'),
  };
}

function tools(list) {
  return (list ?? []).map((tool, index) => {
    if (!tool || typeof tool.name !== 'string' || !tool.name) {
      throw new TypeError(`tools[${index}] must come from defineTool({ name, ... })`);
    }
    handlers.set(tool.name, tool);
    return {
      name: tool.name,
      description: str(tool.description, `tool '${tool.name}' description`) ?? '',
      parameters: JSON.stringify(tool.parameters ?? { type: 'object', properties: {} }),
    };
  });
}

function skills(list) {
  return (list ?? []).map((s, index) => {
    if (!s || typeof s.name !== 'string' || !s.name) throw new TypeError(`skills[${index}] needs a name`);
    return {
      name: s.name,
      description: str(s.description, `skill '${s.name}' description`) ?? '',
      body: str(s.body ?? s.content, `skill '${s.name}' body`) ?? '',
    };
  });
}

function profile(p) {
  onlyKeys(p, PROFILE_KEYS, 'profile');
  return {
    name: str(p.name, 'profile name'),
    model: model(p.model),
    instructions: str(p.instructions, 'profile instructions'),
    thinkingLevel: thinking(p.thinkingLevel),
    tools: tools(p.tools),
    skills: skills(p.skills),
    subagents: (p.subagents ?? []).map(subagent),
  };
}

function subagent(p) {
  onlyKeys(p, PROFILE_KEYS, `subagent '${p && p.name}'`);
  if (typeof p.name !== 'string' || !p.name) throw new TypeError('every subagent needs a name');
  return {
    name: p.name,
    description: str(p.description, 'subagent description') ?? '',
    agent: str(p.agent, 'subagent agent'),
    model: model(p.model),
    instructions: str(p.instructions, 'subagent instructions'),
    thinkingLevel: thinking(p.thinkingLevel),
    tools: tools(p.tools),
    skills: skills(p.skills),
  };
}
