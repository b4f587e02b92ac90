// seed-jmuxer.html's script (no inline scripts: the streamer's Content-Security-Policy).
var params = new URLSearchParams(location.search);
var jmuxer = new JMuxer({
  node: 'player',
  mode: 'video',
  flushingTime: 0,
  fps: Number(params.get('fps')) || 30,
  debug: false,
});
var ws = new WebSocket('ws://' + location.host + '/ws');
ws.binaryType = 'arraybuffer';
ws.addEventListener('message', function (event) {
  if (typeof event.data === 'string') return;
  jmuxer.feed({ video: new Uint8Array(event.data) });
});
