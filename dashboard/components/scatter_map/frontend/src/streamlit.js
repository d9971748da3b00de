// Streamlit's component protocol (components v1), as streamlit-component-lib speaks it, without React:
// the page posts `streamlit:render` with the arguments (bytes arguments arrive as Uint8Array); the
// component posts ready / frame height / value back to its parent window.
const send = (type, data = {}) => window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, '*');

export function onRender(handler) {
  window.addEventListener('message', (event) => {
    if (event.data && event.data.type === 'streamlit:render') handler(event.data.args || {});
  });
  send('streamlit:componentReady', { apiVersion: 1 });
}

export const setFrameHeight = (height) => send('streamlit:setFrameHeight', { height });
export const setComponentValue = (value) => send('streamlit:setComponentValue', { value, dataType: 'json' });
