// One place that builds ajv validators and turns their errors into `{path, message}` details.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import type { ErrorDetail } from './errors.js';

// ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv) => Ajv }).default;

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes, strict: false });
  addFormats(ajv);
  return ajv;
}

// Bodies and config are checked as sent; query strings and params are text, so they are coerced. The
// coercing instance is made when a route's query or params are first compiled (at its first request), not
// at boot, where only the config and the plugins' options are compiled.
const strict = makeAjv(false);
let coercing: Ajv | undefined;

export type Validator = ValidateFunction;

export function compileSchema(schema: object, options: { coerce?: boolean } = {}): Validator {
  return (options.coerce ? (coercing ??= makeAjv(true)) : strict).compile(schema);
}

/**
 * Throws what compileSchema would throw for a schema that is not valid JSON Schema ("schema is invalid:
 * ..."), without compiling it: checked against the meta-schema, which the first compile has already built.
 */
export function checkSchema(schema: object): void {
  strict.validateSchema(schema, true);
}

/** ajv errors as details whose `path` is a JSON pointer to the offending key or value. */
export function errorDetails(errors: ErrorObject[] | null | undefined, prefix = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const e of errors ?? []) {
    let path = prefix + e.instancePath;
    let message: string;
    switch (e.keyword) {
      case 'additionalProperties':
        path += `/${String(e.params.additionalProperty)}`;
        message = `unknown key "${String(e.params.additionalProperty)}"`;
        break;
      case 'required':
        path += `/${String(e.params.missingProperty)}`;
        message = 'is required';
        break;
      case 'enum':
        message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      default:
        message = e.message ?? 'is invalid';
    }
    details.push({ path: path || '/', message });
  }
  return details;
}

export function describeDetails(details: ErrorDetail[]): string {
  return details.map((d) => `${d.path}: ${d.message}`).join('; ');
}
