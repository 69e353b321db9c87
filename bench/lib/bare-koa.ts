// The baseline for bench/api.ts: a bare Koa 3 + @koa/router hello-world JSON server, nothing else.
// Usage: node dist/bench/lib/bare-koa.js <port>   (prints {"port": N} on stdout once it listens)
import Router from '@koa/router';
import Koa from 'koa';

const port = Number(process.argv[2] ?? 0);
const app = new Koa();
const router = new Router();
router.get('/hello', (ctx) => {
  ctx.body = { hello: 'world' };
});
app.use(router.routes());
app.use(router.allowedMethods());

const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : port })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
