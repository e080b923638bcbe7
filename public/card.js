// The quota card in LobeChat's plugin iframe. It asks its host for the plugin message
// (`lobe-chat:fetch-plugin-message` → `lobe-chat:render-plugin` with `props.content`, the `/quota`
// JSON) and draws it. No framework and no inline script, so the page works under a strict CSP.
// Whatever arrives is data: the DOM is built with createElement/textContent only, never from HTML.
// A page of our own (/me) draws the same card from its own `/quota` answer: its container says
// `data-embed="page"`, and the page calls `lobeQuotaCard.render(status)` instead of LobeChat.
(function () {
  'use strict';

  var zh = /^zh\b/i.test(navigator.language || '');
  var locale = zh ? 'zh-CN' : /^en\b/i.test(navigator.language || '') ? navigator.language : 'en-US';

  var T = zh
    ? {
        title: '额度',
        waiting: '正在等待 LobeChat 发送额度…',
        invalid: '无法读取额度数据。',
        status: { normal: '正常', warning: '接近上限', critical: '即将用完', exceeded: '已超额' },
        tokens: 'tokens',
        left: function (x) { return '剩余 ' + x; },
        resetsIn: function (d) { return d + '后重置'; },
        resetDue: '正在重置',
        noReset: '总额度，不会重置',
        reserved: function (x) { return '另有 ' + x + ' 被进行中的请求占用'; },
        granted: function (x, by) { return '上限已含' + by + '批准的 +' + x; },
        decidedBy: { admin: '管理员', link: '审批链接', policy: '自动审批' },
        held: function (x) { return '占用 ' + x; },
        others: '其他预算',
        none: function (name) { return name + ' 没有适用的预算，用量不受限制。'; },
        thisKey: '此密钥',
        project: function (id) { return '项目 ' + id; },
        user: function (id) { return '用户 ' + id; },
        key: function (id) { return '密钥 ' + id; },
        everyone: '所有人',
        window: { day: '每日', week: '每周', month: '每月', total: '总计' },
        rolling: function (h) { return '滚动 ' + h + ' 小时'; },
        units: [' 天', ' 小时', ' 分', ' 秒'],
      }
    : {
        title: 'Quota',
        waiting: 'Waiting for LobeChat to send the quota…',
        invalid: 'Could not read the quota data.',
        status: { normal: 'Normal', warning: 'Warning', critical: 'Critical', exceeded: 'Exceeded' },
        tokens: 'tokens',
        left: function (x) { return x + ' left'; },
        resetsIn: function (d) { return 'Resets in ' + d; },
        resetDue: 'Resetting now',
        noReset: 'All-time budget, never resets',
        reserved: function (x) { return x + ' held by requests in flight'; },
        granted: function (x, by) { return 'Includes +' + x + ' granted by ' + by; },
        decidedBy: { admin: 'an admin', link: 'approval', policy: 'auto-approval' },
        held: function (x) { return x + ' held'; },
        others: 'Other budgets',
        none: function (name) { return 'No budget applies to ' + name + ', so usage is not limited.'; },
        thisKey: 'This key',
        project: function (id) { return 'Project ' + id; },
        user: function (id) { return 'User ' + id; },
        key: function (id) { return 'Key ' + id; },
        everyone: 'Everyone',
        window: { day: 'daily', week: 'weekly', month: 'monthly', total: 'all time' },
        rolling: function (h) { return 'rolling ' + h + ' h'; },
        units: [' d', ' h', ' m', ' s'],
      };

  var STATUSES = ['normal', 'warning', 'critical', 'exceeded'];
  var intFormat = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  var pctFormat = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  var usdFormat = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var centsFormat = new Intl.NumberFormat(locale, { maximumSignificantDigits: 2 });

  var card = document.getElementById('card');
  var onOwnPage = card.getAttribute('data-embed') === 'page';
  var ticker = 0;
  var rendered = false;

  // ---- reading the content: every field checked, nothing trusted --------------------------------

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function str(v) { return typeof v === 'string' ? v : ''; }
  function status(v) { return STATUSES.indexOf(v) >= 0 ? v : 'normal'; }

  function readWindow(w) {
    w = w && typeof w === 'object' ? w : {};
    var kind = str(w.kind);
    return { kind: kind, timeZone: str(w.timeZone) || null, hours: num(w.hours) };
  }

  function readBudget(b) {
    b = b && typeof b === 'object' ? b : {};
    return {
      scope: str(b.scope),
      window: readWindow(b.window),
      usedTokens: num(b.usedTokens) || 0,
      reservedTokens: num(b.reservedTokens) || 0,
      limitTokens: num(b.limitTokens),
      usedUsd: num(b.usedUsd) || 0,
      reservedUsd: num(b.reservedUsd) || 0,
      limitUsd: num(b.limitUsd),
      percentage: num(b.percentage) || 0,
      status: status(b.status),
      resetsAt: str(b.resetsAt) || null,
      grantedTokens: num(b.grantedTokens) || 0,
      grantedUsd: num(b.grantedUsd) || 0,
      grantedBy: Array.isArray(b.grants) ? b.grants.map(function (g) { return g && typeof g === 'object' ? str(g.decidedBy) : ''; }) : [],
    };
  }

  /** The `/quota` object from `props.content` (an object, or JSON text of one); null if it is not one. */
  function readQuota(content) {
    if (typeof content === 'string') {
      try { content = JSON.parse(content); } catch (e) { return null; }
    }
    if (!content || typeof content !== 'object' || !Array.isArray(content.budgets)) return null;
    var subject = content.subject && typeof content.subject === 'object' ? content.subject : {};
    var unit = content.unit === 'usd' || content.unit === 'tokens' ? content.unit : null;
    return {
      subject: { kind: str(subject.kind), id: str(subject.id), name: str(subject.name) || str(subject.id) },
      usage: num(content.usage),
      limit: num(content.limit),
      unit: unit,
      percentage: num(content.percentage),
      remaining: num(content.remaining),
      status: status(content.status),
      nextReset: str(content.nextReset) || null,
      budgets: content.budgets.map(readBudget),
    };
  }

  /** The budget the top-level fields describe (the server puts the binding one on top). */
  function bindingOf(q) {
    var same = function (b) { return b.status === q.status && b.percentage === q.percentage && b.resetsAt === q.nextReset; };
    var sameLimit = function (b) { return (q.unit === 'usd' ? b.limitUsd : b.limitTokens) === q.limit; };
    var found = q.budgets.filter(function (b) { return same(b) && sameLimit(b); })[0] || q.budgets.filter(same)[0];
    if (found) return found;
    return q.budgets.slice().sort(function (a, b) { return b.percentage - a.percentage; })[0] || null;
  }

  /** The unit a budget is nearest to exhausting (tokens on a tie), as the server decides it. */
  function unitOf(b) {
    var ratio = function (used, limit) { return limit === null ? -1 : limit > 0 ? used / limit : used > 0 ? Infinity : 0; };
    return ratio(b.usedUsd, b.limitUsd) > ratio(b.usedTokens, b.limitTokens) ? 'usd' : 'tokens';
  }

  // ---- formatting ---------------------------------------------------------------------------------

  function money(v) {
    var abs = Math.abs(v);
    return '$' + (abs > 0 && abs < 0.01 ? centsFormat.format(v) : usdFormat.format(v));
  }
  function figure(v, unit) { return unit === 'usd' ? money(v) : intFormat.format(v); }
  function amount(v, unit) { return unit === 'usd' ? money(v) : intFormat.format(v) + ' ' + T.tokens; }
  function percent(p) { return pctFormat.format(p) + '%'; }

  function scopeLabel(scope, subject) {
    var i = scope.indexOf(':');
    var kind = i < 0 ? scope : scope.slice(0, i);
    var id = i < 0 ? '' : scope.slice(i + 1);
    if (kind === 'global') return T.everyone;
    if (kind === subject.kind && id === subject.id) return subject.name;
    if (kind === 'user') return T.user(id);
    if (kind === 'project') return T.project(id);
    if (kind === 'key') return subject.kind === 'user' ? T.thisKey : T.key(id);
    return scope;
  }

  function windowLabel(w) {
    if (w.kind === 'rolling') return T.rolling(w.hours === null ? '?' : w.hours);
    var name = T.window[w.kind] || w.kind;
    return w.timeZone ? name + ' (' + w.timeZone + ')' : name;
  }

  /** The reset instant as a wall-clock time in the budget's own zone (rolling/total: the viewer's). */
  function formatWhen(date, timeZone) {
    var options = { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' };
    if (timeZone) {
      try {
        options.timeZone = timeZone;
        return new Intl.DateTimeFormat(locale, options).format(date);
      } catch (e) {
        delete options.timeZone; // a zone this browser does not know: show the viewer's own
      }
    }
    return new Intl.DateTimeFormat(locale, options).format(date);
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }

  /** "3 d 4 h 5 m" from a day up, "4 h 05 m 09 s" below it (Chinese units in Chinese). */
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var u = T.units;
    if (d > 0) return d + u[0] + ' ' + h + u[1] + ' ' + m + u[2];
    if (h > 0) return h + u[1] + ' ' + pad(m) + u[2] + ' ' + pad(s % 60) + u[3];
    return m + u[2] + ' ' + pad(s % 60) + u[3];
  }

  // ---- drawing ------------------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bar(percentage, statusName, small) {
    var track = el('div', small ? 'bar small' : 'bar');
    var shown = Math.max(0, Math.min(percentage, 100));
    track.setAttribute('role', 'progressbar');
    track.setAttribute('aria-valuemin', '0');
    track.setAttribute('aria-valuemax', '100');
    track.setAttribute('aria-valuenow', String(shown));
    track.setAttribute('aria-valuetext', percent(percentage) + ' · ' + T.status[statusName]);
    var fill = el('div', 'fill');
    fill.style.width = shown + '%'; // CSSOM, which a CSP without 'unsafe-inline' still allows
    track.appendChild(fill);
    return track;
  }

  function show(nodes) {
    card.className = 'card';
    card.replaceChildren.apply(card, nodes);
  }

  function header(q, badgeStatus) {
    var head = el('div', 'head');
    var title = el('h1', 'title', T.title + ' · ' + (q.subject.name || '?'));
    head.appendChild(title);
    if (badgeStatus) head.appendChild(el('span', 'badge status-' + badgeStatus, T.status[badgeStatus]));
    return head;
  }

  function resetLine(resetsAt, timeZone) {
    var box = el('span', 'reset');
    if (!resetsAt) {
      box.appendChild(el('span', 'muted', T.noReset));
      return box;
    }
    var when = new Date(resetsAt);
    if (isNaN(when.getTime())) return box;
    var countdown = el('span', 'countdown');
    var at = el('time', 'at muted', '(' + formatWhen(when, timeZone) + ')');
    at.setAttribute('datetime', resetsAt);
    var tick = function () {
      var left = when.getTime() - Date.now();
      countdown.textContent = left > 0 ? T.resetsIn(duration(left)) : T.resetDue;
    };
    tick();
    ticker = setInterval(tick, 1000);
    box.appendChild(countdown);
    box.appendChild(document.createTextNode(' ')); // the one place a narrow card may break the line
    box.appendChild(at);
    return box;
  }

  function otherRow(b, subject) {
    var unit = unitOf(b);
    var used = unit === 'usd' ? b.usedUsd : b.usedTokens;
    var limit = unit === 'usd' ? b.limitUsd : b.limitTokens;
    var row = el('li', 'row status-' + b.status);
    var line = el('div', 'row-line');
    line.appendChild(el('span', 'row-label', scopeLabel(b.scope, subject) + ' · ' + windowLabel(b.window)));
    var nums = el('span', 'row-nums', figure(used, unit) + ' / ' + amount(limit === null ? 0 : limit, unit) + ' · ');
    nums.appendChild(el('span', 'row-pct', percent(b.percentage)));
    var reserved = unit === 'usd' ? b.reservedUsd : b.reservedTokens;
    if (reserved > 0) nums.appendChild(el('span', 'row-held', ' · ' + T.held(figure(reserved, unit))));
    line.appendChild(nums);
    row.appendChild(line);
    row.appendChild(bar(b.percentage, b.status, true));
    return row;
  }

  function render(content) {
    clearInterval(ticker);
    var q = readQuota(content);
    if (!q) {
      show([el('p', 'muted', T.invalid)]);
      return;
    }
    var binding = bindingOf(q);
    if (!binding || q.unit === null || q.usage === null || q.limit === null) {
      show([header(q, null), el('p', 'empty muted', T.none(q.subject.name || '?'))]);
      return;
    }
    var unit = q.unit;
    var pct = q.percentage === null ? binding.percentage : q.percentage;
    var nodes = [header(q, q.status)];
    nodes.push(el('div', 'scope', scopeLabel(binding.scope, q.subject) + ' · ' + windowLabel(binding.window)));

    var figures = el('div', 'figures');
    var left = el('span');
    left.appendChild(el('span', 'usage', figure(q.usage, unit)));
    left.appendChild(el('span', 'limit', ' / ' + amount(q.limit, unit)));
    figures.appendChild(left);
    figures.appendChild(el('span', 'pct', percent(pct)));
    nodes.push(figures);
    nodes.push(bar(pct, q.status, false));

    var facts = el('div', 'facts');
    facts.appendChild(el('span', 'remaining', T.left(amount(q.remaining === null ? 0 : q.remaining, unit))));
    facts.appendChild(resetLine(q.nextReset, binding.window.timeZone));
    nodes.push(facts);
    var reserved = unit === 'usd' ? binding.reservedUsd : binding.reservedTokens;
    if (reserved > 0) nodes.push(el('p', 'note muted', T.reserved(amount(reserved, unit))));
    // The limit includes grants in force: say how much, and who granted it.
    var granted = unit === 'usd' ? binding.grantedUsd : binding.grantedTokens;
    if (granted > 0) {
      var by = binding.grantedBy.filter(function (d, i, all) { return d && all.indexOf(d) === i; }).map(function (d) { return T.decidedBy[d] || d; });
      nodes.push(el('p', 'note granted', T.granted(amount(granted, unit), by.join(', '))));
    }

    var others = q.budgets.filter(function (b) { return b !== binding; });
    if (others.length > 0) {
      var section = el('section', 'others');
      var list = el('ul');
      section.appendChild(el('h2', '', T.others));
      others.forEach(function (b) { list.appendChild(otherRow(b, q.subject)); });
      section.appendChild(list);
      nodes.push(section);
    }
    show(nodes);
    card.className = 'card status-' + q.status;
  }

  // ---- talking to the host ------------------------------------------------------------------------

  // The parent's origin as the browser reports it: `location.ancestorOrigins` (Chromium, Safari),
  // else the referrer, which for an iframe is the embedding page. LobeChat can be self-hosted
  // anywhere, so its origin cannot be configured into this static page in advance.
  var parentOrigin = (function () {
    var ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length > 0) return ancestors[0];
    try {
      return document.referrer ? new URL(document.referrer).origin : null;
    } catch (e) {
      return null;
    }
  })();

  // Only the window that embeds us may render (a sibling frame or a popup may not), and only from a
  // real origin: an opaque 'null' origin (sandboxed or data: documents) is refused, as is a sender
  // whose origin differs from the one the browser told us embeds us. When the browser tells us
  // nothing, any http(s) origin is accepted. The content is never run either way (see `render`).
  function trusted(event) {
    if (window.parent === window || event.source !== window.parent) return false;
    if (typeof event.origin !== 'string' || event.origin === 'null') return false;
    if (parentOrigin && parentOrigin !== 'null') return event.origin === parentOrigin;
    return /^https?:\/\/[^/]+$/.test(event.origin);
  }

  window.lobeQuotaCard = { render: render };
  if (onOwnPage) return;

  window.addEventListener('message', function (event) {
    if (!trusted(event)) return;
    var data = event.data;
    if (!data || typeof data !== 'object' || data.type !== 'lobe-chat:render-plugin') return;
    var props = data.props && typeof data.props === 'object' ? data.props : {};
    rendered = true;
    render(props.content);
  });

  function ask() {
    if (window.parent === window) return;
    // Nothing secret is sent, so '*' is fine when the parent's origin is unknown.
    var target = parentOrigin && /^https?:/.test(parentOrigin) ? parentOrigin : '*';
    window.parent.postMessage({ type: 'lobe-chat:fetch-plugin-message' }, target);
    window.parent.postMessage({ type: 'lobe-chat:plugin-ready-for-render' }, target);
  }

  document.documentElement.lang = zh ? 'zh-CN' : 'en';
  document.title = T.title;
  show([el('p', 'muted', T.waiting)]);
  ask();
  // A host may attach its listener after our first request: ask again a few times until answered.
  [500, 1500, 3500].forEach(function (ms) {
    setTimeout(function () { if (!rendered) ask(); }, ms);
  });
})();
