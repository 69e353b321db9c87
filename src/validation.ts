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

/**
 * The errors that say what is wrong with a `oneOf`: a branch of another type than the value (a string
 * where an object was given) is left out with its errors, and the `oneOf` error itself once a branch of
 * the value's type says more. `"http://x"` for a URL-or-object is then `must match pattern "^rediss?://"`
 * alone, not that plus "must be object" plus "must match exactly one schema in oneOf".
 */
function pruneOneOf(errors: ErrorObject[]): ErrorObject[] {
  const drop = new Set<ErrorObject>();
  const retold = new Map<ErrorObject, ErrorObject>();
  for (const one of errors) {
    if (one.keyword !== 'oneOf' || one.params.passingSchemas != null) continue;
    // Each branch's errors, by its number in the oneOf (every branch failed, so every one has some).
    const branches = new Map<string, ErrorObject[]>();
    for (const e of errors) {
      const m = e.schemaPath.startsWith(`${one.schemaPath}/`) ? /^\/(\d+)\//.exec(e.schemaPath.slice(one.schemaPath.length)) : null;
      if (m && e.instancePath.startsWith(one.instancePath)) branches.set(m[1]!, [...(branches.get(m[1]!) ?? []), e]);
    }
    const types: string[] = [];
    for (const list of branches.values()) {
      const wrongType = list.find((e) => e.keyword === 'type' && e.instancePath === one.instancePath);
      if (!wrongType) continue;
      types.push(String(wrongType.params.type));
      for (const e of list) drop.add(e);
    }
    if (types.length < branches.size) drop.add(one);
    // No branch of the value's type: the one thing to say is which types would do.
    else retold.set(one, { ...one, message: `must be ${[...new Set(types)].join(' or ')}` });
  }
  return errors.filter((e) => !drop.has(e)).map((e) => retold.get(e) ?? e);
}

/** ajv errors as details whose `path` is a JSON pointer to the offending key or value. */
export function errorDetails(errors: ErrorObject[] | null | undefined, prefix = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const e of pruneOneOf(errors ?? [])) {
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
      case 'oneOf':
        message = e.params.passingSchemas == null ? (e.message ?? 'is invalid') : 'matches several of its alternatives; it must match exactly one';
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
