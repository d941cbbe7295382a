/**
 * `backbone`: open an .onnx with onnxruntime in a worker, to show its interface (inspect), to
 * copy it into the project with its backbone.json (import), or to check its preprocessing on
 * a dataset sample (check). Kept out of the UI's process:
 * a model that crashes the runtime ends this worker, not the app (DESIGN §2, §7).
 */
import { basename, extname } from 'node:path';
import type { BackboneInspection } from '../../../shared/contract/backbonesService';
import { importBackbone, loadBackbone, staticFeatureDim } from '../../features/backbone';
import { inspectOnnx } from '../../features/onnx';
import { checkPreprocessing } from '../../features/check';
import { inferFromInput } from '../../images/preprocess';
import type { JobRun } from './types';

export const run: JobRun<'backbone'> = async (spec, ctx) => {
  const a = spec.action;
  if (a.op === 'inspect') {
    ctx.progress(0, 1, `opening ${a.file}`);
    const insp = await inspectOnnx(a.file);
    ctx.progress(1, 1, `${insp.inputs.length} input(s), ${insp.outputs.length} output(s)`);
    // A backbone.json beside the model that names it (e.g. one NMLab exported) says more than
    // the input shape: its preprocessing is offered as the starting point, in timm's order.
    const sibling = await loadBackbone(a.file).then(
      (ref) => ref.manifest,
      () => undefined,
    );
    const result: BackboneInspection = {
      ...insp,
      featureDims: insp.outputs.map((o) => staticFeatureDim(o)),
      inferred: { ...inferFromInput(insp.inputs[0]), ...(sibling?.preprocess ?? {}) },
      suggestedId: sibling?.id ?? (basename(a.file, extname(a.file)).replace(/[^A-Za-z0-9_-]+/g, '-') || 'backbone'),
    };
    return result;
  }
  if (a.op === 'check') {
    ctx.progress(0, 1, `running ${a.file} on ${a.sample} samples of "${a.dataset}"`);
    const result = await checkPreprocessing(a.projectDir, a.dataset, await loadBackbone(a.file), {
      ...(a.outputNode ? { outputNode: a.outputNode } : {}),
      ...(a.classifierNode ? { classifierNode: a.classifierNode } : {}),
      preprocess: a.preprocess,
      sample: a.sample,
    });
    ctx.progress(1, 1, result.warnings.length ? `${result.warnings.length} warning(s)` : 'preprocessing looks right');
    return result;
  }
  ctx.progress(0, 1, `importing ${a.file}`);
  const manifest = await importBackbone(a.projectDir, a.file, {
    ...(a.id ? { id: a.id } : {}),
    ...(a.outputNode ? { outputNode: a.outputNode } : {}),
    preprocess: a.preprocess,
    ...(a.license ? { license: a.license } : {}),
  });
  ctx.progress(1, 1, `imported backbone "${manifest.id}"`);
  return manifest;
};
