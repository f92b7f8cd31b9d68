// Interactive API docs (/api/docs): Swagger UI bundled into the build, so the page works
// offline and fetches nothing from a CDN.
import 'swagger-ui-dist/swagger-ui.css';
import { SwaggerUIBundle } from 'swagger-ui-dist';

SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
