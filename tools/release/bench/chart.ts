/**
 * The benchmark chart: grouped horizontal bars (workload × tool, seconds) as an SVG string,
 * rendered by Apache ECharts' server-side SVG renderer (no DOM, no canvas).
 */
import * as echarts from 'echarts';

export interface ChartRow {
  workload: string;
  tool: string;
  seconds: number;
}

export function renderChart(rows: readonly ChartRow[], title: string): string {
  const workloads = [...new Set(rows.map((r) => r.workload))];
  const tools = [...new Set(rows.map((r) => r.tool))];
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 900, height: 140 + workloads.length * 26 * tools.length });
  chart.setOption({
    animation: false,
    backgroundColor: '#ffffff',
    title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
    legend: { top: 28, data: tools },
    grid: { left: 330, right: 60, top: 64, bottom: 30 },
    xAxis: { type: 'value', name: 's', axisLabel: { formatter: '{value}' } },
    yAxis: { type: 'category', data: workloads, inverse: true },
    series: tools.map((tool) => ({
      name: tool,
      type: 'bar',
      label: { show: true, position: 'right', formatter: (p: { value: number }) => p.value.toFixed(2), fontSize: 10 },
      data: workloads.map((w) => rows.find((r) => r.workload === w && r.tool === tool)?.seconds ?? 0),
    })),
  });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return `${svg}\n`;
}
