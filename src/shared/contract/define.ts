/**
 * The machinery that turns the contract (a plain object of zod schemas) into typed clients
 * and validated dispatchers. Written once; Electron IPC, WebSocket and direct calls all go
 * through `makeClient` on one side and `dispatch` on the other (STYLE.md convention 3).
 */
import type { z } from 'zod';
import { NmlabError } from '../errors';

export interface MethodSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
}

export function method<I extends z.ZodType, O extends z.ZodType>(input: I, output: O): MethodSpec<I, O> {
  return { input, output };
}

export type ServiceSpec = Record<string, MethodSpec>;
export type ContractSpec = Record<string, ServiceSpec>;

/** What a caller sees: every method takes the schema's input type and resolves to its output. */
export type ClientOf<C extends ContractSpec> = {
  [S in keyof C]: {
    [M in keyof C[S]]: (input: z.input<C[S][M]['input']>) => Promise<z.output<C[S][M]['output']>>;
  };
};

/** What a backend implements: inputs arrive already parsed and defaulted. */
export type HandlersOf<C extends ContractSpec> = {
  [S in keyof C]: {
    [M in keyof C[S]]: (input: z.output<C[S][M]['input']>) => Promise<z.input<C[S][M]['output']>>;
  };
};

/** `nmlab:<service>.<method>`, the one channel naming used by every transport. */
export function channelName(service: string, methodName: string): string {
  return `nmlab:${service}.${methodName}`;
}

export function listChannels(contract: ContractSpec): string[] {
  return Object.entries(contract).flatMap(([s, methods]) => Object.keys(methods).map((m) => channelName(s, m)));
}

function lookup(contract: ContractSpec, channel: string): MethodSpec {
  const match = /^nmlab:([A-Za-z]+)\.([A-Za-z]+)$/.exec(channel);
  const spec = match ? contract[match[1]]?.[match[2]] : undefined;
  if (!match || !spec || !Object.hasOwn(contract, match[1]) || !Object.hasOwn(contract[match[1]], match[2])) {
    throw new NmlabError('BAD_REQUEST', `unknown channel "${channel}"`);
  }
  return spec;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Validate an untrusted payload against a method's input schema. */
export function parseInput(contract: ContractSpec, channel: string, payload: unknown): unknown {
  const spec = lookup(contract, channel);
  const parsed = spec.input.safeParse(payload);
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `invalid request to ${channel}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Run a handler for a channel: validate input, call, validate output. */
export async function dispatch<C extends ContractSpec>(
  contract: C,
  handlers: HandlersOf<C>,
  channel: string,
  payload: unknown,
): Promise<unknown> {
  const input = parseInput(contract, channel, payload);
  const [, service, methodName] = /^nmlab:([A-Za-z]+)\.([A-Za-z]+)$/.exec(channel)!;
  const service_ = handlers[service] as Record<string, (input: unknown) => Promise<unknown>>;
  const result = await service_[methodName](input);
  const out = lookup(contract, channel).output.safeParse(result);
  if (!out.success) throw new NmlabError('INTERNAL', `backend answered ${channel} with an invalid result: ${describeIssues(out.error)}`);
  return out.data;
}

/** Build a typed client from any `invoke(channel, payload)` transport. Results are validated too. */
export function makeClient<C extends ContractSpec>(
  contract: C,
  invoke: (channel: string, payload: unknown) => Promise<unknown>,
): ClientOf<C> {
  const client: Record<string, Record<string, (input: unknown) => Promise<unknown>>> = {};
  for (const [service, methods] of Object.entries(contract)) {
    client[service] = {};
    for (const [name, spec] of Object.entries(methods)) {
      const channel = channelName(service, name);
      client[service][name] = async (input: unknown) => {
        const result = await invoke(channel, input);
        const out = spec.output.safeParse(result);
        if (!out.success) throw new NmlabError('INTERNAL', `invalid result from ${channel}: ${describeIssues(out.error)}`);
        return out.data;
      };
    }
  }
  return client as ClientOf<C>;
}
