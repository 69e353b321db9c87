// GET /openapi.json, built from the same schemas that validate the requests.
import type { CompiledRoute } from './routes.js';
import { ERRORS } from '../errors.js';

const envelope = (data: object) => ({
  type: 'object',
  required: ['success', 'data', 'request_id', 'duration_ms'],
  properties: { success: { const: true }, data, request_id: { type: 'string', format: 'uuid' }, duration_ms: { type: 'number' } },
});

const errorEnvelope = {
  type: 'object',
  required: ['success', 'error', 'request_id', 'duration_ms'],
  properties: {
    success: { const: false },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { enum: Object.keys(ERRORS) },
        message: { type: 'string' },
        details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
    request_id: { type: 'string', format: 'uuid' },
    duration_ms: { type: 'number' },
  },
};

/** The schema of an answer outside the envelope. */
function produced(type: string): object {
  if (type === 'application/json') return { type: 'object' };
  return type === 'application/octet-stream' ? { type: 'string', format: 'binary' } : { type: 'string' };
}

type ObjectSchema = { properties?: Record<string, object>; required?: string[] };

function queryParameters(schema: object): object[] {
  const s = schema as ObjectSchema;
  return Object.entries(s.properties ?? {}).map(([name, prop]) => ({
    name,
    in: 'query',
    required: (s.required ?? []).includes(name),
    schema: prop,
  }));
}

/** Every `:name` of the path template, described by the params schema when it has one. */
function pathParameters(path: string, schema: object): object[] {
  const props = (schema as ObjectSchema).properties ?? {};
  return [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: props[name!] ?? { type: 'string' },
  }));
}

export function openApiDocument(routes: CompiledRoute[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    const { definition, schemas } = route;
    const path = definition.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const operation: Record<string, unknown> = {
      operationId: `${definition.method.toLowerCase()}${definition.path.replace(/[^A-Za-z0-9]+/g, '_')}`,
      summary: definition.summary,
      tags: [route.owner],
      parameters: [...queryParameters(schemas.query), ...pathParameters(definition.path, schemas.params)],
      responses: {
        [String(definition.status ?? 200)]: {
          description: 'Success',
          content: definition.produces
            ? { [definition.produces]: { schema: produced(definition.produces) } }
            : { 'application/json': { schema: envelope(definition.schema?.response ?? {}) } },
        },
        default: { description: 'An error from the catalogue', content: { 'application/json': { schema: errorEnvelope } } },
      },
    };
    if (definition.auth === false) operation.security = [];
    if (schemas.body) operation.requestBody = { required: false, content: { 'application/json': { schema: schemas.body } } };
    (paths[path] ??= {})[definition.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'hearth control API', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
