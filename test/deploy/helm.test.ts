import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { type Config, envName, isLoopback, loadConfig, SETTINGS } from "../../src/config.js";
import { readDockerfile } from "../helpers/dockerfile.js";
import { CHART, helm, skipWithoutHelm } from "../helpers/helm.js";
import { codeBlocks } from "../helpers/markdown-code-blocks.js";
import { REPOSITORY } from "../helpers/repository.js";

/**
 * The Helm chart (deploy/helm/sessionstore): `helm lint --strict` and `helm template` with the
 * defaults and with every example of the chart's README, and checks of the objects rendered: the
 * workload each storage needs, selectors and ports that meet, probes, the pod's security, the
 * database URL only from a Secret, the shutdown's time, and arguments and environment that the
 * server itself accepts (they go through src/config.ts's loadConfig, after the image's ENV).
 */

const README = "deploy/helm/sessionstore/README.md";
const EXAMPLE_MARKER =
  "not run: chart values; test/deploy/helm.test.ts lints the chart with them, renders it and checks the objects";
const RELEASE = "sessionstore";
const NAMESPACE = "agents";
const image = readDockerfile();

/** The parts of the chart's values the checks read (values.yaml has them all). */
interface Values {
  storage?: "jsonl" | "postgres";
  jsonl?: { persistence?: { size?: string; storageClass?: string } };
  postgres?: { databaseUrlSecret?: { name?: string; key?: string } };
  metrics?: { serviceMonitor?: { enabled?: boolean } };
  istio?: { destinationRule?: { enabled?: boolean; tlsMode?: string } };
}

interface Scenario {
  name: string;
  values: string;
}

const scenarios: Scenario[] = [
  { name: "the defaults, behind a mesh", values: "auth:\n  allowUnauthenticated: true\n" },
  ...codeBlocks(readFileSync(join(REPOSITORY, README), "utf8"), README)
    .filter((block) => block.ci === EXAMPLE_MARKER)
    .map((block) => ({ name: `${README}:${block.line}`, values: block.code })),
];

// The rendered objects, as far as the checks read them.
type Labels = Record<string, string>;
interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
}
interface Probe {
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
  httpGet?: unknown;
  exec?: unknown;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: SecretKeyRef } }[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}
interface SecretKeyRef {
  name: string;
  key: string;
}
interface KeyToPath {
  key: string;
  path: string;
}
interface Volume {
  name: string;
  secret?: { secretName: string; defaultMode?: number; items?: KeyToPath[] };
  configMap?: { name: string; items?: KeyToPath[] };
  [source: string]: unknown;
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
  hostNetwork?: boolean;
  serviceAccountName?: string;
}
interface Workload extends KubernetesObject {
  spec: {
    replicas: number;
    selector: { matchLabels: Labels };
    serviceName?: string;
    template: { metadata: { labels: Labels }; spec: PodSpec };
    volumeClaimTemplates?: {
      metadata: { name: string };
      spec: {
        accessModes: string[];
        storageClassName?: string;
        resources: { requests: { storage: string } };
      };
    }[];
  };
}
interface Service extends KubernetesObject {
  spec: {
    type?: string;
    clusterIP?: string;
    selector: Labels;
    ports: { name: string; port: number; targetPort: number | string; appProtocol?: string }[];
  };
}
interface ServiceMonitor extends KubernetesObject {
  spec: { selector: { matchLabels: Labels }; endpoints: { port: string; path?: string }[] };
}
interface DestinationRule extends KubernetesObject {
  spec: {
    host: string;
    trafficPolicy: {
      loadBalancer: { simple?: string; consistentHash?: { httpHeaderName?: string } };
      tls?: { mode: string };
    };
  };
}

interface Rendered {
  values: Values;
  /** helm template's output, as text. */
  text: string;
  objects: KubernetesObject[];
  workload: Workload;
  pod: PodSpec;
  container: Container;
  ofKind<T extends KubernetesObject>(kind: string): T[];
}

