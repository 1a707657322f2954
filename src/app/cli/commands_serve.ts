// `clipfit serve`: the HTTP search service and its web page. Runs until SIGINT/SIGTERM, then closes
// the server (in-flight requests finish) and the index (flushed).

import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { serve } from '../../server/server.js';

type Print = (line: string) => void;

const intIn = (flag: string, min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(flag, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
};

interface ServeFlags {
  model: string;
  int8?: boolean;
  efSearch?: number;
  compare?: string;
  index: string;
  port: number;
  host: string;
  token?: string;
  reindex?: boolean;
  cors?: string;
  allowedHost: string[];
  allowRoot?: string;
  allowRemoteUris?: boolean;
  maxUploadMb: number;
  threads?: number;
}

/** `signal` stops the server as SIGINT/SIGTERM do (tests, embedding). */
export function registerServeCommand(program: Command, print: Print = (l) => console.log(l), opts: { signal?: AbortSignal } = {}): void {
  program
    .command('serve')
    .description('Serve text-to-image search over HTTP (JSON API, web page, Prometheus metrics) with a CLIP model')
    .requiredOption('--model <model>', 'a fit() artifact, a model folder, name::tag (from the cache) or a run name')
    .option('--compare <model>', 'a second model to compare results with (e.g. the pretrained one); keeps its own index of the same images')
    .option('--index <name>', 'index name (under $CLIPFIT_HOME/indexes/), folder, or postgres://…/db[#name] (shared by replicas)', 'default')
    .option('--port <n>', 'TCP port (0: any free port)', intIn('--port', 0, 65535), 8080)
    .option('--host <host>', 'interface to listen on; anything but loopback needs --token', '127.0.0.1')
    .option('--token <token>', 'require Authorization: Bearer <token> on every route but /healthz (default $CLIPFIT_TOKEN)')
    .option('--reindex', 'rebuild, from the stored images, any index made by another model than the one served')
    .option('--cors <origin>', 'allow cross-origin requests from this origin (off by default)')
    .option('--allowed-host <name>', 'without --token, also answer requests whose Host is NAME (repeatable); others are refused against DNS rebinding', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--allow-root <dir>', 'let requests name local image files inside this folder (off by default)')
    .option('--allow-remote-uris', 'fetch http(s) image URIs named in requests (off by default; public addresses only, no redirects into private ones)')
    .option('--max-upload-mb <n>', 'largest uploaded image in MiB', intIn('--max-upload-mb', 1, 1024), 10)
    .option('--threads <n>', 'CPU threads for the models', intIn('--threads', 1, 1024))
    .option('--ef-search <n>', 'HNSW candidate list of every search: higher finds more of the true nearest, slower (default: the index\'s own; pgvector 200)', intIn('--ef-search', 1, 4096))
    .option('--int8', 'encode with int8 towers (about 2-3× faster on CPUs with VNNI; the index records them as another model)')
    .addHelpText(
      'after',
      '\nThe web page is at http://HOST:PORT/, the API description at /openapi.json.\n\nExamples:\n  $ clipfit serve --model runs/shoes/artifact --compare ViT-B-32::openai --index shoes\n  $ clipfit serve --model brave-otter --host 0.0.0.0 --token "$(openssl rand -hex 16)"',
    )
    .action(async (o: ServeFlags) => {
      const token = o.token ?? process.env['CLIPFIT_TOKEN'];
      print(`loading ${o.model}${o.compare ? ` and ${o.compare}` : ''}…`);
      const server = await serve({
        model: o.model,
        ...(o.compare ? { compare: o.compare } : {}),
        index: o.index,
        port: o.port,
        host: o.host,
        ...(token ? { token } : {}),
        reindex: !!o.reindex,
        ...(o.cors ? { cors: o.cors } : {}),
        ...(o.allowedHost.length ? { allowedHosts: o.allowedHost } : {}),
        ...(o.allowRoot ? { allowRoot: o.allowRoot } : {}),
        allowRemoteUris: !!o.allowRemoteUris,
        limits: { maxUploadBytes: o.maxUploadMb * 1024 * 1024 },
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.int8 ? { int8: true } : {}),
        ...(o.efSearch !== undefined ? { efSearch: o.efSearch } : {}),
        log: print,
      });
      const st = server.catalog.status('primary');
      print(`model ${server.encoders.primary.id}${server.encoders.compare ? `, compare ${server.encoders.compare.id}` : ''}`);
      print(`index ${server.catalog.dir}: ${st.size} items${st.ready ? '' : ' (needs --reindex)'}`);
      print(`listening on ${server.url}${token ? ' (bearer token required)' : ''}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          opts.signal?.removeEventListener('abort', stop);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        if (opts.signal?.aborted) stop();
        else opts.signal?.addEventListener('abort', stop);
      });
      print('shutting down…');
      await server.close();
    });
}
