/**
 * Registers tfjs's gradient functions, which training needs (`tf.grads`, `variableGrads`).
 *
 * tfjs-core's Node bundle (`tf-core.node.js`, its `main`) ships no gradients; they exist only
 * as the package's ES-module sources (`dist/register_all_gradients.js`), whose relative imports
 * have no `.js` extension and whose package is not `"type": "module"`. Bundlers (Vite, vitest,
 * electron-vite) cope with that; plain Node (the CLI, tsx, forked workers) does not. There we
 * install a module hook, for files under tfjs-core's `dist/` only, that adds the missing
 * extension and loads them as ES modules. The ES-module copy registers into the same global
 * registries and engine as the Node bundle (tfjs keeps both on the global object), and its
 * `Tensor` accepts the bundle's tensors (tfjs defines `Symbol.hasInstance` for this case).
 */
import * as tf from '@tensorflow/tfjs-core';
import { register } from 'node:module';

const HOOKS = `
const inTfjsCore = (u) => typeof u === 'string' && u.includes('/@tensorflow/tfjs-core/dist/');
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (inTfjsCore(context.parentURL) && specifier.startsWith('.') && !specifier.endsWith('.js')) return next(specifier + '.js', context);
    throw err;
  }
}
export async function load(url, context, next) {
  if (inTfjsCore(url) && url.endsWith('.js') && !/tf-core[^/]*\\.js$/.test(url)) return next(url, { ...context, format: 'module' });
  return next(url, context);
}
`;

let done: Promise<void> | null = null;

/** Make sure every tfjs gradient is registered (idempotent, once per process). */
export function ensureGradients(): Promise<void> {
  done ??= (async () => {
    if (tf.getGradient('Sum') !== undefined) return;
    // Inside a vitest worker the bundler resolves the sources itself; anywhere else install the
    // hook first (a failed first import would stay cached as failed). The test is vitest's own
    // per-process global, not the VITEST variable, which child processes inherit.
    if (!('__vitest_worker__' in globalThis)) register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    if (tf.getGradient('Sum') === undefined) throw new Error('tfjs gradients did not register');
  })();
  return done;
}
