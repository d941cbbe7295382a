/** The `backbones` service of the contract: the listing lives on the data floor (src/core/backbones). */
export { listBackbones } from '../backbones/list';
