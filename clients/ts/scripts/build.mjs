// Builds the package: ESM and CommonJS JavaScript with type declarations in dist/, and a copy of
// the service's .proto files in proto/ (both are shipped; neither is committed).
import { execFileSync } from "node:child_process";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

rmSync(`${packageDir}/dist`, { recursive: true, force: true });
rmSync(`${packageDir}/proto`, { recursive: true, force: true });
for (const project of ["tsconfig.build.json", "tsconfig.cjs.json"]) {
  execFileSync(process.execPath, [tsc, "-p", project], { cwd: packageDir, stdio: "inherit" });
}
// dist/cjs holds CommonJS inside a "type": "module" package.
writeFileSync(`${packageDir}/dist/cjs/package.json`, '{\n  "type": "commonjs"\n}\n');
cpSync(`${packageDir}/../../proto`, `${packageDir}/proto`, { recursive: true });