const rendered = new Map<string, Promise<Rendered>>();

/** The chart rendered with the scenario's values (once per scenario). */
function render(scenario: Scenario): Promise<Rendered> {
  let result = rendered.get(scenario.name);
  if (!result) {
    result = renderValues(scenario.values);
    rendered.set(scenario.name, result);
  }
  return result;
}

async function renderValues(values: string): Promise<Rendered> {
  const result = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE], values);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  const text = result.stdout.toString();
  const documents = parseAllDocuments(text);
  const objects: KubernetesObject[] = [];
  for (const document of Array.isArray(documents) ? documents : [documents]) {
    expect(document.errors, "YAML errors in helm template's output").toEqual([]);
    const object = document.toJS() as KubernetesObject | null;
    if (object) objects.push(object);
  }
  const ofKind = <T extends KubernetesObject>(kind: string) =>
    objects.filter((object) => object.kind === kind) as T[];
  const workloads = [...ofKind<Workload>("StatefulSet"), ...ofKind<Workload>("Deployment")];
  expect(workloads).toHaveLength(1);
  const workload = workloads[0] as Workload;
  const pod = workload.spec.template.spec;
  expect(pod.containers).toHaveLength(1);
  return {
    values: (parseYaml(values) ?? {}) as Values,
    text,
    objects,
    workload,
    pod,
    container: pod.containers[0] as Container,
    ofKind,
  };
}

/**
 * The server's settings as the container starts it: the image's ENTRYPOINT (the chart sets no
 * command) with the chart's args, in the image's ENV plus the container's env. A value from a
 * Secret stands for itself. Throws as the server would refuse to start.
 */
function serverConfig(container: Container): Config {
  expect(container.command, "the image's ENTRYPOINT runs").toBeUndefined();
  const [command, ...flags] = container.args ?? [];
  expect(command).toBe(image.cmd[0]);
  const env: Record<string, string> = { ...image.env };
  for (const variable of container.env ?? []) {
    const secret = variable.valueFrom?.secretKeyRef;
    env[variable.name] = secret
      ? `postgresql://from-secret-${secret.name}@db/sessions`
      : (variable.value ?? "");
  }
  // loadConfig ignores variables that name no setting; the chart must not set any.
  const settings = new Set(SETTINGS.map((setting) => envName(setting.flag)));
  const unknown = Object.keys(env).filter(
    (name) => name.startsWith("SESSIONSTORE_") && !settings.has(name),
  );
  expect(unknown, "environment variables that are no setting").toEqual([]);
  return loadConfig(flags, env);
}

const isSubset = (subset: Labels, of: Labels | undefined) =>
  Object.entries(subset).every(([key, value]) => of?.[key] === value);

