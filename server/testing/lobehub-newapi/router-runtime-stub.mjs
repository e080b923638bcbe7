// Replaces packages/model-runtime/src/core/RouterRuntime/index.ts in the bundle: the New API module
// builds its chat runtime with createRouterRuntime at load, which pulls in every provider's SDK. The
// pricing path (`params.models`) never uses that runtime; a class that throws when constructed says
// so loudly if that ever changes.
export const createRouterRuntime = () =>
  class UnreachedRouterRuntime {
    constructor() {
      throw new Error('the New API chat runtime is not bundled for the pricing test');
    }
  };
