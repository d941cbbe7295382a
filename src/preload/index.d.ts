import type { NmlabBridge } from '../shared/contract/shell';

declare global {
  interface Window {
    /** Present only inside the desktop app (set by the preload); absent in browser mode. */
    nmlab?: NmlabBridge;
  }
}

export {};
