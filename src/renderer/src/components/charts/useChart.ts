/**
 * The life of an app chart in one place (instead of a copy per component): build it from the
 * current theme when mounted, rebuild when the colour scheme changes (dark-mode grids and text
 * follow), stop animating and resize before printing, destroy when unmounted.
 */
import { onBeforeUnmount, onMounted, type Ref } from 'vue';
import { Chart, type ChartConfiguration, type ChartType, type DefaultDataPoint } from 'chart.js';
import { chartTheme, type ChartTheme } from './theme';

export interface ChartHandle<T extends ChartType, D = DefaultDataPoint<T>> {
  /** The current chart, or null before mount / after unmount. */
  get(): Chart<T, D> | null;
  /** Build anew (after changes an in-place update cannot express). */
  rebuild(): void;
}

export function useChart<T extends ChartType, D = DefaultDataPoint<T>>(canvas: Ref<HTMLCanvasElement | null>, configure: (theme: ChartTheme) => ChartConfiguration<T, D>): ChartHandle<T, D> {
  let chart: Chart<T, D> | null = null;
  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  const printing = window.matchMedia('print');

  function rebuild(): void {
    if (!canvas.value) return;
    chart?.destroy();
    const config = configure(chartTheme());
    config.options = {
      responsive: true,
      maintainAspectRatio: false,
      devicePixelRatio: Math.max(window.devicePixelRatio, 2),
      ...config.options,
      ...(printing.matches ? { animation: false } : {}),
    } as typeof config.options;
    chart = new Chart<T, D>(canvas.value, config);
  }

  function beforePrint(): void {
    if (!chart) return;
    if (chart.options) chart.options.animation = false;
    chart.resize();
    chart.update('none');
  }

  onMounted(() => {
    rebuild();
    window.addEventListener('beforeprint', beforePrint);
    scheme.addEventListener('change', rebuild);
  });
  onBeforeUnmount(() => {
    window.removeEventListener('beforeprint', beforePrint);
    scheme.removeEventListener('change', rebuild);
    chart?.destroy();
    chart = null;
  });
  return { get: () => chart, rebuild };
}
