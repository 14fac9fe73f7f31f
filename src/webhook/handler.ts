// The HTTP side of admission (as vault-k8s's handler.go): route, read the body,
// decode the AdmissionReview, echo its uid, encode the answer. What to do with
// the pod is mutate.ts's business. Every review with a uid is answered 200
// allowed: a webhook error must never keep a task pod from starting.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRecord } from '../json.ts';
import type { Logger } from '../log.ts';
import type { WebhookMetrics } from './metrics.ts';
import { type AdmissionRequestV1, type MutateOptions, type MutateResult, mutatePod } from './mutate.ts';
import { warning } from './warning.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const MUTATE_PATH = '/mutate';
/**
 * kube-apiserver's own limit on a request body (rule T8), above any pod etcd accepts
 * (1.5 MiB): a bigger body is not a review the API server sent, and is not read.
 */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

export interface AdmissionResponseV1 {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch array. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponseV1;
}

export type DecodedReview =
  | { kind: 'request'; request: AdmissionRequestV1 }
  /** A uid to echo, but nothing the webhook can act on. */
  | { kind: 'undecodable'; uid: string; reason: string }
  /** Not an AdmissionReview at all: there is no uid to answer. */
  | { kind: 'invalid'; reason: string };

/** Decodes an AdmissionReview v1 body. Pure. */
export function decodeReview(body: string): DecodedReview {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch {
    return { kind: 'invalid', reason: 'the body is not JSON' };
  }
  if (!isRecord(review)) return { kind: 'invalid', reason: 'the body is not an AdmissionReview object' };
  const request = review.request;
  const uid = isRecord(request) ? request.uid : undefined;
  if (typeof uid !== 'string' || uid === '') {
    return { kind: 'invalid', reason: 'the AdmissionReview has no request.uid' };
  }
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview') {
    return {
      kind: 'undecodable',
      uid,
      reason: `only ${ADMISSION_API_VERSION} AdmissionReview is served, got ${String(review.apiVersion)} ${String(review.kind)}`,
    };
  }
  if (!isRecord(request) || typeof request.operation !== 'string') {
    return { kind: 'undecodable', uid, reason: 'the AdmissionReview request has no operation' };
  }
  if (request.namespace !== undefined && typeof request.namespace !== 'string') {
    return { kind: 'undecodable', uid, reason: 'the AdmissionReview request namespace is not a string' };
  }
  return { kind: 'request', request: request as unknown as AdmissionRequestV1 };
}

/** The AdmissionReview answering `uid` with `result`. Pure. */
export function encodeResponse(uid: string, result: Pick<MutateResult, 'patch' | 'warnings'>) {
  const response: AdmissionResponseV1 = { uid, allowed: true };
  if (result.patch && result.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
  }
  if (result.warnings.length > 0) response.warnings = result.warnings;
  const review: AdmissionReviewResponse = {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response,
  };
  return review;
}

export interface AdmissionHandlerOptions {
  /** The settings in force for this review (the template and the mode change at run time). */
  mutateOptions(): MutateOptions;
  metrics: WebhookMetrics;
  logger: Logger;
  /** True once shutdown began: answers then close their connection. */
  closing(): boolean;
}

export function createAdmissionHandler(options: AdmissionHandlerOptions) {
  const { metrics, logger } = options;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const stopTimer = metrics.duration.startTimer();
    // The API server calls `/mutate?timeout=5s`: route on the path alone.
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== MUTATE_PATH) {
      sendError(res, 404, `no route for ${path}`);
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendError(res, 405, `${req.method} is not allowed on ${MUTATE_PATH}`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    // Stops reading at the limit: answers 413 and closes the connection without draining
    // the rest, so a caller cannot make the webhook read (or hold) more than 3 MiB.
    const refuseTooLarge = () => {
      refused = true;
      logger.warn(
        { limit: MAX_REVIEW_BYTES, contentLength: req.headers['content-length'] },
        'refused a request body over the limit without reading it',
      );
      req.removeAllListeners('data');
      req.pause();
      chunks.length = 0;
      count(metrics, 'error', stopTimer);
      res.shouldKeepAlive = false;
      res.on('finish', () => req.socket.destroy());
      sendError(res, 413, `the review is larger than ${MAX_REVIEW_BYTES} bytes`);
    };
    if (Number(req.headers['content-length']) > MAX_REVIEW_BYTES) {
      refuseTooLarge();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REVIEW_BYTES) refuseTooLarge();
      else chunks.push(chunk);
    });
    req.on('error', () => req.destroy());
    req.on('end', () => {
      if (refused) return;
      // Shutting down: this answer is the connection's last.
      if (options.closing()) res.shouldKeepAlive = false;
      const decoded = decodeReview(Buffer.concat(chunks, size).toString('utf8'));
      if (decoded.kind === 'invalid') {
        logger.warn({ reason: decoded.reason }, 'refused a request that is not an AdmissionReview v1');
        count(metrics, 'error', stopTimer);
        sendError(res, 400, decoded.reason);
        return;
      }
      let result: MutateResult;
      if (decoded.kind === 'undecodable') {
        result = { result: 'error', warnings: [warning(`tes-heartbeat: not injected: ${decoded.reason}`)] };
      } else {
        try {
          result = mutatePod(decoded.request, options.mutateOptions());
        } catch (error) {
          // A bug must cost one injection, not the pod nor the process.
          logger.error({ err: error, uid: decoded.request.uid }, 'mutating the pod failed');
          result = { result: 'error', warnings: [warning('tes-heartbeat: not injected: internal error')] };
        }
      }
      const uid = decoded.kind === 'request' ? decoded.request.uid : decoded.uid;
      sendJson(res, 200, encodeResponse(uid, result));
      count(metrics, result.result, stopTimer);
      logReview(logger, decoded, result);
    });
  };
}

function count(metrics: WebhookMetrics, result: MutateResult['result'], stopTimer: () => number): void {
  metrics.admissions.inc({ result });
  stopTimer();
}

function logReview(logger: Logger, decoded: DecodedReview, result: MutateResult): void {
  const request = decoded.kind === 'request' ? decoded.request : undefined;
  const meta = isRecord(request?.object) && isRecord(request.object.metadata) ? request.object.metadata : {};
  const fields = {
    uid:
      decoded.kind === 'invalid' ? undefined : decoded.kind === 'request' ? decoded.request.uid : decoded.uid,
    namespace: request?.namespace,
    pod: meta.name ?? meta.generateName,
    operation: request?.operation,
    result: result.result,
    warnings: result.warnings.length > 0 ? result.warnings : undefined,
  };
  if (result.result === 'error') logger.warn(fields, 'admitted without injection: review not usable');
  else if (result.result === 'injected') logger.info(fields, 'injected the agent');
  // A skip with a reason (no run id) is what an operator looks for; the rest is routine.
  else if (result.warnings.length > 0) logger.info(fields, 'admitted without injection');
  else logger.debug(fields, 'admitted unchanged');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  // One write for headers and body: with setNoDelay, no Nagle stall.
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}
