/**
 * A {@link FeatureSet} from a features `.npy` (M×D) and a labels `.npy` (M), validated with
 * messages that name the files (DESIGN §7). Features are held as float32, the training dtype.
 */
import { readNpy } from '../arrays/npy';
import { checkSameCount, featureMatrix, labelVector } from '../arrays/validate';
import type { FeatureSet } from './data';

export async function loadFeatureSet(featuresFile: string, labelsFile: string): Promise<FeatureSet> {
  // One after the other, so that when both are unreadable the error always names the features file.
  const fx = await readNpy(featuresFile);
  const fy = await readNpy(labelsFile);
  const x = featureMatrix(fx, featuresFile);
  const labels = labelVector(fy, labelsFile);
  checkSameCount(featuresFile, x.m, labelsFile, labels.length);
  const features = x.data instanceof Float32Array ? x.data : Float32Array.from(x.data);
  return { features, labels, rows: x.m, dim: x.d, name: featuresFile, labelsName: labelsFile };
}
