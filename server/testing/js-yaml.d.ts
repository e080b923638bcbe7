// js-yaml is in node_modules through @apidevtools/swagger-parser (the OpenAPI test's) and ships no
// types: the one function the deploy test uses.
declare module 'js-yaml' {
  export function load(text: string, options?: { filename?: string; json?: boolean }): unknown;
}
