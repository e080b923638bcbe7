import type { Context } from 'hono';
import type { KeyIdentity } from '../store/types.js';
import { admitRequest, type AdmittedRequest, type ProxyServices } from './admit-request.js';
import type { AdmissionFacts, Dialect } from './dialects/dialect.js';
import { renderProxyFailure } from './error-shape.js';
import { authenticate } from './identity.js';
import { countPrompt } from './prompt-count.js';
import { answerRefusal } from './refusal-answer.js';
import type { Refusal } from './refusals.js';
import { relayStream } from './relay-stream.js';
import { readJsonBody } from './request-body.js';
import { keepAnswer, lookUpAnswer } from './response-cache/cache-lookup.js';
import { serveHit } from './response-cache/serve-hit.js';
import { afterAdmission, relayInBackground } from './request-lifetime.js';
import type { StreamSink } from './response-sink.js';
import { answerAssembled, finishWholeAnswer, isEventStream, readWholeBody, sendUpstream, startStream } from './upstream-answer.js';
import { forwardedHeaders, passThroughHeaders, type UpstreamResponse } from './upstream-call.js';
import { sendWhole } from './response-sink.js';

/**
 * The route of every metered API, run for one dialect: authenticate → parse → (answer from the
 * response cache) → admit → forward → finish a whole answer, assemble one, or relay a stream.
 * Whatever stops a request on the way is answered in the dialect's own shape.
 */
export function meteredRoute<Request, State>(services: ProxyServices, dialect: Dialect<Request, State>) {
  return function meteredRoute(c: Context): Promise<Response> {
    return meterRequest(c, services, dialect).catch((error: unknown) => renderProxyFailure(c, error, dialect.errorBody));
  };
}

async function meterRequest<Request, State>(c: Context, services: ProxyServices, dialect: Dialect<Request, State>): Promise<Response> {
  const receivedAt = performance.now();
  const identity = await authenticate(c, services.store, dialect.clientKey);
  const fromUrl = dialect.fromUrl?.({ params: c.req.param(), query: (name) => c.req.query(name) });
  const { request, bytes } = await readJsonBody(c, dialect.requestSchema, services.config.proxy.maxBodyBytes, fromUrl, dialect.quickParse);
  const facts = dialect.admissionFacts(request, (model) => services.prices.outputCapOf(model));
  // A whole answer the proxy assembles from a stream (proxy.streamWholeAnswers) is metered as one.
  const assemble = !facts.streaming && dialect.stream !== undefined && services.config.proxy.streamWholeAnswers;
  const { kind, body } = facts.prompt;
  const lookup = lookUpAnswer(c, services, identity, { api: dialect.name, request, facts, headers: () => forwardedHeaders(c, dialect.forwardedHeaders) });
  const cached = lookup && (await lookup);
  if (cached?.found) {
    const hit = await serveHit(c, services, cached.subject, cached.found);
    if (hit.kind === 'served') return hit.response;
    if (hit.kind === 'refused') return refuse(c, services, identity, dialect, { request, facts }, hit.refusal);
  }
  const admitting = admitRequest(c, services, identity, {
    model: facts.model,
    api: dialect.api,
    bodyBytes: bytes,
    bodyUser: facts.bodyUser,
    countPrompt: (model) => countPrompt(services.tokens, { kind, model, body }),
    wantOutput: facts.wantOutput,
    // A lease that grows with the output counted, unless some output is never seen as it goes.
    streaming: (facts.streaming || assemble) && facts.hiddenOutput !== true,
    minOutput: facts.minOutput,
    promptCacheWrite: facts.promptCacheWrite,
    downgradable: facts.downgradable,
    payer: cached?.subject,
  });
  // A value when the store admitted in memory: the request goes on upstream in the same stretch.
  const admission = admitting instanceof Promise ? await admitting : admitting;
  if (!admission.ok) return refuse(c, services, identity, dialect, { request, facts }, admission.refusal);
  // The admission serving the request: another one after a failover (see sendWithFailover).
  const current = { admitted: admission.admitted };
  if (cached && cached.found === null) keepAnswer(c, cached, () => current.admitted, facts.wantOutput);
  return afterAdmission(
    c,
    () => current.admitted.meter,
    () => forward(c, services, dialect, { request, facts, current, assemble, receivedAt }),
  );
}

/**
 * A quota or rate refusal: a 429 in the dialect's shape, or — with refusalStyle "answer", the key's
 * or the config's, on an API that has chat answers — the assistant's answer (refusal-answer.ts).
 */
