import { type ChildServer, startChildServer } from "./child-server.js";
import { freePort } from "./postgres-cluster.js";

/** One replica: the compiled server as a child process on a port of its own. */
export interface Replica extends ChildServer {
  index: number;
}

/**
 * `count` replicas of the server, each a child process on a fixed port of 127.0.0.1, so that a
 * replica killed and started again comes back where the balancer knows it.
 */
export class Replicas {
  readonly all: Replica[] = [];

  private constructor(
    private readonly ports: number[],
    /** The `serve` flags of replica `index`. */
    private readonly argsOf: (index: number) => string[],
  ) {}

  /** Replicas sharing one PostgreSQL database. */
  static start(count: number, databaseUrl: string, args: string[] = []): Promise<Replicas> {
    return Replicas.#start(count, () => [
      "--storage",
      "postgres",
      "--database-url",
      databaseUrl,
      ...args,
    ]);
  }

  /** Replicas on the file backend, each with a data directory of its own. */
  static onFiles(dataDirs: readonly string[], args: string[] = []): Promise<Replicas> {
    return Replicas.#start(dataDirs.length, (index) => [
      "--data-dir",
      dataDirs[index] as string,
      ...args,
    ]);
  }

  static async #start(count: number, argsOf: (index: number) => string[]): Promise<Replicas> {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    const replicas = new Replicas(ports, argsOf);
    for (let index = 0; index < count; index++) replicas.all.push(await replicas.#launch(index));
    return replicas;
  }

  /** host:port of every replica, in order. */
  get addresses(): string[] {
    return this.ports.map((port) => `127.0.0.1:${port}`);
  }

  /** SIGKILL: the replica dies at once, with whatever it was doing. */
  async kill(index: number): Promise<void> {
    const replica = this.all[index] as Replica;
    replica.client.close();
    replica.process.kill("SIGKILL");
    await replica.exited;
  }

  /** SIGTERM: the replica drains and stops; resolves to its exit code. */
  async terminate(index: number): Promise<number | string> {
    const replica = this.all[index] as Replica;
    replica.process.kill("SIGTERM");
    const code = await replica.exited;
    replica.client.close();
    return code;
  }

  /** Starts the replica at `index` again, on its port, after it stopped. */
  async restart(index: number): Promise<Replica> {
    const replica = await this.#launch(index);
    this.all[index] = replica;
    return replica;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      this.all.map(async (replica) => {
        replica.client.close();
        if (replica.process.exitCode === null && replica.process.signalCode === null) {
          replica.process.kill("SIGKILL");
          await replica.exited;
        }
      }),
    );
  }

  async #launch(index: number): Promise<Replica> {
    const server = await startChildServer([
      "--listen",
      `127.0.0.1:${this.ports[index]}`,
      ...this.argsOf(index),
    ]);
    return { ...server, index };
  }
}
