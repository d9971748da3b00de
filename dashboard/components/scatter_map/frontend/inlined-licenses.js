// regl-scatterplot's published bundle inlines its own dependencies (camera, matrix, triangulation and
// line code), so Vite's licence file cannot see them: their licence texts are added here, in a fixed
// order, from the installed packages (pinned by package-lock.json).
import { readFileSync, readdirSync } from 'node:fs';

const INLINED = ['@flekschas/utils', 'camera-2d-simple', 'dom-2d-camera', 'earcut', 'gl-matrix', 'kdbush', 'regl-line'];

function licenceOf(name) {
  const dir = new URL(`./node_modules/${name}/`, import.meta.url);
  let version = '?';
  let licence = '?';
  try {
    const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'));
    version = pkg.version; licence = pkg.license;
  } catch { return null; }
  const file = readdirSync(dir).filter((f) => /^licen[sc]e/i.test(f)).sort()[0];
  const text = file ? readFileSync(new URL(file, dir), 'utf8').trim() : `(${licence}; no licence file in the package)`;
  return `## ${name} - ${version} (${licence}), inlined in regl-scatterplot's bundle\n\n${text}\n`;
}

export function inlinedLicences() {
  return {
    name: 'dfatlas-inlined-licences',
    generateBundle() {
      const parts = INLINED.map(licenceOf).filter(Boolean);
      this.emitFile({ type: 'asset', fileName: 'THIRD_PARTY_LICENSES_INLINED.md',
        source: `# Licences of code inlined by regl-scatterplot\n\n${parts.join('\n')}` });
    },
  };
}
