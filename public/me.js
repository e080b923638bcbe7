// A user's own page (/me): their quota card (the plugin's), their usage by day and model in their
// budget's time zone, and their latest requests. It signs in with their personal `lq-` key, kept in
// this tab's sessionStorage only, and reads only what that key may: /quota and its own history.
// Every text goes in with textContent.
(function () {
  'use strict';

  var KEY_STORAGE = 'lobe-quota-user-key';
  var kit = window.lqKit;
  var el = kit.el;
  var clear = kit.clear;
  var shown = kit.shown;
  var $ = function (id) { return document.getElementById(id); };

  var OUTCOMES = { ok: 'completed', cut_off: 'cut off at the budget', client_abort: 'stopped by the client', upstream_error: 'broken off upstream', interrupted: 'interrupted by a restart', refused: 'refused (answered as a message)' };

  // The last answers, to redraw the chart in another unit or width; never stored anywhere.
  var state = { unit: 'tokens', usage: null, chart: null, status: null };
  var loads = 0;

  function message(text, isError) {
    var m = $('message');
    m.textContent = shown(text, 400);
    m.className = isError ? 'message error' : 'message';
    m.hidden = text === '';
  }

  /**
   * The budget the card's top line is about (the server puts the binding one's figures on top),
   * whose time zone the days are counted in; UTC for rolling and all-time budgets.
   */
  function bindingOf(status) {
    var same = status.budgets.filter(function (b) { return b.status === status.status && b.percentage === status.percentage && b.resetsAt === status.nextReset; });
    return same[0] || status.budgets[0] || null;
  }
  function timeZoneOf(status) {
    var binding = bindingOf(status);
    return binding && binding.window && binding.window.timeZone ? binding.window.timeZone : 'UTC';
  }

  // ---- the usage chart and table ----------------------------------------------------------------

  function drawChart() {
    if (state.chart) state.chart.destroy();
    state.chart = null;
    if (!state.usage) return;
    state.chart = lqChart.stacked($('usage-chart'), lqChart.series(state.usage.days, state.usage.rows, 'model', state.unit), state.unit);
  }

  function setUnit(unit) {
    state.unit = unit;
    $('unit-tokens').setAttribute('aria-pressed', String(unit === 'tokens'));
    $('unit-usd').setAttribute('aria-pressed', String(unit === 'usd'));
    drawChart();
  }

  function drawUsage(usage) {
    state.usage = usage;
    var days = usage.days;
    $('usage-range').textContent = days.length > 0 ? days[0] + ' – ' + days[days.length - 1] + ', days in ' + usage.timeZone : '';
    var t = usage.totals;
    $('usage-totals').textContent = kit.tokens(t.requests) + (t.requests === 1 ? ' request, ' : ' requests, ') + kit.tokens(t.totalTokens) + ' tokens, ' + kit.cost(t.costUsd) + ' in these ' + days.length + ' days.';
    var table = $('usage-table');
    clear(table.tBodies[0]);
    if (usage.rows.length === 0) {
      var tr = el('tr');
      var td = el('td', 'muted', 'No usage in this range.');
      td.colSpan = 5;
      tr.appendChild(td);
      table.tBodies[0].appendChild(tr);
    }
    usage.rows.forEach(function (r) {
      var tr = el('tr');
      [['Day', r.day, ''], ['Model', shown(r.model), ''], ['Requests', kit.tokens(r.requests), 'num'], ['Tokens', kit.tokens(r.totalTokens), 'num'], ['Cost', kit.cost(r.costUsd), 'num']].forEach(function (c) {
        var cell = el('td', c[2], c[1]);
        cell.setAttribute('data-label', c[0]);
        tr.appendChild(cell);
      });
      tr.cells[1].title = shown(r.model, kit.TITLE_CHARS);
      table.tBodies[0].appendChild(tr);
    });
    drawChart();
  }

  // ---- latest requests --------------------------------------------------------------------------

  function localTime(iso, timeZone) {
    try {
      return new Intl.DateTimeFormat('en-CA', { timeZone: timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso)).replace(',', '');
    } catch (e) {
      return iso.replace('T', ' ').slice(0, 16) + ' UTC';
    }
  }

  function drawRecent(entries, timeZone) {
    $('recent-when').textContent = 'When (' + timeZone + ')';
    var table = $('recent');
    clear(table.tBodies[0]);
    if (entries.length === 0) {
      var tr = el('tr');
      var td = el('td', 'muted', 'No requests yet.');
      td.colSpan = 6;
      tr.appendChild(td);
      table.tBodies[0].appendChild(tr);
    }
    entries.forEach(function (e) {
      var tr = el('tr', 'outcome-' + e.outcome);
      var cells = [
        ['When', localTime(e.at, timeZone), ''],
        ['Model', shown(e.model), 'model'],
        ['Input', kit.tokens(e.inputTokens), 'num'],
        ['Output', kit.tokens(e.outputTokens), 'num'],
        ['Cost', kit.cost(e.costUsd), 'num'],
        ['Outcome', OUTCOMES[e.outcome] || shown(e.outcome), 'outcome'],
      ];
      cells.forEach(function (c) {
        var cell = el('td', c[2], c[1]);
        cell.setAttribute('data-label', c[0]);
        tr.appendChild(cell);
      });
      tr.cells[1].title = shown(e.model, kit.TITLE_CHARS);
      table.tBodies[0].appendChild(tr);
    });
  }

  // ---- asking for more --------------------------------------------------------------------------

  function drawAskForm(status) {
    var binding = bindingOf(status);
    $('ask-open').hidden = !binding;
    if (!binding) { toggleAsk(false); return; }
    var scopes = [];
    status.budgets.forEach(function (b) { if (scopes.indexOf(b.scope) < 0) scopes.push(b.scope); });
    var select = $('ask-scope');
    var before = select.value;
    clear(select);
    scopes.forEach(function (scope) {
      var o = el('option', null, scope === binding.scope ? shown(scope) + ' (the one nearest its limit)' : shown(scope));
      o.value = scope;
      select.appendChild(o);
    });
    select.value = scopes.indexOf(before) >= 0 ? before : binding.scope;
    $('ask-amount-label').textContent = status.unit === 'usd' ? 'Amount (US dollars)' : 'Amount (tokens)';
  }

  function toggleAsk(open) {
    $('ask-form').hidden = !open;
    $('ask-open').setAttribute('aria-expanded', String(open));
    if (open) $('ask-scope').focus();
  }

  function ask(form, trigger) {
    var key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) return;
    var body = { scope: $('ask-scope').value };
    var amountText = $('ask-amount').value.trim();
    if (amountText !== '') body.amount = isFinite(Number(amountText)) ? Number(amountText) : amountText;
    if ($('ask-reason').value.trim() !== '') body.reason = $('ask-reason').value.trim();
    kit.submit(form, trigger, function () { return kit.api(key, 'POST', '/quota/requests', body); }, function (r) {
      var what = r.unit === 'usd' ? kit.usd(r.amountUsd) : kit.tokens(r.amountTokens) + ' tokens';
      form.reset();
      toggleAsk(false);
      message(r.state === 'approved' ? 'Approved at once: +' + what + ' on ' + shown(r.scope) + ' until the window resets.' : 'Asked for +' + what + ' on ' + shown(r.scope) + '. An admin decides; your card shows it once granted.', false);
      return load(key, true);
    });
  }

  // ---- signing in and loading -------------------------------------------------------------------

  function showSignedOut(text, isError) {
    state.usage = null;
    state.status = null;
    if (state.chart) state.chart.destroy();
    state.chart = null;
    $('content').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    clear($('card'));
    clear($('usage-chart'));
    clear($('usage-table').tBodies[0]);
    clear($('recent').tBodies[0]);
    $('ask-form').reset();
    toggleAsk(false);
    message(text, isError);
  }

  function load(key, quiet) {
    var mine = ++loads;
    if (!quiet) message('Loading…', false);
    return kit.api(key, 'GET', '/quota').then(function (status) {
      // The admin token reads everyone: this page is for one person's key.
      if (Array.isArray(status.subjects)) throw new kit.HttpError(403, 'this is the admin token, which has no quota of its own: open /admin with it, or sign in here with a personal lq- key');
      var zone = timeZoneOf(status);
      var me = '/quota/' + encodeURIComponent(status.subject.id);
      return Promise.all([
        kit.api(key, 'GET', me + '/usage?tz=' + encodeURIComponent(zone)),
        kit.api(key, 'GET', me + '/ledger?limit=20'),
      ]).then(function (r) { return { status: status, zone: zone, usage: r[0], ledger: r[1] }; });
    }).then(function (got) {
      if (mine !== loads) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      state.status = got.status;
      $('login').hidden = true;
      $('session').hidden = false;
      $('content').hidden = false;
      if (!quiet) message('', false);
      $('who').textContent = shown(got.status.subject.name);
      window.lobeQuotaCard.render(got.status);
      drawAskForm(got.status);
      drawUsage(got.usage);
      drawRecent(got.ledger.entries, got.zone);
      document.body.dataset.loaded = 'true';
    }).catch(function (e) {
      if (mine !== loads) return;
      sessionStorage.removeItem(KEY_STORAGE);
      var text = e instanceof kit.HttpError
        ? (e.status === 401 ? 'That key is not valid (or was revoked): the server answered 401.' : e.status === 403 ? 'Not allowed: ' + e.message + '.' : 'The server answered ' + e.status + ': ' + e.message)
        : 'Could not reach the server: ' + (e && e.message ? e.message : String(e));
      showSignedOut(text, true);
      document.body.dataset.loaded = 'error';
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login').addEventListener('submit', function (event) {
      event.preventDefault();
      var input = $('key');
      var key = input.value.trim();
      input.value = '';
      if (key) load(key);
    });
    $('logout').addEventListener('click', function () {
      sessionStorage.removeItem(KEY_STORAGE);
      loads++;
      showSignedOut('Signed out.', false);
      $('key').focus();
    });
    $('refresh').addEventListener('click', function () {
      var key = sessionStorage.getItem(KEY_STORAGE);
      if (key) load(key);
    });
    $('unit-tokens').addEventListener('click', function () { setUnit('tokens'); });
    $('unit-usd').addEventListener('click', function () { setUnit('usd'); });
    $('ask-open').addEventListener('click', function () { toggleAsk($('ask-form').hidden); });
    $('ask-form').addEventListener('submit', function (event) {
      event.preventDefault();
      ask(event.target, event.submitter);
    });
    var resizeTimer = 0;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        if (state.chart) state.chart.setSize({ width: lqChart.width(state.chart.root.parentNode), height: 220 });
      }, 100);
    });
    var saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) load(saved);
  });
})();