function port(container: Container, name: string): number {
  const found = container.ports?.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no container port named ${name}`);
  return found.containerPort;
}

describe("the Helm chart", skipWithoutHelm(), () => {
  it("has an example for each storage, authentication, TLS, ServiceMonitor and DestinationRule", async () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(5);
    const all = await Promise.all(scenarios.map(render));
    const covered = new Set(
      all.flatMap(({ values, text }) => [
        values.storage ?? "jsonl",
        /--auth=(\w+)/.exec(text)?.[1],
        text.includes("--tls-cert=") ? "tls" : "plaintext",
        values.metrics?.serviceMonitor?.enabled ? "ServiceMonitor" : undefined,
        values.istio?.destinationRule?.enabled
          ? `DestinationRule for ${values.storage ?? "jsonl"}`
          : undefined,
      ]),
    );
    for (const wanted of [
      "jsonl",
      "postgres",
      "none",
      "jwt",
      "mtls",
      "tls",
      "plaintext",
      "ServiceMonitor",
      "DestinationRule for jsonl",
      "DestinationRule for postgres",
    ]) {
      expect(covered, wanted).toContain(wanted);
    }
  });

  it("gives the server's version as appVersion, the image's default tag", async () => {
    const chart = parseYaml(readFileSync(join(CHART, "Chart.yaml"), "utf8")) as {
      appVersion: string;
    };
    const packageJson = JSON.parse(readFileSync(join(REPOSITORY, "package.json"), "utf8")) as {
      version: string;
    };
    expect(chart.appVersion).toBe(packageJson.version);
    const { container } = await render(scenarios[0] as Scenario);
    expect(container.image).toBe(`sessionstore:${packageJson.version}`);
  });

  describe.each(scenarios)("with $name", (scenario) => {
    it("passes helm lint --strict", async () => {
      const result = await helm(["lint", "--strict", CHART], scenario.values);
      const output = `${result.stdout}${result.stderr}`;
      expect(result.code, output).toBe(0);
      // In lint mode a template's fail is only logged.
      expect(output).not.toMatch(/Fail:/);
    });

    it("renders a StatefulSet with a volume per pod for jsonl, a Deployment for postgres", async () => {
      const { values, workload, container } = await render(scenario);
      const config = serverConfig(container);
      expect(config.storage).toBe(values.storage ?? "jsonl");
      if (config.storage === "jsonl") {
        expect(workload.kind).toBe("StatefulSet");
        const [claim, ...others] = workload.spec.volumeClaimTemplates ?? [];
        expect(others).toEqual([]);
        expect(claim?.spec.accessModes).toEqual(["ReadWriteOnce"]);
        expect(claim?.spec.resources.requests.storage).toBe(
          values.jsonl?.persistence?.size ?? "10Gi",
        );
        expect(claim?.spec.storageClassName).toBe(values.jsonl?.persistence?.storageClass);
        const mount = container.volumeMounts?.find(
          (candidate) => candidate.name === claim?.metadata.name,
        );
        expect(mount?.mountPath).toBe(config.dataDir);
        expect(mount?.readOnly).toBeFalsy();
      } else {
        expect(workload.kind).toBe("Deployment");
        expect(workload.spec.volumeClaimTemplates).toBeUndefined();
        expect(workload.spec.replicas).toBeGreaterThanOrEqual(2);
      }
    });

    it("selects its own pods, and its Services target named container ports", async () => {
      const { workload, container, ofKind } = await render(scenario);
      const podLabels = workload.spec.template.metadata.labels;
      const selector = workload.spec.selector.matchLabels;
      expect(selector["app.kubernetes.io/instance"]).toBe(RELEASE);
      expect(isSubset(selector, podLabels)).toBe(true);
      const services = ofKind<Service>("Service");
      expect(services.map((service) => service.spec.clusterIP ?? "ClusterIP")).toEqual([
        "ClusterIP",
        "None",
      ]);
      for (const service of services) {
        expect(service.spec.selector).toEqual(selector);
        for (const servicePort of service.spec.ports) {
          expect(typeof servicePort.targetPort).toBe("string");
          expect(port(container, servicePort.targetPort as string)).toBeGreaterThan(0);
        }
        const grpc = service.spec.ports.find((candidate) => candidate.name === "grpc");
        expect(grpc).toMatchObject({ targetPort: "grpc", appProtocol: "grpc" });
      }
      const headless = services.find((service) => service.spec.clusterIP === "None");
      if (workload.kind === "StatefulSet")
        expect(workload.spec.serviceName).toBe(headless?.metadata.name);
      const budgets = ofKind<{ spec: { selector: { matchLabels: Labels } } } & KubernetesObject>(
        "PodDisruptionBudget",
      );
      expect(budgets).toHaveLength(1);
      expect(budgets[0]?.spec.selector.matchLabels).toEqual(selector);
    });

    it("probes gRPC health on the gRPC port (the port itself under TLS), liveness the port", async () => {
      const { container } = await render(scenario);
      const config = serverConfig(container);
      const grpcPort = port(container, "grpc");
      expect(Number(config.listen.split(":").at(-1))).toBe(grpcPort);
      // Kubernetes' gRPC probe speaks plaintext only.
      const check =
        config.tlsCert === "" ? { grpc: { port: grpcPort } } : { tcpSocket: { port: "grpc" } };
      for (const probe of [container.startupProbe, container.readinessProbe]) {
        expect(probe).toMatchObject(check);
        expect(probe?.grpc?.service).toBeUndefined(); // the server's overall health
      }
      expect(container.livenessProbe).toMatchObject({ tcpSocket: { port: "grpc" } });
      expect(container.livenessProbe?.grpc).toBeUndefined();
    });

    it("runs as the image's non-root user, read-only, without privileges", async () => {
      const { pod, container } = await render(scenario);
      expect(image.user.uid).toBeGreaterThan(0);
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: image.user.uid,
        runAsGroup: image.user.gid,
        fsGroup: image.user.gid,
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(container.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      expect(container.securityContext).not.toHaveProperty("capabilities.add");
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.enableServiceLinks).toBe(false);
      expect(pod.hostNetwork).toBeUndefined();
      // Nothing writable but the data volume: only Secrets and ConfigMaps besides it.
      for (const volume of pod.volumes ?? []) {
        const sources = Object.keys(volume).filter((key) => key !== "name");
        expect(sources, volume.name).toEqual([volume.secret ? "secret" : "configMap"]);
      }
    });

    it("mounts every file the server reads from its Secret or ConfigMap, read-only and whole", async () => {
      const { pod, container } = await render(scenario);
      const config = serverConfig(container);
      const files = [config.tlsCert, config.tlsKey, config.tlsClientCa, config.authJwks];
      for (const file of files.filter((path) => path !== "")) {
        const mount = container.volumeMounts?.find(
          (candidate) => candidate.mountPath === dirname(file),
        );
        expect(mount, file).toBeDefined();
        expect(mount?.readOnly).toBe(true);
        expect(mount?.subPath).toBeUndefined(); // a subPath mount never sees an update
        const volume = pod.volumes?.find((candidate) => candidate.name === mount?.name);
        const items = volume?.secret?.items ?? volume?.configMap?.items ?? [];
        expect(items.map((item) => item.path)).toContain(basename(file));
        if (volume?.secret) expect(volume.secret.defaultMode).toBe(0o440);
      }
    });

    it("gives the database URL only from a Secret", async () => {
      const { values, container, text } = await render(scenario);
      const config = serverConfig(container);
      expect(container.args?.some((arg) => arg.startsWith("--database-url"))).toBe(false);
      expect(text).not.toMatch(/postgres(ql)?:\/\//);
      const variable = container.env?.find(
        (candidate) => candidate.name === "SESSIONSTORE_DATABASE_URL",
      );
      if (config.storage === "postgres") {
        expect(variable).toEqual({
          name: "SESSIONSTORE_DATABASE_URL",
          valueFrom: {
            secretKeyRef: {
              name: values.postgres?.databaseUrlSecret?.name,
              key: values.postgres?.databaseUrlSecret?.key ?? "url",
            },
          },
        });
      } else {
        expect(variable).toBeUndefined();
      }
    });

    it("drains a few seconds and leaves the shutdown its time before SIGKILL", async () => {
      const { pod, container } = await render(scenario);
      const config = serverConfig(container);
      expect(config.drainDelayMs).toBeGreaterThanOrEqual(2000);
      expect((pod.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(
        config.drainDelayMs + config.shutdownTimeoutMs,
      );
    });

    it("starts a server that accepts its arguments, beyond loopback with authentication or consent", async () => {
      const { container } = await render(scenario);
      const config = serverConfig(container);
      expect(isLoopback(config.listen)).toBe(false);
      expect(config.auth !== "none" || config.allowUnauthenticated).toBe(true);
    });

    it("serves metrics on the metrics port, scraped once per pod by the ServiceMonitor", async () => {
      const { values, container, ofKind } = await render(scenario);
      const listen = container.args?.find((arg) => arg.startsWith("--metrics-listen="));
      expect(listen?.split(":").at(-1)).toBe(String(port(container, "metrics")));
      const [service, headless] = ofKind<Service>("Service");
      expect(service?.spec.ports.map((servicePort) => servicePort.name)).toContain("metrics");
      expect(headless?.spec.ports.map((servicePort) => servicePort.name)).toEqual(["grpc"]);
      const monitors = ofKind<ServiceMonitor>("ServiceMonitor");
      if (!values.metrics?.serviceMonitor?.enabled) {
        expect(monitors).toEqual([]);
        return;
      }
      expect(monitors).toHaveLength(1);
      const monitor = monitors[0] as ServiceMonitor;
      expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
      expect(isSubset(monitor.spec.selector.matchLabels, service?.metadata.labels)).toBe(true);
      expect(monitor.spec.endpoints).toMatchObject([{ port: "metrics", path: "/metrics" }]);
    });

    it("routes by x-session-id (jsonl) or to the least loaded pod (postgres) in Istio", async () => {
      const { values, ofKind } = await render(scenario);
      const rules = ofKind<DestinationRule>("DestinationRule");
      const wanted = values.istio?.destinationRule;
      if (!wanted?.enabled) {
        expect(rules).toEqual([]);
        return;
      }
      expect(rules).toHaveLength(1);
      const rule = rules[0] as DestinationRule;
      const [service] = ofKind<Service>("Service");
      expect(rule.apiVersion).toBe("networking.istio.io/v1");
      expect(rule.spec.host).toBe(`${service?.metadata.name}.${NAMESPACE}.svc.cluster.local`);
      expect(rule.spec.trafficPolicy.loadBalancer).toEqual(
        (values.storage ?? "jsonl") === "jsonl"
          ? { consistentHash: { httpHeaderName: "x-session-id" } }
          : { simple: "LEAST_REQUEST" },
      );
      expect(rule.spec.trafficPolicy.tls?.mode).toBe(wanted.tlsMode);
    });
  });

  it("passes settings as flags, whole numbers as written", async () => {
    const { container } = await renderValues(
      "auth: { allowUnauthenticated: true }\nsettings: { max-connection-age-ms: 3600000, durability: sync }\n",
    );
    expect(container.args).toContain("--max-connection-age-ms=3600000");
    const config = serverConfig(container);
    expect(config.maxConnectionAgeMs).toBe(3_600_000);
    expect(config.durability).toBe("sync");
  });

  it.each([
    [
      "the defaults (auth none, not allowUnauthenticated)",
      "",
      /auth\.mode is none.*protected mode/,
    ],
    [
      "auth jwt without an issuer",
      "auth: { mode: jwt, jwt: { jwks: { configMap: keys }, audience: sessionstore } }",
      /needs auth\.jwt\.issuer and auth\.jwt\.audience/,
    ],
    [
      "auth jwt with the JWKS in two places",
      "auth: { mode: jwt, jwt: { jwks: { configMap: a, secret: b }, issuer: i, audience: a } }",
      /one ConfigMap or Secret/,
    ],
    [
      "auth mtls without a client CA",
      "tls: { secretName: tls }\nauth: { mode: mtls }",
      /mtls needs tls\.secretName and tls\.clientCa\.secretName/,
    ],
    [
      "postgres without the database URL's Secret",
      "storage: postgres\nauth: { allowUnauthenticated: true }",
      /postgres needs postgres\.databaseUrlSecret\.name/,
    ],
    [
      "jsonl replicas routed by nothing",
      "jsonl: { replicas: 3 }\nauth: { allowUnauthenticated: true }",
      /jsonl\.replicas is 3: .*x-session-id/,
    ],
    [
      "a setting the chart sets itself",
      "settings: { listen: '127.0.0.1:1' }\nauth: { allowUnauthenticated: true }",
      /settings\.listen is set by the chart/,
    ],
    ["memory storage", "storage: memory\nauth: { allowUnauthenticated: true }", /storage/],
  ])("refuses to render %s", async (_, values, message) => {
    const result = await helm(["template", RELEASE, CHART], values);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});
