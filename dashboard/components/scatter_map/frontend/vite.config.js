// Builds the component into ../build (committed: users need no Node).
// Fixed file names and no hashes, so `npm ci && npm run build` reproduces the committed files byte for byte.
import { defineConfig } from 'vite';
import { markerShapes } from './marker-shapes.js';
import { inlinedLicences } from './inlined-licenses.js';

export default defineConfig({
  base: './',
  plugins: [markerShapes(), inlinedLicences()],
  build: {
    outDir: '../build',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    reportCompressedSize: false,
    license: { fileName: 'THIRD_PARTY_LICENSES.md' },
    rollupOptions: {
      output: {
        entryFileNames: 'assets/map.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/[name][extname]',
      },
    },
  },
});