function refuse<Request, State>(
  c: Context,
  services: ProxyServices,
  identity: KeyIdentity,
  dialect: Dialect<Request, State>,
  { request, facts }: { request: Request; facts: AdmissionFacts },
  refusal: Refusal,
): Response | Promise<Response> {
  const style = identity.key.refusalStyle ?? services.config.proxy.refusalStyle;
  if (style === 'answer' && dialect.refusalAnswer) {
    return answerRefusal(c, services, refusal, dialect.refusalAnswer, { parsed: request, model: facts.model, streaming: facts.streaming });
  }
  for (const [name, value] of Object.entries(refusal.headers)) c.header(name, value);
  return c.json(dialect.refusalBody(refusal), refusal.status);
}

interface Forwarded<Request> {
  request: Request;
  facts: AdmissionFacts;
  /** The request's admission, replaced by the next upstream's on a failover. */
  current: { admitted: AdmittedRequest };
  assemble: boolean;
  /** When the request arrived (performance.now()): the proxy's added latency ends as it goes upstream. */
  receivedAt: number;
}

/** Sends an admitted request upstream and answers with what comes back, metered. */
async function forward<Request, State>(c: Context, services: ProxyServices, dialect: Dialect<Request, State>, forwarded: Forwarded<Request>): Promise<Response> {
  const { request, facts, assemble } = forwarded;
  const stream = facts.streaming || assemble ? dialect.stream : undefined;
  // Only a stream can be stopped half-way: a whole answer asked of the upstream as one is paid
  // for once it was asked for.
  const abort = stream ? new AbortController() : null;
  services.metrics.observeAddedLatency(forwarded.receivedAt);
  const sent = await sendWithFailover(c, services, dialect, forwarded.current, (admitted) => {
    const forwardFacts = { model: admitted.model, outputLimit: admitted.outputLimit, wantOutput: facts.wantOutput, assemble };
    const body = dialect.upstreamBody(request, forwardFacts);
    const path = typeof dialect.upstreamPath === 'string' ? dialect.upstreamPath : dialect.upstreamPath(request, forwardFacts);
    return sendUpstream(admitted, path, JSON.stringify(body), { signal: abort?.signal, headers: forwardedHeaders(c, dialect.forwardedHeaders) });
  });
  if (sent instanceof Response) return sent;
  const { admitted, response } = sent;
  const countOutput = services.tokens.outputCounter(admitted.model);
  if (!stream || !abort || !isEventStream(response, stream.framing)) return finishWholeAnswer(c, admitted, response, dialect, countOutput);

  const state = stream.begin(request, { model: admitted.model, assemble });
  const relay = (sink: StreamSink) =>
    relayStream({ format: stream, state, body: response.body, sink, abort, meter: admitted.meter, countOutput, upstreamName: admitted.upstream.name, clock: services.clock });
  if (assemble) return answerAssembled(c, admitted, response, stream.assembler(), relay, dialect.errorBody, stream.framing);
  const sink = startStream(c, admitted, response, dialect.answerHeaderPrefixes);
  relayInBackground(admitted.meter, sink, dialect.name, () => relay(sink));
  return sink.response;
}

/**
 * Sends the request to its upstream; when that upstream fails before its answer begins (no
 * connection, no headers in time, or a 429 or 5xx of its own), its hold is released — nothing is
 * charged for the try — and the request is admitted again on the model's next upstream and sent
 * there. An answer that has begun is never sent again. When no upstream is left, or the next one's
 * budgets refuse, the client gets what the last upstream answered (or its failure).
 */
async function sendWithFailover<Request, State>(
  c: Context,
  services: ProxyServices,
  dialect: Dialect<Request, State>,
  current: { admitted: AdmittedRequest },
  send: (admitted: AdmittedRequest) => Promise<UpstreamResponse>,
): Promise<{ admitted: AdmittedRequest; response: UpstreamResponse } | Response> {
  for (;;) {
    const { admitted } = current;
    const { failover } = admitted;
    let response: UpstreamResponse;
    try {
      response = await send(admitted);
    } catch (error) {
      // sendUpstream released the hold.
      if (failover) services.metrics.recordFailover(admitted.upstream.name);
      const next = failover && (await failover());
      if (next?.ok) {
        current.admitted = next.admitted;
        continue;
      }
      throw error;
    }
    if (!failover || !failsOver(response.statusCode)) return { admitted, response };
    // The error's body is kept, for the client should no other upstream take the request; one cut
    // short is an error body all the same: what arrived is what there is.
    const body = await readWholeBody(response, 'keep');
    await admitted.meter.release();
    services.metrics.recordFailover(admitted.upstream.name);
    const next = await failover();
    if (next.ok) {
      current.admitted = next.admitted;
      continue;
    }
    const headers = Object.assign(passThroughHeaders(response.headers, dialect.answerHeaderPrefixes), admitted.headersAfter(null));
    return sendWhole(c, response.statusCode, headers, body);
  }
}

/** The upstream statuses another upstream may do better on: its own rate limit, its own failures. */
const failsOver = (status: number): boolean => status === 429 || status >= 500;
