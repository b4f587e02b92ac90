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
// The ancestor's server sent a new viewer the live stream only (its page then showed
// the next keyframe on); ours first sends the frames since the last keyframe (a
// `join` message says how many). Skip those, so that this page starts as the
// ancestor's did; jMuxer itself drops what comes before the next SPS and PPS.
var skip = 0;
ws.addEventListener('message', function (event) {
  if (typeof event.data === 'string') {
    var message = JSON.parse(event.data);
    if (message.type === 'join') skip = Number(message.frames) || 0;
    return;
  }
  if (skip > 0) {
    skip -= 1;
    return;
  }
  jmuxer.feed({ video: new Uint8Array(event.data) });
});
