// The HTTPS listener of the admission endpoint: a certificate that can be
// swapped while serving, no Nagle stall, a shutdown that answers what it is
// receiving and closes idle keep-alive connections, and edges a caller cannot
// hold open or fill (rule T8): TLS 1.2+ with forward-secret AEAD suites only, and
// a request that must arrive whole within 10 s.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Clock } from '../clock.ts';

export class CertificateError extends Error {
  readonly code = 'WEBHOOK_TLS_UNUSABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CertificateError';
  }
}

export interface KeyPair {
  cert: string;
  key: string;
}

/**
 * TLS 1.3's suites (all AEAD, all forward-secret), then TLS 1.2's ECDHE with AES-GCM or
 * ChaCha20-Poly1305 for ECDSA and RSA keys (helm's genSignedCert makes RSA, cert-manager
 * either). No static RSA key exchange (no forward secrecy), no CBC (padding oracles, SHA-1).
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const TLS_MIN_VERSION = 'TLSv1.2';
/** A request (TLS handshake, headers and body) must arrive whole within this. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** How often Node checks requestTimeout/headersTimeout (its default, 30 s, would triple the bound). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** Reads and checks a PEM certificate and key (PKCS#1 or PKCS#8); throws CertificateError. */
export async function readKeyPair(certFile: string, keyFile: string): Promise<KeyPair> {
  let pair: KeyPair;
  try {
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    pair = { cert, key };
  } catch (error) {
    throw new CertificateError(
      `cannot read the TLS certificate or key (${(error as NodeJS.ErrnoException).code ?? 'error'}: ${(error as Error).message})`,
      { cause: error },
    );
  }
  try {
    // createSecureContext alone accepts an empty certificate (a file caught at its
    // truncation by a writer that does not swap atomically) and would serve none:
    // the certificate must parse and the key must be its own.
    if (!new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key)))
      throw new Error("the key is not the certificate's");
    createSecureContext(pair);
  } catch (error) {
    // Also a certificate rewritten before its key: the caller retries.
    throw new CertificateError(
      `the TLS certificate ${certFile} and key ${keyFile} do not make a usable pair (${(error as Error).message})`,
      { cause: error },
    );
  }
  return pair;
}

export interface WebhookServerOptions {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  clock: Clock;
  /** A server error after start-up (EMFILE on accept): reported, never fatal (rule 22). */
  onError(error: Error): void;
}

export class WebhookServer {
  private readonly server: Server;
  private readonly clock: Clock;
  private readonly onError: (error: Error) => void;
  private certificate = false;
  private stopping = false;

  constructor(options: WebhookServerOptions) {
    this.clock = options.clock;
    this.onError = options.onError;
    // Without a certificate yet, handshakes fail until setCertificate: the
    // webhook is not ready then, and the API server's failurePolicy applies.
    this.server = createServer(
      {
        keepAliveTimeout: 30_000,
        // A caller that sends slowly or stops mid-body gets 408 and a closed connection,
        // instead of holding a socket (and the memory of its partial body) for Node's 300 s.
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
        handshakeTimeout: REQUEST_TIMEOUT_MS,
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
      },
      options.handler,
    );
    // Small answers: without noDelay, a response split over two packets waits
    // ~40 ms for the client's delayed ACK.
    this.server.on('secureConnection', (socket) => socket.setNoDelay(true));
    // A client that hangs up mid-handshake must not surface as an error.
    this.server.on('tlsClientError', () => {});
  }

  get hasCertificate(): boolean {
    return this.certificate;
  }

  get closing(): boolean {
    return this.stopping;
  }

  setCertificate(pair: KeyPair): void {
    // The new context is built from these options alone: repeat the protocol rules.
    this.server.setSecureContext({ ...pair, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS });
    this.certificate = true;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        // Without a listener an 'error' event ends the process.
        this.server.on('error', this.onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting connections, lets requests in progress finish (their
   * connections close after the answer), closes idle keep-alive connections,
   * and after `graceMs` closes whatever is left.
   */
  async close(graceMs: number): Promise<void> {
    this.stopping = true;
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = this.clock.now() + graceMs;
    const stop = new AbortController();
    const sweep = (async () => {
      // A connection that was busy becomes idle once answered.
      while (this.clock.now() < deadline) {
        this.server.closeIdleConnections();
        try {
          await this.clock.sleep(50, stop.signal);
        } catch {
          return;
        }
      }
      this.server.closeAllConnections();
    })();
    await closed;
    stop.abort();
    await sweep;
  }
}
