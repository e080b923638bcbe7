// LobeChat's New API provider as LobeHub 2.1.26 ships it (packages/model-runtime/src/providers/newapi),
// bundled with the OpenAI SDK it pins, for new-api-pricing.lobehub.test.ts: `params.models` is the
// code that fetches `/v1/models` and `/api/pricing` and turns New API's ratios into the dollar prices
// LobeChat's model list shows. Nothing of it is copied; see bundle-newapi.ts.
export { params } from 'lobehub:packages/model-runtime/src/providers/newapi/index';
export { default as OpenAI } from 'openai';
