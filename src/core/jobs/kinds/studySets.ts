/** Which rows of a project dataset a study set takes; shared by the black-box and white-box tune stages. */
import type { DatasetRows } from '../../../shared/contract/study';
import { NmlabError } from '../../../shared/errors';
import type { LoadedDataset } from '../../datasets/store';

/** Indices of a dataset's rows that a set takes (its split and domain). */
export function setRows(ds: LoadedDataset, set: DatasetRows): number[] {
  const domain = set.domain === undefined ? -1 : ds.manifest.domains.indexOf(set.domain);
  if (set.domain !== undefined && domain < 0) throw new NmlabError('BAD_FILE', `dataset "${set.dataset}" has no domain "${set.domain}" (it has ${ds.manifest.domains.join(', ')})`);
  const part = set.split === 'train' ? 0 : set.split === 'test' ? 1 : -1;
  if (part >= 0 && !ds.split) throw new NmlabError('BAD_FILE', `dataset "${set.dataset}" has no train/test split`);
  const rows: number[] = [];
  for (let i = 0; i < ds.labels.length; i++) {
    if (part >= 0 && ds.split![i] !== part) continue;
    if (domain >= 0 && ds.domains[i] !== domain) continue;
    rows.push(i);
  }
  return rows;
}
