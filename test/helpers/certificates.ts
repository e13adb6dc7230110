import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTempDir } from "./test-server.js";

const run = promisify(execFile);

/** A certificate and its key, as files and as their contents. */
export interface Issued {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface CertificateRequest {
  /** Subject CN. */
  commonName: string;
  /** Subject O (the tenant of a certificate without a SPIFFE ID). */
  organization?: string;
  /** subjectAltName entries, e.g. ["IP:127.0.0.1", "URI:spiffe://example.org/tenants/acme"]. */
  altNames?: string[];
  /** Validity from now; negative for a certificate that has already expired. Default 1. */
  days?: number;
}

let serial = 0;

/**
 * A certificate authority of the tests' own, made with openssl (P-256 keys), that issues server
 * and client certificates into a temp directory.
 */
export class TestCa {
  private constructor(
    readonly directory: string,
    readonly ca: Issued,
  ) {}

  static async create(name = "sessionstore test CA"): Promise<TestCa> {
    const directory = await makeTempDir("sessionstore-pki-");
    const certFile = join(directory, "ca.pem");
    const keyFile = join(directory, "ca.key");
    await run("openssl", [
      "req",
      "-x509",
      ...newKey(keyFile),
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    ]);
    return new TestCa(directory, await issued(certFile, keyFile));
  }

  /** A certificate for 127.0.0.1 and localhost, as a server on loopback presents. */
  server(days = 1): Promise<Issued> {
    return this.issue({
      commonName: "localhost",
      altNames: ["IP:127.0.0.1", "DNS:localhost"],
      days,
    });
  }

  async issue(request: CertificateRequest): Promise<Issued> {
    const name = `cert-${++serial}`;
    const keyFile = join(this.directory, `${name}.key`);
    const csrFile = join(this.directory, `${name}.csr`);
    const certFile = join(this.directory, `${name}.pem`);
    const extFile = join(this.directory, `${name}.ext`);
    const subject = `/CN=${request.commonName}${request.organization ? `/O=${request.organization}` : ""}`;
    await run("openssl", ["req", ...newKey(keyFile), "-out", csrFile, "-subj", subject]);
    const extensions = ["basicConstraints=CA:FALSE"];
    if (request.altNames?.length) extensions.push(`subjectAltName=${request.altNames.join(",")}`);
    await writeFile(extFile, `${extensions.join("\n")}\n`);
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      this.ca.certFile,
      "-CAkey",
      this.ca.keyFile,
      "-set_serial",
      String(Date.now() * 1000 + serial),
      "-out",
      certFile,
      "-days",
      String(request.days ?? 1),
      "-extfile",
      extFile,
    ]);
    return issued(certFile, keyFile);
  }
}

function newKey(keyFile: string): string[] {
  return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile];
}

async function issued(certFile: string, keyFile: string): Promise<Issued> {
  return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
}
