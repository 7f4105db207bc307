// A token bucket: `rate` per second with a burst of the same size. The proxy's connections per
// second and the resolver's questions per second are both bounded by one (docs/sandbox.md,
// "Egress").
export class TokenBucket {
  private tokens: number;
  private refilled = Date.now();

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilled) / 1000) * this.rate);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
