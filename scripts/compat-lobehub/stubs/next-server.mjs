// Stands in for `next/server` (the framework, not installed): LobeChat imports `after` for its
// optional Langfuse traces, which stay off here, and the request/response classes, which are the
// platform's own.
export const after = (task) => {
  void Promise.resolve().then(() => (typeof task === 'function' ? task() : task));
};
export const NextRequest = Request;
export const NextResponse = Response;
