// The operators' dashboard: its overview and sign-in (the management views are manage.js). The page
// itself holds no data: it asks for the admin token (kept in sessionStorage), then reads the admin
// API with it. Every text goes in with textContent.
(function () {
  'use strict';

  // The admin token lives in this tab's sessionStorage (and in memory while a load runs), and goes
  // out in the Authorization header only: never in a URL, a cookie or localStorage.
  var TOKEN_KEY = 'lobe-quota-admin-token';
  var DIMENSIONS = ['user', 'project', 'model'];
  var VIEWS = ['overview', 'people', 'keys', 'budgets', 'holds', 'alerts'];
  var kit = window.lqKit;
  var el = kit.el;
  var clear = kit.clear;
  var shown = kit.shown;
  var TITLE_CHARS = kit.TITLE_CHARS;
  var tokens = kit.tokens;
  var usd = kit.usd;
  var amount = kit.amount;
  var HttpError = kit.HttpError;
  var $ = function (id) { return document.getElementById(id); };

  var state = { unit: 'tokens', usage: null, charts: [] };

  function message(text, isError) {
    var m = $('message');
    m.textContent = shown(text, 400);
    m.className = isError ? 'message error' : 'message';
    m.hidden = text === '';
  }

  function api(path, token, asText) { return kit.api(token, 'GET', path, undefined, asText); }

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
      figures.appendChild(el('span', 'pct', kit.pct(b.percentage) + '%'));
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

  /** Per group, a value for each UTC day of the report's range (the admin reports are in UTC). */
  function series(report, dimension, unit) {
    var days = lqChart.utcDays(report.from, new Date(Date.parse(report.to) - 1).toISOString());
    return lqChart.series(days, report.rows, dimension, unit);
  }

  function drawCharts() {
    state.charts.forEach(function (c) { if (c) c.destroy(); });
    state.charts = [];
    if (!state.usage) return;
    DIMENSIONS.forEach(function (d) {
      state.charts.push(lqChart.stacked($('chart-' + d), series(state.usage[d], d, state.unit), state.unit));
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
      li.appendChild(el('span', 'alert-figures', amount(a.usage, a.unit) + ' of ' + amount(a.limit, a.unit) + ' · ' + kit.pct(a.percentage) + '%'));
      var when = el('time', null, a.firedAt.replace('T', ' ').slice(0, 16) + ' UTC');
      when.dateTime = a.firedAt;
      li.appendChild(when);
      var delivered = a.deliveries.filter(function (d) { return d.state === 'delivered'; }).length;
      li.appendChild(el('span', 'alert-deliveries', a.deliveries.length === 0 ? 'no channels' : delivered + '/' + a.deliveries.length + ' delivered'));
      list.appendChild(li);
    });
  }

  // ---- increase requests -------------------------------------------------------------------------

  /** POSTs a decision with the admin token (in the header only, never in a URL); null when done, else the API's message. */
  function decide(token, id, action) {
    return kit.api(token, 'POST', '/admin/requests/' + encodeURIComponent(id) + '/' + action, {}).then(function () { return null; }, function (e) {
      return e instanceof HttpError ? e.message : 'could not reach the server';
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

  // ---- loading and views ------------------------------------------------------------------------

  function showSignedOut(text, isError) {
    state.usage = null;
    state.charts.forEach(function (c) { if (c) c.destroy(); });
    state.charts = [];
    $('content').hidden = true;
    $('session').hidden = true;
    $('views').hidden = true;
    $('login').hidden = false;
    ['budgets', 'outcomes', 'alerts', 'requests'].forEach(function (id) { clear($(id)); });
    clear($('top').tBodies[0]);
    DIMENSIONS.forEach(function (d) { clear($('chart-' + d)); });
    lqManage.reset();
    message(text, isError);
  }

  // Each action reloads everything from the API (the page keeps nothing of its own); when two loads
  // overlap, only the newest one draws.
  var loads = 0;

  function load(token, quiet) {
    var mine = ++loads;
    if (!quiet) message('Loading…', false);
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
      api('/admin/projects', token),
      api('/admin/budgets', token),
      api('/admin/holds', token),
    ]).then(function (r) {
      if (mine !== loads) return;
      if (!Array.isArray(r[0].subjects)) throw new HttpError(403, 'this token is not the admin token');
      sessionStorage.setItem(TOKEN_KEY, token);
      $('login').hidden = true;
      $('session').hidden = false;
      $('views').hidden = false;
      $('content').hidden = false;
      message('', false);
      $('range').textContent = r[4].from.slice(0, 10) + ' – ' + new Date(Date.parse(r[4].to) - 1).toISOString().slice(0, 10) + ' (UTC)';
      drawBudgets(r[0].subjects);
      state.usage = { user: r[1], project: r[2], model: r[3] };
      if (!$('view-overview').hidden) drawCharts();
      drawTop(r[4]);
      drawCacheSaved(r[4]);
      drawAlerts(r[5].alerts);
      drawOutcomes(r[6], r[7]);
      drawRequests(r[10].requests, token);
      lqManage.render({ subjects: r[0].subjects, users: r[8].users, keys: r[9].keys, projects: r[11].projects, budgets: r[12], holds: r[13].holds }, token);
      document.body.dataset.loaded = 'true';
    }).catch(function (e) {
      if (mine !== loads) return;
      sessionStorage.removeItem(TOKEN_KEY);
      var text = e instanceof HttpError
        ? (e.status === 401 ? 'Wrong token: the server answered 401 (' + e.message + ').' : e.status === 403 ? 'Not allowed: ' + e.message + '. Use the admin token.' : 'The server answered ' + e.status + ': ' + e.message)
        : 'Could not reach the server: ' + (e && e.message ? e.message : String(e));
      showSignedOut(text, true);
      document.body.dataset.loaded = 'error';
    });
  }

  /** `#view` or `#view/argument` (a user id, a scope): which part of the page is shown. Never a secret. */
  function currentRoute() {
    var hash = location.hash.replace(/^#/, '');
    var slash = hash.indexOf('/');
    var view = slash < 0 ? hash : hash.slice(0, slash);
    var arg = '';
    try { arg = slash < 0 ? '' : decodeURIComponent(hash.slice(slash + 1)); } catch (e) { /* a broken escape: no argument */ }
    return { view: VIEWS.indexOf(view) < 0 ? 'overview' : view, arg: arg };
  }

  function showView(moveFocus) {
    var route = currentRoute();
    VIEWS.forEach(function (v) {
      $('view-' + v).hidden = v !== route.view;
      var link = document.querySelector('#views a[data-view="' + v + '"]');
      if (v === route.view) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    });
    // Charts drawn while hidden have no width: draw them again once seen.
    if (route.view === 'overview' && state.usage) drawCharts();
    lqManage.show(route.view, route.arg);
    if (moveFocus) {
      var heading = document.querySelector('#view-' + route.view + ' .panel:not([hidden]) h2');
      if (heading) heading.focus();
    }
  }

  window.lqAdmin = {
    /** Reloads everything after a change; resolves once drawn. */
    reload: function () {
      var token = sessionStorage.getItem(TOKEN_KEY);
      return token ? load(token, true) : Promise.resolve();
    },
  };

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
      loads++;
      showSignedOut('Signed out. Enter the admin token to see budgets and usage.', false);
    });
    $('refresh').addEventListener('click', function () {
      var token = sessionStorage.getItem(TOKEN_KEY);
      if (token) load(token);
    });
    $('unit-tokens').addEventListener('click', function () { setUnit('tokens'); });
    $('unit-usd').addEventListener('click', function () { setUnit('usd'); });
    window.addEventListener('hashchange', function () { showView(true); });
    var resizeTimer = 0;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        state.charts.forEach(function (c) { if (c) c.setSize({ width: lqChart.width(c.root.parentNode), height: 220 }); });
      }, 100);
    });
    lqManage.init();
    showView(false);
    var saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) load(saved);
  });
})();
