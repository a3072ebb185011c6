// An in-memory stand-in for the Jupyter server behind ServerConnection, the outermost seam:
// tests declare what each route answers and read back every request the panel made.
// Installed with
//   jest.mock('@jupyterlab/services', () => jest.requireActual('./fakeServer').services);

export const BASE_URL = 'http://127.0.0.1:8888/jl/';

export interface IRecordedRequest {
  method: string;
  /** The path under `{base_url}labtrack/`, e.g. "api/2.0/labtrack/server-info". */
  path: string;
  query: URLSearchParams;
  body: any;
  url: string;
}

/** [status, JSON body] or [status, text body, content type]. */
export type Reply = [number, unknown] | [number, string, string];
type Handler = (request: IRecordedRequest) => Reply | Promise<Reply>;

class FakeServer {
  requests: IRecordedRequest[] = [];
  down = false;
  private routes = new Map<string, Handler>();

  reset(): void {
    this.requests = [];
    this.routes.clear();
    this.down = false;
  }

  /** Answer `method path` (path under the mount point) with a fixed reply or a function. */
  on(method: string, path: string, reply: Reply | Handler): void {
    this.routes.set(`${method} ${path}`, typeof reply === 'function' ? reply : () => reply);
  }

  called(method: string, path: string): IRecordedRequest[] {
    return this.requests.filter(r => r.method === method && r.path === path);
  }

  async handle(url: string, init: RequestInit): Promise<Response> {
    if (this.down) {
      // What ServerConnection.makeRequest throws when fetch fails (a NetworkError).
      throw new TypeError('Failed to fetch');
    }
    const parsed = new URL(url);
    const mount = new URL(BASE_URL).pathname + 'labtrack/';
    const method = (init.method ?? 'GET').toUpperCase();
    if (!parsed.pathname.startsWith(mount)) {
      return new Response('<html>404: Not Found</html>', { status: 404 });
    }
    const request: IRecordedRequest = {
      method,
      path: decodeURIComponent(parsed.pathname.slice(mount.length)),
      query: parsed.searchParams,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
      url
    };
    this.requests.push(request);
    const handler = this.routes.get(`${method} ${request.path}`);
    if (!handler) {
      // jupyter_server's answer for a path nobody serves: an HTML page.
      return new Response('<html>404: Not Found</html>', {
        status: 404,
        headers: { 'Content-Type': 'text/html' }
      });
    }
    const reply = await handler(request);
    if (reply.length === 3) {
      return new Response(reply[1], { status: reply[0], headers: { 'Content-Type': reply[2] } });
    }
    return new Response(JSON.stringify(reply[1]), {
      status: reply[0],
      headers: { 'Content-Type': 'application/json' }
    });
  }
}

export const server = new FakeServer();

export const services = {
  ServerConnection: {
    makeSettings: (options: Record<string, unknown> = {}) => ({
      baseUrl: BASE_URL,
      ...options
    }),
    makeRequest: (url: string, init: RequestInit) => server.handle(url, init)
  }
};
