// whep.html's script (no inline scripts: the streamer's Content-Security-Policy).
(async function () {
  var video = document.getElementById('video');
  var pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = function (event) {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  await pc.setLocalDescription(await pc.createOffer());
  var response = await fetch('/whep', {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  var answer = await response.text();
  if (response.status !== 201) {
    window.whepError = response.status + ' ' + answer;
    return;
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  window.whepPc = pc;
})().catch(function (error) {
  window.whepError = String(error);
});
