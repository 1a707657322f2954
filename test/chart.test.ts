// The one line-chart renderer (src/server/web/chart.js) from Node: the standalone SVG the base
// model's card writes, with the same structure the web page and the demo report draw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { svgLineChart } from '../src/app/report/chart.js';

test('a standalone SVG: namespace, size, styles, axes, one polyline per series, escaped names', async () => {
  const svg = await svgLineChart({
    title: 'loss <&>',
    xLabel: 'step',
    yLabel: 'CLIP loss',
    series: [
      { name: 'train "a"', points: [[10, 2.5], [20, 2.0], [30, NaN], [40, 1.5]] },
      { name: 'val', points: [[10, 2.6], [40, 1.9]] },
    ],
    dots: false,
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 640 \d+" width="640" height="\d+"/);
  assert.ok(svg.endsWith('</svg>'));
  assert.match(svg, /<style>[^<]*\.chart-grid\{stroke:#e5e7eb\}/);
  assert.ok(svg.includes('<title>loss &lt;&amp;&gt;</title>'));
  assert.ok(svg.includes('>CLIP loss</text>') && svg.includes('rotate(-90)'));
  const lines = [...svg.matchAll(/<g class="chart-series" data-series="([^"]+)"><polyline points="([^"]+)"/g)].map((m) => [m[1], m[2]!.split(' ').length]);
  assert.deepEqual(lines, [['train &quot;a&quot;', 3], ['val', 2]], 'the NaN point is left out');
  assert.ok(!svg.includes('<circle'), 'no dots when dots is false');
  // Balanced markup: every opened element is closed.
  const opened = [...svg.matchAll(/<([a-z]+)[\s>]/g)].length;
  const closed = [...svg.matchAll(/<\/([a-z]+)>/g)].length;
  assert.equal(opened, closed);
});

test('dots carry a tooltip each; a chart without finite points says so', async () => {
  const svg = await svgLineChart({ title: 'm', series: [{ name: 'R@1', points: [[1, 0.5], [2, 0.75]] }] });
  assert.deepEqual([...svg.matchAll(/<circle [^>]+><title>([^<]+)<\/title><\/circle>/g)].map((m) => m[1]), ['R@1, epoch 1: 0.5', 'R@1, epoch 2: 0.75']);
  assert.match(await svgLineChart({ title: 'empty', series: [{ name: 'x', points: [[1, NaN]] }] }), /class="chart-empty">no values yet</);
});
