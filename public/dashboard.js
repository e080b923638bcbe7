// The operators' dashboard. The page itself holds no data: it asks for the admin token (kept in
// sessionStorage), then reads the admin API with it. Every text goes in with textContent.
(function () {
  'use strict';

  var TOKEN_KEY = 'lobe-quota-admin-token';
  var DIMENSIONS = ['user', 'project', 'model'];
  var PALETTE = ['#0969da', '#1a7f37', '#bf8700', '#8250df', '#cf222e', '#1b7c83', '#d1490f', '#6e7781'];
  var $ = function (id) { return document.getElementById(id); };

  var state = { unit: 'tokens', usage: null, charts: [] };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // Names (users, projects, models, scopes) come from admins and clients. A control character or a
  // bidi override is shown as an escape (`\x1b`), never left to act on the text around it, and a
  // name is cut with "…" so that a 100 KB one cannot bury the page (the CSS keeps it from widening it).
  var UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  var NAME_CHARS = 60;
  var TITLE_CHARS = 1000;
  function visibleEscape(ch) {
    var code = ch.charCodeAt(0);
    return code <= 0xff ? '\\x' + ('0' + code.toString(16)).slice(-2) : '\\u' + code.toString(16);
  }
  function shown(text, maxChars) {
    var safe = String(text).replace(UNSAFE, visibleEscape);
    var max = maxChars || NAME_CHARS;
    if (safe.length <= max) return safe;
    var cut = safe.slice(0, max - 1);
    return (/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut) + '…';
  }

  var intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var pctFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  var usdFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
  function tokens(n) { return intFormat.format(n); }
  function usd(n) { return usdFormat.format(n); }
  function amount(n, unit) { return unit === 'usd' ? usd(n) : tokens(n) + ' tokens'; }

  function message(text, isError) {
    var m = $('message');
    m.textContent = shown(text, 400);
    m.className = isError ? 'message error' : 'message';
    m.hidden = text === '';
  }

  function HttpError(status, text) { this.status = status; this.message = text; }

  function api(path, token, asText) {
    return fetch(path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (body) {
          var detail = body;
          try { detail = JSON.parse(body).error.message; } catch (e) { /* not JSON */ }
          throw new HttpError(r.status, detail);
        });
      }
      return asText ? r.text() : r.json();
    });
  }

  // ---- budgets -------------------------------------------------------------------------------

  function windowLabel(w) {
    if (!w) return '';
    if (w.kind === 'rolling') return 'rolling ' + w.hours + ' h';
    if (w.kind === 'total' || w.kind === 'all') return 'all time';
    var names = { day: 'daily', week: 'weekly', month: 'monthly' };
    return (names[w.kind] || w.kind) + (w.timeZone ? ' (' + w.timeZone + ')' : '');
  }

  /** Every budget once (a project's budget is listed under each of its users too), fullest first. */
  function budgetsOf(subjects) {
    var seen = {};
    var list = [];
    subjects.forEach(function (s) {
      s.budgets.forEach(function (b) {
        var key = b.id + '|' + b.scope;
        if (seen[key]) return;
        seen[key] = true;
        var own = s.subject.kind === 'global' ? b.scope === 'global' : b.scope === s.subject.kind + ':' + s.subject.id;
        list.push({ budget: b, name: own ? s.subject.name : b.scope });
      });
    });
    return list.sort(function (a, b) { return b.budget.percentage - a.budget.percentage; });
  }

  function drawBudgets(subjects) {
    var list = $('budgets');
    clear(list);
    var budgets = budgetsOf(subjects);
    if (budgets.length === 0) list.appendChild(el('li', 'muted', 'No budgets are set.'));
    budgets.forEach(function (item) {
      var b = item.budget;
      var li = el('li', 'budget status-' + b.status);
      li.dataset.scope = b.scope;
      li.dataset.id = b.id;
      li.dataset.percentage = String(b.percentage);
      var line = el('div', 'budget-line');
      var name = el('span', 'budget-name', shown(item.name));
      name.title = item.name === b.scope ? shown(b.scope, TITLE_CHARS) : shown(item.name, TITLE_CHARS) + ' (' + shown(b.scope, TITLE_CHARS) + ')';
      line.appendChild(name);
      // A budget of some models says which; its fallback rules say where requests go at each level.
      var scopeNote = b.models ? ' · ' + b.models.join(', ') : '';
      line.appendChild(el('span', 'budget-window muted', windowLabel(b.window) + scopeNote));
      li.appendChild(line);
      var parts = [];
      if (b.limitTokens !== null) parts.push(tokens(b.usedTokens) + ' / ' + tokens(b.limitTokens) + ' tokens');
      if (b.limitUsd !== null) parts.push(usd(b.usedUsd) + ' / ' + usd(b.limitUsd));
      var figures = el('div', 'budget-line');
      figures.appendChild(el('span', 'budget-figures', parts.join(' · ')));
      figures.appendChild(el('span', 'pct', pctFormat.format(b.percentage) + '%'));
      li.appendChild(figures);
      var held = [];
      if (b.limitTokens !== null && b.reservedTokens > 0) held.push(tokens(b.reservedTokens) + ' tokens');
      if (b.limitUsd !== null && b.reservedUsd > 0) held.push(usd(b.reservedUsd));
      if (held.length > 0) li.appendChild(el('div', 'budget-held muted small', held.join(' · ') + ' held by requests in flight'));
      if (b.grants && b.grants.length > 0) {
        var extra = [];
        if (b.limitTokens !== null && b.grantedTokens > 0) extra.push('+' + tokens(b.grantedTokens) + ' tokens');
        if (b.limitUsd !== null && b.grantedUsd > 0) extra.push('+' + usd(b.grantedUsd));
        if (extra.length > 0) li.appendChild(el('div', 'budget-granted muted small', 'Limit includes ' + extra.join(' · ') + ' granted'));
      }
      if (b.fallback && b.fallback.length > 0) {
        var rules = b.fallback.map(function (r) { return 'at ' + r.at + ' % → ' + r.to; });
        li.appendChild(el('div', 'budget-fallback muted small', 'Routes ' + rules.join(', ')));
      }
      var bar = el('div', 'bar');
      bar.setAttribute('role', 'progressbar');
      bar.setAttribute('aria-valuemin', '0');
      bar.setAttribute('aria-valuemax', '100');
      bar.setAttribute('aria-valuenow', String(Math.min(100, b.percentage)));
      bar.setAttribute('aria-label', shown(item.name) + ' ' + b.status);
      var fill = el('div', 'fill');
      fill.style.width = Math.min(100, Math.max(0, b.percentage)) + '%';
      bar.appendChild(fill);
      li.appendChild(bar);
      list.appendChild(li);
    });
  }

  // ---- usage charts ----------------------------------------------------------------------------

  var DAY_MS = 86400000;
  function dayStart(iso) { var d = new Date(iso); return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()); }
  function dayKey(ms) { return new Date(ms).toISOString().slice(0, 10); }

  /** Days of the report's range (UTC, as asked), and per group a value for each day. */
  function series(report, dimension, unit) {
    var first = dayStart(report.from);
    var last = dayStart(new Date(Date.parse(report.to) - 1).toISOString());
    var days = [];
    for (var t = first; t <= last; t += DAY_MS) days.push(t);
    var index = {};
    days.forEach(function (t, i) { index[dayKey(t)] = i; });
    var groups = {};
    var totals = {};
    report.rows.forEach(function (row) {
      var name = row[dimension] === null || row[dimension] === undefined || row[dimension] === '' ? '(none)' : String(row[dimension]);
      var i = index[String(row.day).slice(0, 10)];
      if (i === undefined) return;
      if (!groups[name]) { groups[name] = days.map(function () { return 0; }); totals[name] = 0; }
      var v = unit === 'usd' ? row.costUsd : row.totalTokens;
      groups[name][i] += v;
      totals[name] += v;
    });
    var names = Object.keys(groups).sort(function (a, b) { return totals[b] - totals[a] || (a < b ? -1 : 1); });
    return { days: days, names: names, values: names.map(function (n) { return groups[n]; }) };
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function chartWidth(node) { return Math.max(200, Math.floor(node.getBoundingClientRect().width)); }

  /** A stacked area chart: each group is drawn as the sum of itself and the groups below it. */
  function drawChart(node, data, unit) {
    clear(node);
    if (data.names.length === 0) { node.appendChild(el('p', 'empty', 'No usage in this range.')); return null; }
    var stacked = [];
    var running = data.days.map(function () { return 0; });
    data.values.forEach(function (vals) {
      running = running.map(function (r, i) { return r + vals[i]; });
      stacked.push(running.slice());
    });
    // Listed top layer first (as the legend reads, top to bottom).
    var order = data.names.map(function (_, i) { return i; }).reverse();
    var fg = css('--fg') || '#1f2328';
    var grid = css('--line') || '#d8dee4';
    var opts = {
      width: chartWidth(node),
      height: 220,
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
        return { label: shown(data.names[i]), stroke: colour, fill: k === order.length - 1 ? colour + '88' : undefined, width: 1.5, points: { show: false } };
      })),
      bands: order.slice(0, -1).map(function (i, k) { return { series: [k + 1, k + 2], fill: PALETTE[i % PALETTE.length] + '88' }; }),
    };
    var xs = data.days.map(function (t) { return t / 1000; });
    var plot = new uPlot(opts, [xs].concat(order.map(function (i) { return stacked[i]; })), node);
    plot.root.dataset.unit = unit;
    return plot;
  }

  function drawCharts() {
    state.charts.forEach(function (c) { if (c) c.destroy(); });
    state.charts = [];
    if (!state.usage) return;
    DIMENSIONS.forEach(function (d) {
      state.charts.push(drawChart($('chart-' + d), series(state.usage[d], d, state.unit), state.unit));
    });
  }

  function setUnit(unit) {
    state.unit = unit;
    $('unit-tokens').setAttribute('aria-pressed', String(unit === 'tokens'));
    $('unit-usd').setAttribute('aria-pressed', String(unit === 'usd'));
    drawCharts();
  }

  // ---- top consumers, outcomes, alerts ----------------------------------------------------------

  function drawTop(report) {
    var body = $('top').tBodies[0];
    clear(body);
    var rows = report.rows.slice().sort(function (a, b) { return b.costUsd - a.costUsd || b.totalTokens - a.totalTokens; }).slice(0, 10);
    if (rows.length === 0) {
      var tr = el('tr');
      var td = el('td', 'muted', 'No usage in this range.');
      td.colSpan = 4;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    rows.forEach(function (r) {
      var tr = el('tr');
      tr.dataset.user = r.user;
      var who = el('td', 'who', shown(r.user));
      who.title = shown(r.user, TITLE_CHARS);
      tr.appendChild(who);
      tr.appendChild(el('td', 'num requests', tokens(r.requests)));
      tr.appendChild(el('td', 'num tokens', tokens(r.totalTokens)));
      tr.appendChild(el('td', 'num cost', usd(r.costUsd)));
      body.appendChild(tr);
    });
  }

  /** What the response cache saved in the report's range (its totals), when it answered anything. */
  function drawCacheSaved(report) {
    var line = $('cache-saved');
    var t = report.totals || {};
    line.hidden = !(t.cacheHits > 0);
    line.textContent = line.hidden ? '' : 'Response cache: ' + tokens(t.cacheHits) + (t.cacheHits === 1 ? ' answer' : ' answers') + ' served without the upstream, saving ' + tokens(t.savedTokens) + ' tokens and ' + usd(t.savedUsd) + '.';
  }

  /** Sums a counter's samples with the given outcome label from Prometheus text. */
  function counterSum(text, name, outcome) {
    var sum = 0;
    text.split('\n').forEach(function (line) {
      if (line.indexOf(name + '{') !== 0 || line.indexOf('outcome="' + outcome + '"') < 0) return;
      var value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (isFinite(value)) sum += value;
    });
    return sum;
  }

  function drawOutcomes(outcomes, metricsText) {
    var list = $('outcomes');
    clear(list);
    var items = [
      ['cut_off', 'Cut off mid-stream', outcomes.outcomes.cut_off],
      ['client_abort', 'Client aborts', outcomes.outcomes.client_abort],
      ['upstream_error', 'Broken off upstream', outcomes.outcomes.upstream_error],
      ['interrupted', 'Interrupted by a restart', outcomes.outcomes.interrupted],
      ['ok', 'Completed', outcomes.outcomes.ok],
    ];
    if (metricsText !== null) {
      items.unshift(['rate_limited', 'Rate limited', counterSum(metricsText, 'lobe_quota_requests_total', 'rate_limited')]);
      items.unshift(['refused', 'Refused (budget)', counterSum(metricsText, 'lobe_quota_requests_total', 'refused')]);
    }
    items.forEach(function (item) {
      var box = el('div', 'outcome');
      box.dataset.outcome = item[0];
      box.appendChild(el('dt', null, item[1]));
      box.appendChild(el('dd', null, tokens(item[2])));
      list.appendChild(box);
    });
    var note = 'Settled requests from the ledger, ' + outcomes.from.slice(0, 10) + ' to ' + outcomes.to.slice(0, 10) + (outcomes.truncated ? ' (newest ' + tokens(outcomes.scanned) + ' only)' : '') + '.';
    if (metricsText !== null) note += ' Refusals and rate limits are never charged, so they are counted since the server started.';
    $('outcomes-note').textContent = note;
  }

  function drawAlerts(alerts) {
    var list = $('alerts');
    clear(list);
    if (alerts.length === 0) list.appendChild(el('li', 'muted', 'No alerts yet.'));
    alerts.forEach(function (a) {
      var li = el('li', 'alert');
      li.dataset.id = a.id;
      li.dataset.scope = a.scope;
      li.appendChild(el('span', 'alert-level', a.kind === 'threshold' ? a.threshold + ' %' : a.kind));
      var scope = el('span', 'alert-scope', a.subjectName && a.subjectName !== a.scope ? shown(a.subjectName) + ' (' + shown(a.scope) + ')' : shown(a.scope));
      li.appendChild(scope);
      li.appendChild(el('span', 'alert-figures', amount(a.usage, a.unit) + ' of ' + amount(a.limit, a.unit) + ' · ' + pctFormat.format(a.percentage) + '%'));
      var when = el('time', null, a.firedAt.replace('T', ' ').slice(0, 16) + ' UTC');
      when.dateTime = a.firedAt;
      li.appendChild(when);
      var delivered = a.deliveries.filter(function (d) { return d.state === 'delivered'; }).length;
      li.appendChild(el('span', 'alert-deliveries', a.deliveries.length === 0 ? 'no channels' : delivered + '/' + a.deliveries.length + ' delivered'));
      list.appendChild(li);
    });
  }

  // ---- increase requests -------------------------------------------------------------------------

  /** POSTs a decision with the admin token (in the header only, never in a URL), then reloads. */
  function decide(token, id, action) {
    return fetch('/admin/requests/' + encodeURIComponent(id) + '/' + action, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
      body: '{}',
      cache: 'no-store',
    }).then(function (r) {
      return r.text().then(function (body) {
        if (r.ok) return null;
        var detail = body;
        try { detail = JSON.parse(body).error.message; } catch (e) { /* not JSON */ }
        return detail;
      });
    });
  }

  function drawRequests(requests, token) {
    var list = $('requests');
    clear(list);
    if (requests.length === 0) list.appendChild(el('li', 'muted', 'No open requests.'));
    requests.forEach(function (q) {
      var li = el('li', 'alert request');
      li.dataset.id = q.id;
      li.appendChild(el('span', 'alert-level', q.amountTokens > 0 ? '+' + tokens(q.amountTokens) + ' tokens' : '+' + usd(q.amountUsd)));
      li.appendChild(el('span', 'alert-scope', shown(q.userId) + ' on ' + shown(q.scope)));
      li.appendChild(el('span', 'alert-figures', q.reason ? shown(q.reason) : 'no reason given'));
      ['approve', 'deny'].forEach(function (action) {
        var button = el('button', 'secondary', action === 'approve' ? 'Approve' : 'Deny');
        button.type = 'button';
        button.setAttribute('aria-label', (action === 'approve' ? 'Approve' : 'Deny') + ' the request of ' + shown(q.userId));
        button.addEventListener('click', function () {
          button.disabled = true;
          decide(token, q.id, action).then(function (problem) {
            if (problem === null) return load(token);
            $('requests-note').textContent = 'Not decided: ' + problem;
            button.disabled = false;
          });
        });
        li.appendChild(button);
      });
      list.appendChild(li);
    });
  }

  // ---- users and keys ----------------------------------------------------------------------------

  // A LobeChat server sharing one key brings every one of its users in: the table shows the first
  // ones (by id) and says how many there are; the CLI and the admin API list them all.
  var USER_ROWS = 200;

  function keyLine(k) {
    var parts = [shown(k.name), shown(k.prefix) + '…'];
    if (k.service) parts.push('service');
    parts.push(k.refusalStyle === 'answer' ? 'refusals as answers' : k.refusalStyle === 'error' ? 'refusals as errors' : 'refusals: default');
    return parts.join(' · ');
  }

  function drawUsers(users, keys) {
    var body = $('users').tBodies[0];
    clear(body);
    var byUser = {};
    keys.forEach(function (k) {
      if (k.revokedAt !== null) return;
      (byUser[k.userId] = byUser[k.userId] || []).push(k);
    });
    if (users.length === 0) {
      var empty = el('tr');
      var td = el('td', 'muted', 'No users yet.');
      td.colSpan = 4;
      empty.appendChild(td);
      body.appendChild(empty);
    }
    users.slice(0, USER_ROWS).forEach(function (u) {
      var tr = el('tr');
      tr.dataset.user = u.id;
      var who = el('td', 'who', u.name !== u.id ? shown(u.name) + ' (' + shown(u.id) + ')' : shown(u.id));
      who.title = shown(u.name, TITLE_CHARS);
      tr.appendChild(who);
      tr.appendChild(el('td', 'project', u.projectId === null ? '' : shown(u.projectId)));
      tr.appendChild(el('td', 'external-ids', u.externalIds.map(function (id) { return shown(id); }).join(', ')));
      var cell = el('td', 'keys');
      var list = el('ul', 'user-keys');
      (byUser[u.id] || []).forEach(function (k) {
        var li = el('li', 'user-key', keyLine(k));
        li.dataset.id = k.id;
        list.appendChild(li);
      });
      cell.appendChild(list);
      tr.appendChild(cell);
      body.appendChild(tr);
    });
    var note = $('users-note');
    note.hidden = users.length <= USER_ROWS;
    note.textContent = users.length > USER_ROWS ? 'The first ' + tokens(USER_ROWS) + ' of ' + tokens(users.length) + ' users, by id. lobe-quota users list shows them all.' : '';
  }

  // ---- loading -------------------------------------------------------------------------------

  function showSignedOut(text, isError) {
    state.usage = null;
    state.charts.forEach(function (c) { if (c) c.destroy(); });
    state.charts = [];
    $('content').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    ['budgets', 'outcomes', 'alerts'].forEach(function (id) { clear($(id)); });
    clear($('top').tBodies[0]);
    clear($('users').tBodies[0]);
    DIMENSIONS.forEach(function (d) { clear($('chart-' + d)); });
    message(text, isError);
  }

  function load(token) {
    message('Loading…', false);
    var usage = function (groupBy) { return api('/admin/usage?groupBy=' + groupBy, token); };
    // The metrics are optional (a refusal count); everything else must answer.
    var metrics = api('/metrics', token, true).catch(function (e) { if (e.status === 401) throw e; return null; });
    return Promise.all([
      api('/quota', token),
      usage('day,user'),
      usage('day,project'),
      usage('day,model'),
      usage('user'),
      api('/admin/alerts?limit=20', token),
      api('/admin/outcomes', token),
      metrics,
      api('/admin/users', token),
      api('/admin/keys', token),
      api('/admin/requests?state=open', token),
    ]).then(function (r) {
      if (!Array.isArray(r[0].subjects)) throw new HttpError(403, 'this token is not the admin token');
      sessionStorage.setItem(TOKEN_KEY, token);
      $('login').hidden = true;
      $('session').hidden = false;
      $('content').hidden = false;
      message('', false);
      $('range').textContent = r[4].from.slice(0, 10) + ' – ' + new Date(Date.parse(r[4].to) - 1).toISOString().slice(0, 10) + ' (UTC)';
      drawBudgets(r[0].subjects);
      state.usage = { user: r[1], project: r[2], model: r[3] };
      drawCharts();
      drawTop(r[4]);
      drawCacheSaved(r[4]);
      drawAlerts(r[5].alerts);
      drawOutcomes(r[6], r[7]);
      drawUsers(r[8].users, r[9].keys);
      drawRequests(r[10].requests, token);
      document.body.dataset.loaded = 'true';
    }).catch(function (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      var text = e instanceof HttpError
        ? (e.status === 401 ? 'Wrong token: the server answered 401 (' + e.message + ').' : e.status === 403 ? 'Not allowed: ' + e.message + '. Use the admin token.' : 'The server answered ' + e.status + ': ' + e.message)
        : 'Could not reach the server: ' + (e && e.message ? e.message : String(e));
      showSignedOut(text, true);
      document.body.dataset.loaded = 'error';
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login').addEventListener('submit', function (event) {
      event.preventDefault();
      var input = $('token');
      var token = input.value.trim();
      input.value = '';
      if (token) load(token);
    });
    $('logout').addEventListener('click', function () {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignedOut('Signed out. Enter the admin token to see budgets and usage.', false);
    });
    $('refresh').addEventListener('click', function () {
      var token = sessionStorage.getItem(TOKEN_KEY);
      if (token) load(token);
    });
    $('unit-tokens').addEventListener('click', function () { setUnit('tokens'); });
    $('unit-usd').addEventListener('click', function () { setUnit('usd'); });
    var resizeTimer = 0;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        state.charts.forEach(function (c) { if (c) c.setSize({ width: chartWidth(c.root.parentNode), height: 220 }); });
      }, 100);
    });
    var saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) load(saved);
  });
})();
