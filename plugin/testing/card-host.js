// A stand-in for LobeChat's side of the plugin iframe protocol, for plugin/card.browser.test.ts.
// Query: card (the card's URL), fixture (a name the test server serves at /fixtures/NAME.json),
// w/h (iframe size, default 800×280), as=string (send the content as JSON text, not an object),
// answer=fetch|ready|both (which requests get a `lobe-chat:render-plugin`; LobeChat answers both).
const params = new URLSearchParams(location.search);
const cardUrl = params.get('card') ?? '';
const cardOrigin = new URL(cardUrl).origin;
const text = await (await fetch(`/fixtures/${encodeURIComponent(params.get('fixture') ?? '')}.json`)).text();
const content = params.get('as') === 'string' ? text : JSON.parse(text);
const answer = params.get('answer') ?? 'both';

const frame = document.createElement('iframe');
frame.id = 'card';
frame.src = cardUrl;
frame.width = params.get('w') ?? '800';
frame.height = params.get('h') ?? '280';
frame.style.border = '0';
frame.style.display = 'block';

/** What the card asked for, in order. */
window.requests = [];
/** Sends the card a render message, as LobeChat does (newer versions target the card's origin). */
window.renderCard = (value) => frame.contentWindow.postMessage({ type: 'lobe-chat:render-plugin', props: { content: value } }, cardOrigin);

window.addEventListener('message', (event) => {
  if (event.source !== frame.contentWindow || event.origin !== cardOrigin) return;
  const type = event.data?.type;
  window.requests.push(type);
  if ((type === 'lobe-chat:fetch-plugin-message' && answer !== 'ready') || (type === 'lobe-chat:plugin-ready-for-render' && answer !== 'fetch')) {
    window.renderCard(content);
  }
});
document.body.append(frame);

// A sibling frame on the host's origin: not the card's parent, so the card must ignore it.
const sibling = document.createElement('iframe');
sibling.id = 'sibling';
sibling.hidden = true;
document.body.append(sibling);
