import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Built straight into the Python package, which serves it (and ships it in the wheel).
export default defineConfig({
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../src/modalchorus/server/static', import.meta.url)),
    emptyOutDir: true,
    // The app, and the API docs page (served at /api/docs; Swagger UI is ~1.8 MB, loaded
    // only there).
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      input: {
        main: fileURLToPath(new URL('index.html', import.meta.url)),
        docs: fileURLToPath(new URL('docs.html', import.meta.url)),
      },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8765' },
  },
});
