/**
 * The report's environment section: the machine and the versions that matter for the
 * numbers, read without running anything heavy (no backend probing, no matmul timing; the
 * doctor does that, and its latest report is added when the session has one).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { arch, cpus, platform, totalmem } from 'node:os';
import type { EnvironmentReport } from '../../shared/contract/environment';
import type { ReportEnvironment } from '../../shared/contract/reports';
import { appRoot, appVersion } from '../paths';

/** A dependency's version from its own package.json, null when it is not installed. */
function packageVersion(name: string): string | null {
  try {
    const req = createRequire(join(appRoot(), 'package.json'));
    const pkg = req(`${name}/package.json`) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/** This machine now, plus the backends the results name and the doctor's last report. */
export function environmentSnapshot(backendsUsed: Iterable<string>, doctor: EnvironmentReport | null = null): ReportEnvironment {
  const list = cpus();
  return {
    platform: platform(),
    arch: arch(),
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    versions: {
      nmlab: appVersion(),
      node: process.versions.node,
      tfjs: packageVersion('@tensorflow/tfjs-core'),
      onnxruntime: packageVersion('onnxruntime-node'),
      electron: process.versions.electron ?? null,
      chrome: process.versions.chrome ?? null,
    },
    backendsUsed: [...new Set(backendsUsed)].filter(Boolean).sort(),
    doctor: doctor
      ? {
          tfjsBackend: doctor.tfjs.chosen,
          matmulSize: doctor.matmul.size,
          gflops: doctor.matmul.gflops,
          onnxruntime: doctor.onnxruntime.loaded ? doctor.onnxruntime.executionProviders.map((e) => e.name).join(', ') || 'cpu' : 'not loaded',
          measuredAt: doctor.measuredAt,
        }
      : null,
  };
}
