// Stacked usage-over-days charts (uPlot), for the dashboard and a user's own page. Days are given
// as the UTC midnight of their date (a local date in whatever zone the report was made in), and the
// axis is labelled in UTC, so each label is that date whatever the browser's own zone.
(function () {
  'use strict';

  var PALETTE = ['#0969da', '#1a7f37', '#bf8700', '#8250df', '#cf222e', '#1b7c83', '#d1490f', '#6e7781'];
  var DAY_MS = 86400000;
  var kit = window.lqKit;
  var intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var pctFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function width(node) { return Math.max(200, Math.floor(node.getBoundingClientRect().width)); }

  /** "2026-11-22" → its UTC midnight in ms. */
  function dayMs(date) { return Date.parse(String(date).slice(0, 10) + 'T00:00:00Z'); }

  /**
   * Per group (the value of `dimension` in each row), a value for each of `days` (dates), biggest
   * group first: what `stacked` draws.
   */
  function series(days, rows, dimension, unit) {
    var index = {};
    days.forEach(function (d, i) { index[String(d).slice(0, 10)] = i; });
    var groups = {};
    var totals = {};
    rows.forEach(function (row) {
      var name = row[dimension] === null || row[dimension] === undefined || row[dimension] === '' ? '(none)' : String(row[dimension]);
      var i = index[String(row.day).slice(0, 10)];
      if (i === undefined) return;
      if (!groups[name]) { groups[name] = days.map(function () { return 0; }); totals[name] = 0; }
      var v = unit === 'usd' ? row.costUsd : row.totalTokens;
      groups[name][i] += v;
      totals[name] += v;
    });
    var names = Object.keys(groups).sort(function (a, b) { return totals[b] - totals[a] || (a < b ? -1 : 1); });
    return { days: days.map(dayMs), names: names, values: names.map(function (n) { return groups[n]; }) };
  }

  /** The dates from one UTC day to another, both included. */
  function utcDays(fromIso, lastIso) {
    var days = [];
    for (var t = dayMs(fromIso); t <= dayMs(lastIso); t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
    return days;
  }

  /** A stacked area chart: each group is drawn as the sum of itself and the groups below it. */
  function stacked(node, data, unit) {
    kit.clear(node);
    if (data.names.length === 0) { node.appendChild(kit.el('p', 'empty', 'No usage in this range.')); return null; }
    var sums = [];
    var running = data.days.map(function () { return 0; });
    data.values.forEach(function (vals) {
      running = running.map(function (r, i) { return r + vals[i]; });
      sums.push(running.slice());
    });
    // Listed top layer first (as the legend reads, top to bottom).
    var order = data.names.map(function (_, i) { return i; }).reverse();
    var fg = css('--fg') || '#1f2328';
    var grid = css('--line') || '#d8dee4';
    var opts = {
      width: width(node),
      height: 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        {
          stroke: fg,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          size: 60,
          values: function (u, splits) {
            return splits.map(function (v) {
              if (unit === 'usd') return '$' + (v >= 100 ? intFormat.format(v) : v.toFixed(2));
              return v >= 1e6 ? pctFormat.format(v / 1e6) + 'M' : v >= 1e3 ? pctFormat.format(v / 1e3) + 'k' : String(v);
            });
          },
        },
      ],
      series: [{}].concat(order.map(function (i, k) {
        var colour = PALETTE[i % PALETTE.length];
        // the bottom layer fills down to zero; every other layer is a band down to the one below it
        return { label: kit.shown(data.names[i]), stroke: colour, fill: k === order.length - 1 ? colour + '88' : undefined, width: 1.5, points: { show: false } };
      })),
      bands: order.slice(0, -1).map(function (i, k) { return { series: [k + 1, k + 2], fill: PALETTE[i % PALETTE.length] + '88' }; }),
    };
    var xs = data.days.map(function (t) { return t / 1000; });
    var plot = new uPlot(opts, [xs].concat(order.map(function (i) { return sums[i]; })), node);
    plot.root.dataset.unit = unit;
    return plot;
  }

  window.lqChart = { series: series, utcDays: utcDays, stacked: stacked, width: width };
})();
