// A test agent written as a Flue TypeScript agent module.
import { createAgent, defineAgentProfile, defineTool, host, HostError, Type } from '@flue/runtime';

interface Context {
  id: string;
  env: Record<string, string>;
}

const base = defineAgentProfile({
  instructions: 'Answer from the profile.',
  tools: [
    defineTool({
      name: 'shared',
      description: 'A profile tool.',
      parameters: Type.Object({}),
      execute: async () => 'from the profile',
    }),
  ],
});

export default createAgent(async ({ id }: Context) => ({
  profile: base,
  model: 'anthropic/claude-haiku-4-5',
  thinkingLevel: 'low',
  tools: [
    defineTool({
      name: 'whoami',
      description: "This instance's id.",
      parameters: Type.Object({}),
      execute: async () => id,
    }),
    defineTool({
      name: 'fail',
      description: 'Throws.',
      parameters: Type.Object({}),
      execute: async (): Promise<string> => {
        throw new Error('the ticket system is down');
      },
    }),
    defineTool({
      name: 'forecast',
      description: 'Returns a JSON value.',
      parameters: Type.Object({ city: Type.Optional(Type.String()) }),
      execute: async ({ city }: { city?: string }) => ({ city: city ?? '?', forecast: 'sunny' }),
    }),
    defineTool({
      name: 'remember',
      description: 'Stores a value.',
      parameters: Type.Object({ key: Type.String(), value: Type.String() }),
      execute: async ({ key, value }: { key: string; value: string }) => {
        host.setState(key, value);
        return 'stored';
      },
    }),
    defineTool({
      name: 'recall',
      description: 'Reads a stored value.',
      parameters: Type.Object({ key: Type.String() }),
      execute: async ({ key }: { key: string }) => host.getState(key) ?? 'nothing',
    }),
    defineTool({
      name: 'ask',
      description: 'Asks the model.',
      parameters: Type.Object({ question: Type.String() }),
      execute: async ({ question }: { question: string }) => {
        const answer = host.complete(question, { system: 'Answer briefly.' });
        return `${answer.text} (${answer.model}, ${answer.usage.outputTokens} tokens out)`;
      },
    }),
    defineTool({
      name: 'bad_model',
      description: 'Asks a model that is not there.',
      parameters: Type.Object({}),
      execute: async () => {
        try {
          host.complete('hi', { model: 'nowhere/none' });
        } catch (e) {
          if (e instanceof HostError) return `${e.kind}: ${e.message}`;
          throw e;
        }
        return 'no error';
      },
    }),
    defineTool({
      name: 'spin',
      description: 'Loops forever.',
      parameters: Type.Object({}),
      execute: async () => {
        for (;;) {}
      },
    }),
  ],
}));
