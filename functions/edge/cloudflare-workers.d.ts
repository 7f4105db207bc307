// Ambient declaration of the one workerd module the edge imports (the real one is provided by
// workerd at runtime). Extending DurableObject is what enables RPC methods on a DO class.
declare module "cloudflare:workers" {
  export abstract class DurableObject<Env = unknown> {
    protected readonly ctx: import("./runtime").DurableObjectState;
    protected readonly env: Env;
    constructor(ctx: import("./runtime").DurableObjectState, env: Env);
  }
}
