// Server-Sent Events parsing (the text/event-stream format), for streams read with fetch:
// EventSource cannot send the Authorization header.

/** Returns feed(text): call it with each decoded chunk; onMessage gets {id, event, data} per message. */
export function sseParser(onMessage) {
  let buffer = '';
  let message = { id: undefined, event: 'message', data: [] };
  function line(text) {
    if (text === '') {
      if (message.data.length > 0) onMessage({ id: message.id, event: message.event, data: message.data.join('\n') });
      message = { id: undefined, event: 'message', data: [] };
      return;
    }
    if (text.startsWith(':')) return; // a comment (the server's heartbeat)
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? '' : text.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') message.data.push(value);
    else if (field === 'event') message.event = value;
    else if (field === 'id') message.id = value;
  }
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // an unfinished line waits for the next chunk
    for (const l of lines) line(l);
  };
}
