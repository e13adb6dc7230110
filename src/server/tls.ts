import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { experimental, ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { WatchedFiles } from "../auth/watched-files.js";
import type { Config } from "../config.js";

type CertificateProvider = experimental.CertificateProvider;
type IdentityListener = experimental.IdentityCertificateUpdateListener;
type CaListener = experimental.CaCertificateUpdateListener;

/** What the server presents, and (mTLS) the CAs whose client certificates it accepts. */
interface TlsFiles {
  certificate: Buffer;
  privateKey: Buffer;
  clientCa?: Buffer;
}

export interface ServerTransport {
  credentials: ServerCredentials;
  /** Stops watching the files. */
  close(): void;
}

/**
 * The server's transport credentials: plaintext, or TLS from `--tls-cert` and `--tls-key`,
 * requiring client certificates signed by `--tls-client-ca` when given. The files are read
 * again when they change: new connections get the new certificate while open connections, and
 * their streams, go on with the one they began with.
 */
export async function serverTransport(config: Config, log: Logger): Promise<ServerTransport> {
  if (config.tlsCert === "") {
    return { credentials: ServerCredentials.createInsecure(), close: () => undefined };
  }
  const mutual = config.tlsClientCa !== "";
  const paths = [config.tlsCert, config.tlsKey, ...(mutual ? [config.tlsClientCa] : [])];
  const files = await WatchedFiles.open(
    paths,
    ([certificate, privateKey, clientCa]) => checkedTlsFiles(certificate, privateKey, clientCa),
    "the TLS certificate and key",
    log,
  );
  describeCertificate(files.current, log);
  files.onChange((update) => describeCertificate(update, log));
  const provider = new WatchedCertificates(files);
  return {
    credentials: experimental.createCertificateProviderServerCredentials(
      provider,
      mutual ? provider : null,
      mutual,
    ),
    close: () => files.close(),
  };
}

/**
 * The files as TLS will use them, or an error saying what is wrong: not PEM, a key that does not
 * match the certificate (as when a rotation is caught half way), a bad CA file.
 */
function checkedTlsFiles(
  certificate: Buffer | undefined,
  privateKey: Buffer | undefined,
  clientCa: Buffer | undefined,
): TlsFiles {
  if (!certificate || !privateKey) throw new Error("the certificate and key are both needed");
  new X509Certificate(certificate); // throws on anything but a certificate
  if (clientCa) new X509Certificate(clientCa);
  createSecureContext({
    cert: certificate,
    key: privateKey,
    ...(clientCa ? { ca: clientCa } : {}),
  });
  return { certificate, privateKey, ...(clientCa ? { clientCa } : {}) };
}

function describeCertificate(files: TlsFiles, log: Logger): void {
  const certificate = new X509Certificate(files.certificate);
  const expired = Date.parse(certificate.validTo) < Date.now();
  log[expired ? "warn" : "info"](
    {
      subject: certificate.subject,
      validTo: certificate.validTo,
      clientCertificates: files.clientCa ? "required" : "not asked for",
    },
    expired ? "the TLS certificate has expired: clients will refuse it" : "serving TLS",
  );
}

/** grpc-js's certificate provider interface over the watched files. */
class WatchedCertificates implements CertificateProvider {
  readonly #identityListeners = new Set<IdentityListener>();
  readonly #caListeners = new Set<CaListener>();

  constructor(private readonly files: WatchedFiles<TlsFiles>) {
    files.onChange((update) => {
      for (const listener of this.#identityListeners) listener(identityOf(update));
      for (const listener of this.#caListeners) listener(caOf(update));
    });
  }

  // The first update comes on the next tick, as grpc-js expects: it registers what listens to
  // the credentials only after adding its listener here.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    process.nextTick(() => listener(identityOf(this.files.current)));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    process.nextTick(() => listener(caOf(this.files.current)));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }
}

function identityOf(files: TlsFiles) {
  return { certificate: files.certificate, privateKey: files.privateKey };
}

function caOf(files: TlsFiles) {
  return files.clientCa ? { caCertificate: files.clientCa } : null;
}
