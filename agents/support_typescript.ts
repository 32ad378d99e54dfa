// The support-ticket example in TypeScript, written as a Flue agent module: one
// instance per ticket, its id scoping both the instructions and the `ticket_status` tool.

import { createAgent, defineTool, Type } from '@flue/runtime';

export default createAgent(({ id: ticket }: { id: string }) => ({
  model: 'anthropic/claude-haiku-4-5',
  instructions:
    `You are a support assistant for ticket ${ticket}. Answer only about this ticket; ` +
    'call ticket_status before you state its status.',
  tools: [
    defineTool({
      name: 'ticket_status',
      description: 'Return the status of the current support ticket.',
      parameters: Type.Object({
        detail: Type.Optional(Type.Boolean({ description: 'Include the last update.' })),
      }),
      execute: async ({ detail }: { detail?: boolean }) => {
        let status = `Ticket ${ticket}: open, assigned to billing`;
        if (detail) status += '; last update: refund approved, pending payout';
        return status;
      },
    }),
  ],
}));
