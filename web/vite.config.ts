import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Built straight into the Python package, which serves it (and ships it in the wheel).
export default defineConfig({
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../src/modalchorus/server/static', import.meta.url)),
    emptyOutDir: true,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8765' },
  },
});
