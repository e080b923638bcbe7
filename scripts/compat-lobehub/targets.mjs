// The two LobeChat releases the compatibility run drives, and what is replaced in each bundle.
//
// Stubs (files in ./stubs) replace what cannot run outside a deployed LobeChat: its sign-in check,
// its database, the Next.js framework. "Unreached" packages are imported by modules on the path
// but never called by the providers the run drives (LobeChat's runtime map imports every provider's
// SDK; its server utils import every sign-in service); they are replaced by a module that throws if
// anything in it is ever used, so a wrong assumption fails loudly instead of passing silently.
// Both releases drive the OpenAI provider; 2.x also drives New API, whose router sends Claude and
// Gemini through their own SDKs, so its bundle has those two, at the versions it pins.

/** The SDKs LobeChat's New API provider sends Claude and Gemini through (2.x runs them). */
const CLAUDE_GEMINI_SDKS = ['@anthropic-ai/sdk', '@google/genai'];

/** Other providers' SDKs: `packages/model-runtime/src/runtimeMap.ts` imports them all. */
const OTHER_PROVIDER_SDKS = [
  '@aws-sdk/client-bedrock-runtime',
  '@azure-rest/ai-inference',
  '@azure/core-auth',
  '@fal-ai/client',
  '@huggingface/inference',
  'ollama',
  'replicate',
];

export const TARGETS = [
  {
    id: '2.x',
    spec: '@lobehub/lobehub@2.1.26',
    label: 'LobeHub 2.1.26',
    harness: 'harness-2.x.mjs',
    stubFiles: {
      'src/app/(backend)/middleware/auth/index': 'stubs/lobehub-auth.mjs',
      'packages/database/src/models/aiProvider': 'stubs/lobehub-ai-provider-model.mjs',
    },
    stubPackages: { 'next/server': 'stubs/next-server.mjs' },
    unreached: [
      ...OTHER_PROVIDER_SDKS,
      // `packages/const/src/klavis.ts` and `lobehubSkill.ts`: brand icons (React components) for
      // the hosted-tools picker, only referenced, never rendered outside the UI.
      '@icons-pack/react-simple-icons',
    ],
  },
  {
    id: '1.x',
    spec: '@lobehub/chat@1.143.3',
    label: 'LobeChat 1.143.3',
    harness: 'harness-1.x.mjs',
    stubFiles: { 'src/app/(backend)/middleware/auth/index': 'stubs/lobechat-auth.mjs' },
    stubPackages: { 'next/server': 'stubs/next-server.mjs' },
    unreached: [
      ...CLAUDE_GEMINI_SDKS,
      ...OTHER_PROVIDER_SDKS,
      // `packages/utils/src/server/index.ts` (imported by the plugin gateway route for its XOR
      // decoder) re-exports sign-in helpers that load these on demand, and Vercel's geo headers.
      'next',
      'next-auth',
      '@auth/core',
      '@clerk/nextjs',
      '@vercel/functions',
    ],
  },
];
